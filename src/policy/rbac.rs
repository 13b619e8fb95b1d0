//! RBAC a chart may create: Roles under the ceiling of [`super::ceiling`],
//! bound only to the release's own ServiceAccounts.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Report;
use super::ceiling;
use super::lookup::{fields, list, show};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A RoleBinding to a ClusterRole hands out a role the chart didn't write,
/// up to `cluster-admin`'s rights within the namespace; one to a Role the
/// release doesn't create hands out someone else's. A subject other than
/// the release's own ServiceAccounts lends the role to identities the
/// release doesn't own: a `system:` group (every authenticated user),
/// another namespace's ServiceAccount, an outside user or group, or the
/// namespace's `default` ServiceAccount that every other pod runs as.
pub(super) fn role_binding(obj: &Value, report: &mut Report<'_>) {
    for role_ref in fields(obj, "roleRef") {
        let foreign = fields(role_ref, "kind")
            .filter_map(Value::as_str)
            .find(|k| !k.eq_ignore_ascii_case("Role"));
        let role = fields(role_ref, "name")
            .find_map(Value::as_str)
            .unwrap_or("?");
        if let Some(kind) = foreign {
            report.add(
                "rolebinding-clusterrole",
                format!("binds {kind} {role:?}; bind a Role of the chart's own instead"),
            );
        } else if !report.release.creates(RBAC_GROUP, "Role", role) {
            report.add(
                "rolebinding-role",
                format!("binds Role {role:?}, which the release does not create"),
            );
        }
    }
    for (i, subject) in list(obj, "subjects").enumerate() {
        subject_rules(subject, i, report);
    }
}

fn subject_rules(subject: &Value, i: usize, report: &mut Report<'_>) {
    let kinds: Vec<String> = fields(subject, "kind").map(show).collect();
    let by_name = kinds.is_empty()
        || kinds
            .iter()
            .any(|k| k.eq_ignore_ascii_case("User") || k.eq_ignore_ascii_case("Group"));
    let names: Vec<String> = fields(subject, "name").map(show).collect();
    let system = by_name
        && names
            .iter()
            .any(|n| n.trim().to_ascii_lowercase().starts_with("system:"));
    if system {
        for name in &names {
            report.add(
                "rbac-system-subject",
                format!("subjects[{i}] is the cluster identity {name:?}"),
            );
        }
        return;
    }
    let release_ns = report.release.namespace.clone();
    let why = if kinds.len() != 1 || kinds[0] != "ServiceAccount" {
        Some(format!("is a {}, not a ServiceAccount", kinds.join("/")))
    } else if let Some(ns) = fields(subject, "namespace")
        .map(show)
        .find(|ns| !ns.is_empty() && ns != "null" && *ns != release_ns)
    {
        Some(format!("is a ServiceAccount of namespace {ns:?}"))
    } else if fields(subject, "apiGroup").any(|g| !g.is_null() && g.as_str() != Some("")) {
        Some("sets an apiGroup a ServiceAccount doesn't have".to_owned())
    } else if names.len() != 1 || names[0] == "default" {
        // Every pod of the namespace that names no ServiceAccount runs as
        // `default`, even if the chart writes an object of that name.
        Some("is the namespace's default ServiceAccount".to_owned())
    } else if !report.release.creates("", "ServiceAccount", &names[0]) {
        Some(format!(
            "is ServiceAccount {}, which the release does not create",
            names.join("/")
        ))
    } else {
        None
    };
    if let Some(why) = why {
        report.add(
            "rbac-subject",
            format!("subjects[{i}] {why}; bind only the release's own ServiceAccounts"),
        );
    }
}

/// Every (group, resource, verb) a Role grants is checked: wildcards
/// first, then what reaches past the release, then writes of judged
/// objects, then the
/// ceiling, each grant reported once under the first rule it breaks.
pub(super) fn role(obj: &Value, report: &mut Report<'_>) {
    let extra = report.policy.role_resources.clone();
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
        if list(rule, "nonResourceURLs").next().is_some() {
            report.add("rbac-ceiling", format!("rules[{i}] grants nonResourceURLs"));
        }
        let strings = |field: &'static str| -> Vec<String> {
            list(rule, field)
                .map(show)
                .filter(|s| !s.contains('*'))
                .collect()
        };
        let (groups, resources, verbs) =
            (strings("apiGroups"), strings("resources"), strings("verbs"));
        let mut found: BTreeSet<(&'static str, String)> = BTreeSet::new();
        for group in &groups {
            for resource in &resources {
                for verb in &verbs {
                    let (r, v) = (
                        resource.trim().to_ascii_lowercase(),
                        verb.trim().to_ascii_lowercase(),
                    );
                    let what = if let Some(why) = ceiling::sensitive(&r, &v) {
                        ("rbac-sensitive", format!("rules[{i}] grants {why}"))
                    } else if ceiling::writes_judged(group, resource, verb) {
                        (
                            "rbac-writes",
                            format!("rules[{i}] grants {verb} on {}", named(group, resource)),
                        )
                    } else if !ceiling::allows(group, resource, verb, &extra) {
                        (
                            "rbac-ceiling",
                            format!(
                                "rules[{i}] grants {verb} on {}, beyond the namespace edit ceiling",
                                named(group, resource)
                            ),
                        )
                    } else {
                        continue;
                    };
                    found.insert(what);
                }
            }
        }
        for (rule, message) in found {
            report.add(rule, message);
        }
    }
}

/// `resource` or `resource.group`, as `role_resources` names it.
fn named(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}
