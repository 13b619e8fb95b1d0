//! The most a chart's Role may grant: the namespace `edit` ClusterRole of
//! Kubernetes 1.35, minus whatever reaches past the release (any verb on
//! Secrets: reading them, or creating a token Secret the cluster fills for
//! any ServiceAccount; exec, attach, port-forward, ephemeral containers,
//! proxies, service account tokens, `escalate`, `bind`, `impersonate`), and
//! with writes to what the policy judges kept apart (rule `rbac-writes`): a
//! controller that may create pods, Services, Ingresses, NetworkPolicies or
//! PVCs creates objects the policy never saw.
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
    ("", "limitranges", READ),
    ("", "resourcequotas", READ),
    ("", "resourcequotas/status", READ),
    ("apps", "controllerrevisions", READ),
    ("apps", "deployments", ALL),
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

/// Resources whose objects the policy judges (rule `rbac-writes`): pods
/// and workloads, and what selects, exposes, isolates or binds storage.
const JUDGED: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("", "podtemplates"),
    ("", "services"),
    ("", "endpoints"),
    ("", "persistentvolumeclaims"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "networkpolicies"),
    ("discovery.k8s.io", "endpointslices"),
];

/// Verbs that create or change an object.
const WRITES: &[&str] = &["create", "update", "patch"];

/// Resources that reach past the release (rule `rbac-sensitive`), with the
/// verbs that do (`None`: every verb).
const SENSITIVE: &[(&str, Option<&[&str]>)] = &[
    ("secrets", None),
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
            "secrets" if READ.contains(&verb) => format!("{verb} on secrets"),
            "secrets" => format!(
                "{verb} on secrets (a token Secret the cluster fills for any ServiceAccount)"
            ),
            r => r.to_owned(),
        })
}

/// Whether `verb` on `group`/`resource` writes an object the policy judges.
pub(super) fn writes_judged(group: &str, resource: &str, verb: &str) -> bool {
    WRITES.contains(&verb) && JUDGED.contains(&(group, resource))
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
