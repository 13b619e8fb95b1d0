//! Ingress and Gateway API routes: which hosts a release may claim (only
//! the plan's `allow_hosts` patterns; none by default), which annotations
//! its controller may read (an allow-list: snippets and `auth-url` run
//! configuration inside a controller shared by every tenant), and which
//! objects it may send traffic to (only the release's own).

use serde_json::Value;

use super::Report;
use super::lookup::{descend, fields, list, show};

/// Annotations any Ingress or route may carry: settings of its own
/// traffic, nothing that runs code or reads files in the controller.
const ANNOTATIONS: &[&str] = &[
    "kubernetes.io/ingress.class",
    "nginx.ingress.kubernetes.io/rewrite-target",
    "nginx.ingress.kubernetes.io/use-regex",
    "nginx.ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/force-ssl-redirect",
    "nginx.ingress.kubernetes.io/backend-protocol",
    "nginx.ingress.kubernetes.io/proxy-body-size",
    "nginx.ingress.kubernetes.io/proxy-connect-timeout",
    "nginx.ingress.kubernetes.io/proxy-read-timeout",
    "nginx.ingress.kubernetes.io/proxy-send-timeout",
];

/// Prefixes of annotations helm itself sets or reads (Helm 4 marks each
/// object with the file its post-renderer split it from).
const HELM_PREFIXES: &[&str] = &["helm.sh/", "meta.helm.sh/", "postrenderer.helm.sh/"];

const ROUTES: &[&str] = &["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"];

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Whether `kind` of `group` is handled here.
pub(super) fn applies(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("networking.k8s.io" | "extensions", "Ingress")
    ) || (group == GATEWAY_GROUP && ROUTES.contains(&kind))
}

pub(super) fn check(obj: &Value, group: &str, kind: &str, report: &mut Report<'_>) {
    annotations(obj, report);
    if kind == "Ingress" {
        ingress(obj, report);
    } else {
        route(obj, group, report);
    }
}

fn annotations(obj: &Value, report: &mut Report<'_>) {
    let all = descend(obj, &["metadata", "annotations"]);
    for key in all
        .into_iter()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys())
    {
        let known = ANNOTATIONS.contains(&key.as_str())
            || HELM_PREFIXES.iter().any(|p| key.starts_with(p))
            || report.policy.allow_annotations.iter().any(|a| a == key);
        if !known {
            report.add(
                "ingress-annotation",
                format!("annotation {key} is not on the allow-list"),
            );
        }
    }
}

fn ingress(obj: &Value, report: &mut Report<'_>) {
    for spec in fields(obj, "spec") {
        for backend in fields(spec, "defaultBackend").chain(fields(spec, "backend")) {
            report.add(
                "ingress-host",
                "sets a default backend, which claims every host no other Ingress names".to_owned(),
            );
            ingress_backend(backend, "defaultBackend", report);
        }
        for (i, rule) in list(spec, "rules").enumerate() {
            // Every spelling counts: each must be a host the plan admits.
            let hosts: Vec<&Value> = fields(rule, "host").filter(|h| !h.is_null()).collect();
            if hosts.is_empty() {
                host(None, &format!("rules[{i}]"), report);
            }
            for h in hosts {
                host(Some(h), &format!("rules[{i}]"), report);
            }
            for (j, path) in descend(rule, &["http", "paths"])
                .into_iter()
                .flat_map(|p| p.as_array().into_iter().flatten())
                .enumerate()
            {
                for backend in fields(path, "backend") {
                    ingress_backend(backend, &format!("rules[{i}].paths[{j}]"), report);
                }
            }
        }
        for (i, tls) in list(spec, "tls").enumerate() {
            for h in list(tls, "hosts") {
                host(Some(h), &format!("tls[{i}]"), report);
            }
            for secret in fields(tls, "secretName").filter(|s| !s.is_null()) {
                let name = show(secret);
                if !report.release.creates("", "Secret", &name) {
                    report.add(
                        "release-target",
                        format!(
                            "tls[{i}] serves Secret {name:?}, which the release does not create"
                        ),
                    );
                }
            }
        }
    }
}

