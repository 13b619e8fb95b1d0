//! The most a chart's Role may grant: the namespace `edit` ClusterRole of
//! Kubernetes 1.35, minus whatever reaches past the release (reading
//! Secrets, exec, attach, port-forward, ephemeral containers, proxies,
//! service account tokens, `escalate`, `bind`, `impersonate`), and with
//! writing pods or workloads kept apart (rule `rbac-workloads`): a
//! controller that may create pods may run any pod the policy never saw.
//!
//! A plan widens the ceiling with `chart.policy.role_resources`; the
//! sensitive grants stay under `rbac-sensitive` whatever it says.

const READ: &[&str] = &["get", "list", "watch"];
const ALL: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
/// Secrets may be written (a chart makes its own) but not read back.
const WRITE_ONLY: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// (API group, resource, verbs).
const CEILING: &[(&str, &str, &[&str])] = &[
    ("", "configmaps", ALL),
    ("", "events", ALL),
    ("", "persistentvolumeclaims", ALL),
    ("", "persistentvolumeclaims/status", READ),
    ("", "services", ALL),
    ("", "services/status", READ),
    ("", "serviceaccounts", ALL),
    ("", "endpoints", READ),
    ("", "pods", ALL),
    ("", "pods/log", READ),
    ("", "pods/status", READ),
    ("", "replicationcontrollers", ALL),
    ("", "replicationcontrollers/scale", ALL),
    ("", "replicationcontrollers/status", READ),
    ("", "secrets", WRITE_ONLY),
    ("", "limitranges", READ),
    ("", "resourcequotas", READ),
    ("", "resourcequotas/status", READ),
    ("apps", "controllerrevisions", READ),
    ("apps", "deployments", ALL),
    ("apps", "deployments/rollback", ALL),
    ("apps", "deployments/scale", ALL),
    ("apps", "deployments/status", READ),
    ("apps", "replicasets", ALL),
    ("apps", "replicasets/scale", ALL),
    ("apps", "replicasets/status", READ),
    ("apps", "statefulsets", ALL),
    ("apps", "statefulsets/scale", ALL),
    ("apps", "statefulsets/status", READ),
    ("apps", "daemonsets", ALL),
    ("apps", "daemonsets/status", READ),
    ("batch", "jobs", ALL),
    ("batch", "jobs/status", READ),
    ("batch", "cronjobs", ALL),
    ("batch", "cronjobs/status", READ),
    ("autoscaling", "horizontalpodautoscalers", ALL),
    ("autoscaling", "horizontalpodautoscalers/status", READ),
    ("policy", "poddisruptionbudgets", ALL),
    ("policy", "poddisruptionbudgets/status", READ),
    ("networking.k8s.io", "ingresses", ALL),
    ("networking.k8s.io", "ingresses/status", READ),
    ("networking.k8s.io", "networkpolicies", ALL),
    ("discovery.k8s.io", "endpointslices", READ),
];

/// Resources whose writes create or change pods (rule `rbac-workloads`).
const WORKLOADS: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("", "podtemplates"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

/// Verbs that change pods when granted on a workload resource.
const POD_WRITES: &[&str] = &["create", "update", "patch"];

/// Resources that reach past the release (rule `rbac-sensitive`), with the
/// verbs that do (`None`: every verb).
const SENSITIVE: &[(&str, Option<&[&str]>)] = &[
    ("secrets", Some(READ)),
    ("pods/exec", None),
    ("pods/attach", None),
    ("pods/portforward", None),
    ("pods/ephemeralcontainers", None),
    ("serviceaccounts/token", None),
];

/// Verbs that step around RBAC itself.
pub(super) const SENSITIVE_VERBS: &[&str] = &["escalate", "bind", "impersonate"];

/// Why granting `verb` on `resource` (lower case) reaches past the release,
/// if it does (every group counts: a sensitive name is never harmless).
pub(super) fn sensitive(resource: &str, verb: &str) -> Option<String> {
    if SENSITIVE_VERBS.contains(&verb) {
        return Some(format!("verb {verb}"));
    }
    if resource.ends_with("/proxy") {
        return Some(format!("{resource} (a proxy into the workload)"));
    }
    SENSITIVE
        .iter()
        .find(|(r, verbs)| *r == resource && verbs.is_none_or(|v| v.contains(&verb)))
        .map(|(r, _)| match *r {
            "secrets" => format!("{verb} on secrets"),
            r => r.to_owned(),
        })
}

/// Whether `verb` on `group`/`resource` creates or changes pods.
pub(super) fn writes_pods(group: &str, resource: &str, verb: &str) -> bool {
    POD_WRITES.contains(&verb) && WORKLOADS.contains(&(group, resource))
}

/// Whether the ceiling (with the plan's `extra` resources, as `resource`
/// or `resource.group`) grants `verb` on `group`/`resource`.
pub(super) fn allows(group: &str, resource: &str, verb: &str, extra: &[String]) -> bool {
    let named = if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    };
    CEILING
        .iter()
        .any(|(g, r, verbs)| *g == group && *r == resource && verbs.contains(&verb))
        || (ALL.contains(&verb) && extra.iter().any(|e| e.trim() == named))
}
