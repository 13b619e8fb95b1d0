//! The rules about what is inside one object: pod specs and RBAC.
//!
//! Lookups are deliberately generous, because the manifests come from a
//! chart author we don't trust and the API server, not this module, decides
//! what they mean:
//! - field names match ignoring ASCII case (older API servers decoded JSON
//!   case-insensitively), and every spelling present is checked;
//! - a boolean is true when it is `true` or a YAML 1.1 true word (`yes`,
//!   `on`, ...), which Kubernetes' YAML decoder turns into `true`;
//! - pod specs are looked for at every place a built-in kind keeps one, on
//!   every object, so renaming or re-grouping a kind doesn't hide its pods.

use serde_json::Value;

use super::kinds::normalize_capability;
use super::{Policy, Report};

/// Where pod specs live: Pod, the templated workloads, CronJob, PodTemplate.
const POD_SPEC_PATHS: &[&[&str]] = &[
    &["spec"],
    &["spec", "template", "spec"],
    &["spec", "jobTemplate", "spec", "template", "spec"],
    &["template", "spec"],
];

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

const HOST_NAMESPACES: &[&str] = &["hostNetwork", "hostPID", "hostIPC"];

/// Runs every content rule on one object of kind `kind`.
pub(super) fn check_object(obj: &Value, kind: &str, policy: &Policy, report: &mut Report<'_>) {
    for path in POD_SPEC_PATHS {
        for spec in descend(obj, path) {
            if spec.is_object() {
                pod_spec(spec, policy, report);
            }
        }
    }
    if kind.eq_ignore_ascii_case("RoleBinding") {
        role_binding(obj, report);
    }
    if kind.eq_ignore_ascii_case("Role") {
        role(obj, report);
    }
}

fn pod_spec(spec: &Value, policy: &Policy, report: &mut Report<'_>) {
    if !policy.allow_host_network {
        for field in HOST_NAMESPACES {
            if fields(spec, field).any(truthy) {
                report.add("host-namespace", format!("pod uses {field}"));
            }
        }
    }
    if !policy.allow_privileged && host_process(spec) {
        report.add(
            "privileged-container",
            "pod is a Windows HostProcess pod".to_owned(),
        );
    }
    if !policy.allow_host_path {
        for (i, volume) in list(spec, "volumes").enumerate() {
            for host_path in fields(volume, "hostPath").filter(|h| !h.is_null()) {
                let path = fields(host_path, "path")
                    .find_map(Value::as_str)
                    .unwrap_or("?");
                report.add(
                    "host-path",
                    format!("volume {} mounts hostPath {path}", name_of(volume, i)),
                );
            }
        }
    }
    for which in CONTAINER_LISTS {
        for (i, container) in list(spec, which).enumerate() {
            self::container(container, &name_of(container, i), policy, report);
        }
    }
}

fn container(c: &Value, name: &str, policy: &Policy, report: &mut Report<'_>) {
    for sc in fields(c, "securityContext") {
        if !policy.allow_privileged {
            if fields(sc, "privileged").any(truthy) {
                report.add(
                    "privileged-container",
                    format!("container {name} is privileged"),
                );
            }
            if host_process(c) {
                report.add(
                    "privileged-container",
                    format!("container {name} is a Windows HostProcess container"),
                );
            }
            if fields(sc, "allowPrivilegeEscalation").any(truthy) {
                report.add(
                    "privilege-escalation",
                    format!("container {name} allows privilege escalation"),
                );
            }
            for mount in fields(sc, "procMount").filter(|m| !m.is_null()) {
                if mount.as_str() != Some("Default") {
                    report.add(
                        "unmasked-proc-mount",
                        format!("container {name} sets procMount {}", show(mount)),
                    );
                }
            }
        }
        for caps in fields(sc, "capabilities") {
            for cap in list(caps, "add") {
                let allowed = cap.as_str().is_some_and(|s| {
                    let s = normalize_capability(s);
                    policy
                        .allow_capabilities
                        .iter()
                        .any(|a| normalize_capability(a) == s)
                });
                if !allowed {
                    report.add(
                        "capability-not-allowed",
                        format!("container {name} adds capability {}", show(cap)),
                    );
                }
            }
        }
    }
    if !policy.allow_host_network {
        for port in list(c, "ports") {
            for hp in fields(port, "hostPort") {
                if !matches!(hp, Value::Null | Value::Bool(false))
                    && hp.as_f64() != Some(0.0)
                    && hp.as_str() != Some("0")
                {
                    report.add(
                        "host-port",
                        format!("container {name} binds hostPort {}", show(hp)),
                    );
                }
            }
        }
    }
}

/// `securityContext.windowsOptions.hostProcess` of a pod or container.
fn host_process(v: &Value) -> bool {
    descend(v, &["securityContext", "windowsOptions", "hostProcess"])
        .into_iter()
        .any(truthy)
}

/// A RoleBinding to a ClusterRole hands out a role the chart didn't write,
/// up to `cluster-admin`'s rights within the namespace.
fn role_binding(obj: &Value, report: &mut Report<'_>) {
    for role_ref in fields(obj, "roleRef") {
        let foreign = fields(role_ref, "kind")
            .filter_map(Value::as_str)
            .find(|k| !k.eq_ignore_ascii_case("Role"));
        if let Some(kind) = foreign {
            let role = fields(role_ref, "name")
                .find_map(Value::as_str)
                .unwrap_or("?");
            report.add(
                "rolebinding-clusterrole",
                format!("binds {kind} {role:?}; bind a Role of the chart's own instead"),
            );
        }
    }
}

/// A Role granting `*` verbs or resources grants whatever the namespace
/// will ever hold, including things added after review.
fn role(obj: &Value, report: &mut Report<'_>) {
    for (i, rule) in list(obj, "rules").enumerate() {
        for field in ["verbs", "resources"] {
            let wild = list(rule, field)
                .filter_map(Value::as_str)
                .any(|s| s.trim() == "*" || s.ends_with("/*"));
            if wild {
                report.add("wildcard-rbac", format!("rules[{i}].{field} contains `*`"));
            }
        }
    }
}

// === lookup helpers ===

/// Every value under `key` in `v`, ignoring ASCII case.
pub(super) fn fields<'a>(v: &'a Value, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    v.as_object()
        .into_iter()
        .flat_map(move |m| m.iter())
        .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Every value at `path` below `v`.
fn descend<'a>(v: &'a Value, path: &[&'a str]) -> Vec<&'a Value> {
    path.iter().fold(vec![v], |acc, key| {
        acc.into_iter().flat_map(|v| fields(v, key)).collect()
    })
}

/// The items of every array under `key`.
fn list<'a>(v: &'a Value, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    fields(v, key).flat_map(|l| l.as_array().into_iter().flatten())
}

/// `true`, or a YAML 1.1 word Kubernetes reads as true.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(
            s.as_str(),
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON"
        ),
        _ => false,
    }
}

/// A container or volume's quoted name, or its index.
fn name_of(v: &Value, i: usize) -> String {
    match fields(v, "name").find_map(Value::as_str) {
        Some(name) => format!("{name:?}"),
        None => format!("#{i}"),
    }
}

/// A scalar as written (strings without JSON quotes).
fn show(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}