fn ingress_backend(backend: &Value, at: &str, report: &mut Report<'_>) {
    let services = descend(backend, &["service", "name"])
        .into_iter()
        .chain(fields(backend, "serviceName"));
    for name in services.map(show) {
        if !report.release.creates("", "Service", &name) {
            report.add(
                "release-target",
                format!(
                    "{at} sends traffic to Service {name:?}, which the release does not create"
                ),
            );
        }
    }
    for resource in fields(backend, "resource") {
        object_ref(resource, "apiGroup", None, at, report);
    }
}

/// A host the plan's `allow_hosts` patterns admit; a missing or empty host
/// claims every host.
fn host(h: Option<&Value>, at: &str, report: &mut Report<'_>) {
    let host = h.map(show).filter(|h| h != "null").unwrap_or_default();
    if host.is_empty() {
        report.add(
            "ingress-host",
            format!("{at} names no host, which claims every host"),
        );
    } else if !report.policy.host_allowed(&host, &report.release.namespace) {
        report.add(
            "ingress-host",
            format!("{at} claims host {host:?}, which the plan's allow_hosts does not admit"),
        );
    }
}

fn route(obj: &Value, _group: &str, report: &mut Report<'_>) {
    for spec in fields(obj, "spec") {
        let hostnames: Vec<&Value> = list(spec, "hostnames").collect();
        if hostnames.is_empty() {
            host(None, "hostnames", report);
        }
        for h in hostnames {
            host(Some(h), "hostnames", report);
        }
        // A parentRef to a Service (service mesh) captures that Service's
        // traffic; Gateways decide themselves which routes they accept.
        for (i, parent) in list(spec, "parentRefs").enumerate() {
            let kind = fields(parent, "kind").map(show).next();
            if kind
                .as_deref()
                .is_some_and(|k| k != "Gateway" && k != "ListenerSet")
            {
                object_ref(
                    parent,
                    "group",
                    Some("Gateway"),
                    &format!("parentRefs[{i}]"),
                    report,
                );
            }
        }
        let mut refs = Vec::new();
        for rules in fields(spec, "rules") {
            backend_refs(rules, &mut refs);
        }
        for (at, r) in refs {
            object_ref(r, "group", Some("Service"), &at, report);
        }
    }
}

/// Every `backendRef(s)` and `extensionRef` below `v`.
fn backend_refs<'a>(v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("backendRefs", Value::Array(items)) => {
                        out.extend(items.iter().map(|r| (k.clone(), r)));
                    }
                    ("backendRef" | "extensionRef", Value::Object(_)) => {
                        out.push((k.clone(), child))
                    }
                    _ => backend_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| backend_refs(i, out)),
        _ => {}
    }
}

/// A reference (`group`/`apiGroup`, `kind`, `name`, `namespace`) must name
/// an object of the release, in its namespace.
fn object_ref(
    r: &Value,
    group_key: &str,
    default_kind: Option<&str>,
    at: &str,
    report: &mut Report<'_>,
) {
    let text = |k: &str| fields(r, k).map(show).find(|v| v != "null");
    let group = text(group_key).unwrap_or_default();
    let kind = text("kind")
        .or(default_kind.map(str::to_owned))
        .unwrap_or_default();
    let name = text("name").unwrap_or_default();
    let ns = text("namespace").filter(|n| !n.is_empty());
    let own = ns.as_deref().is_none_or(|n| n == report.release.namespace)
        && report.release.creates(&group, &kind, &name);
    if !own {
        let whose = ns.map_or(String::new(), |n| format!(" in namespace {n:?}"));
        report.add(
            "release-target",
            format!("{at} points at {kind} {name:?}{whose}, which the release does not create"),
        );
    }
}
