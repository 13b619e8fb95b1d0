//! Where a pod runs and as whom, on top of Pod Security "restricted":
//! never pinned to a node by name (which skips the scheduler and every
//! taint), never aimed at control-plane nodes, and only as a ServiceAccount
//! the release creates (or `default` without its token).

use serde_json::Value;

use super::Report;
use super::lookup::{descend, exact, fields, list, show};

/// Node labels and taints that mark control-plane nodes.
const CONTROL_PLANE: &[&str] = &[
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

fn is_control_plane(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    CONTROL_PLANE.contains(&key.as_str())
}

/// The rules on any pod spec (forbidden values, every spelling).
pub(super) fn check(spec: &Value, report: &mut Report<'_>) {
    for name in fields(spec, "nodeName") {
        if !name.is_null() && name.as_str() != Some("") {
            report.add(
                "node-name",
                format!("pod is pinned to node {} (nodeName)", show(name)),
            );
        }
    }
    for (i, t) in list(spec, "tolerations").enumerate() {
        let key = fields(t, "key")
            .map(show)
            .find(|k| k != "null")
            .unwrap_or_default();
        let exists = fields(t, "operator").any(|o| show(o).eq_ignore_ascii_case("Exists"));
        if key.trim().is_empty() && exists {
            report.add(
                "control-plane",
                format!("tolerations[{i}] tolerates every taint (operator Exists, no key)"),
            );
        } else if is_control_plane(&key) {
            report.add(
                "control-plane",
                format!("tolerations[{i}] tolerates the control-plane taint {key}"),
            );
        }
    }
    for selector in fields(spec, "nodeSelector").filter_map(Value::as_object) {
        for key in selector.keys().filter(|k| is_control_plane(k)) {
            report.add(
                "control-plane",
                format!("nodeSelector selects control-plane nodes ({key})"),
            );
        }
    }
    let mut terms = Vec::new();
    for node_affinity in descend(spec, &["affinity", "nodeAffinity"]) {
        requirements(node_affinity, &mut terms);
    }
    for (field, req) in terms {
        let key = fields(req, "key").map(show).next().unwrap_or_default();
        let op = fields(req, "operator").map(show).next().unwrap_or_default();
        let excludes = op == "NotIn" || op == "DoesNotExist";
        if field.eq_ignore_ascii_case("matchFields") && !excludes {
            report.add(
                "node-name",
                format!("nodeAffinity matches node field {key} ({op})"),
            );
        } else if is_control_plane(&key) && !excludes {
            report.add(
                "control-plane",
                format!("nodeAffinity selects control-plane nodes ({key} {op})"),
            );
        }
    }
}

/// Every node selector requirement below `v`, with the list it sits in
/// (`matchExpressions` or `matchFields`), at any depth.
fn requirements<'a>(v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let is_list = k.eq_ignore_ascii_case("matchExpressions")
                    || k.eq_ignore_ascii_case("matchFields");
                match child.as_array() {
                    Some(items) if is_list => {
                        out.extend(items.iter().map(|r| (k.clone(), r)));
                    }
                    _ => requirements(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| requirements(i, out)),
        _ => {}
    }
}

/// A pod runs as the ServiceAccount it names, which any other object of
/// the namespace may have been granted rights to: only the release's own,
/// or `default` with its token left out of the pod.
pub(super) fn service_account(spec: &Value, report: &mut Report<'_>) {
    let names: Vec<&Value> = fields(spec, "serviceAccountName")
        .chain(fields(spec, "serviceAccount"))
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
        .collect();
    let mut default = names.is_empty();
    for name in names {
        match name.as_str() {
            Some("default") => default = true,
            Some(n) if report.release.creates("", "ServiceAccount", n) => {}
            _ => report.add(
                "service-account",
                format!(
                    "pod runs as ServiceAccount {}, which the release does not create",
                    show(name)
                ),
            ),
        }
    }
    let no_token = exact(spec, &["automountServiceAccountToken"]) == Some(&Value::Bool(false));
    if default && !no_token {
        report.add(
            "service-account",
            "pod runs as the namespace's default ServiceAccount: set \
             automountServiceAccountToken: false or run as a ServiceAccount of the release"
                .to_owned(),
        );
    }
    // A projected token is the same token, mounted by hand.
    let projected = list(spec, "volumes")
        .flat_map(|v| descend(v, &["projected", "sources"]))
        .flat_map(|s| s.as_array().into_iter().flatten())
        .any(|s| fields(s, "serviceAccountToken").any(|t| !t.is_null()));
    if default && projected {
        report.add(
            "service-account",
            "a projected volume mounts a token of the namespace's default ServiceAccount"
                .to_owned(),
        );
    }
}
