//! The rules inside one object: its pods ([`super::pods`]), RBAC,
//! Services and Secrets.

use serde_json::Value;

use super::Report;
use super::lookup::{descend, fields, list, show};

/// Resources a namespaced Role must not grant: each one reads credentials,
/// runs code in another pod, or mints tokens for another identity.
const SENSITIVE_RESOURCES: &[&str] = &[
    "secrets",
    "pods/exec",
    "pods/attach",
    "serviceaccounts/token",
];

/// Verbs that step around RBAC itself.
const SENSITIVE_VERBS: &[&str] = &["escalate", "bind", "impersonate"];

/// Runs every content rule on one object of kind `kind`.
pub(super) fn check_object(obj: &Value, kind: &str, report: &mut Report<'_>) {
    super::pods::check(obj, report);
    let is = |k: &str| kind.eq_ignore_ascii_case(k);
    if is("RoleBinding") || is("ClusterRoleBinding") {
        role_binding(obj, report);
    }
    if is("Role") || is("ClusterRole") {
        role(obj, report);
    }
    if is("Service") {
        service(obj, report);
    }
    if is("Secret") {
        for t in fields(obj, "type").filter_map(Value::as_str) {
            if t.trim() == "kubernetes.io/service-account-token" {
                report.add(
                    "service-account-token",
                    "is a service-account token Secret: the cluster would fill it with a \
                     long-lived token for a service account"
                        .to_owned(),
                );
            }
        }
    }
}

/// A RoleBinding to a ClusterRole hands out a role the chart didn't write,
/// up to `cluster-admin`'s rights within the namespace; one to a `system:`
/// user or group hands the chart's role to the cluster's own identities
/// (every authenticated user, every service account, the nodes).
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
    for (i, subject) in list(obj, "subjects").enumerate() {
        let kinds: Vec<String> = fields(subject, "kind").map(show).collect();
        let by_name = kinds.is_empty()
            || kinds
                .iter()
                .any(|k| k.eq_ignore_ascii_case("User") || k.eq_ignore_ascii_case("Group"));
        for name in fields(subject, "name").filter_map(Value::as_str) {
            if by_name && name.trim().to_ascii_lowercase().starts_with("system:") {
                report.add(
                    "rbac-system-subject",
                    format!("subjects[{i}] is the cluster identity {name:?}"),
                );
            }
        }
    }
}

fn role(obj: &Value, report: &mut Report<'_>) {
    for (i, rule) in list(obj, "rules").enumerate() {
        // A wildcard grants whatever the namespace will ever hold,
        // including things added after review.
        for field in ["apiGroups", "verbs", "resources"] {
            let wild = list(rule, field)
                .filter_map(Value::as_str)
                .any(|s| s.trim() == "*" || s.ends_with("/*") || s.starts_with("*/"));
            if wild {
                report.add("wildcard-rbac", format!("rules[{i}].{field} contains `*`"));
            }
        }
        for resource in list(rule, "resources").filter_map(Value::as_str) {
            let r = resource.trim().to_ascii_lowercase();
            if SENSITIVE_RESOURCES.contains(&r.as_str()) {
                report.add("rbac-sensitive", format!("rules[{i}] grants {resource}"));
            }
        }
        for verb in list(rule, "verbs").filter_map(Value::as_str) {
            let v = verb.trim().to_ascii_lowercase();
            if SENSITIVE_VERBS.contains(&v.as_str()) {
                report.add("rbac-sensitive", format!("rules[{i}] grants verb {verb}"));
            }
        }
    }
}

/// Only in-cluster Services by default: NodePort and LoadBalancer open the
/// release to outside the cluster, ExternalName points cluster DNS at any
/// host, and externalIPs let a Service capture traffic meant for addresses
/// it doesn't own (CVE-2020-8554).
fn service(obj: &Value, report: &mut Report<'_>) {
    for t in descend(obj, &["spec", "type"]) {
        let t = show(t);
        if !t.is_empty() && t != "null" && t != "ClusterIP" {
            report.add("service-type", format!("is of type {t}"));
        }
    }
    for ips in descend(obj, &["spec", "externalIPs"]) {
        if !ips.is_null() && ips.as_array().is_none_or(|a| !a.is_empty()) {
            report.add(
                "service-external-ips",
                format!("sets externalIPs {}", show(ips)),
            );
        }
    }
}
