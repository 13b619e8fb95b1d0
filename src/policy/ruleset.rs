//! Every rule by its stable name: what it refuses and whether a plan may
//! loosen it (`chart.policy.allow: [name, ...]`).
//!
//! The names are a contract with catalogs: renaming one silently turns a
//! plan's allowance into an unknown-rule error at lint, so never do it.

/// One rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable name, shown in every violation as `(rule: name)`.
    pub name: &'static str,
    /// What it refuses, in a few words.
    pub(crate) refuses: &'static str,
    /// Whether `chart.policy.allow` may switch it off.
    pub loosenable: bool,
}

const fn never(name: &'static str, refuses: &'static str) -> Rule {
    Rule {
        name,
        refuses,
        loosenable: false,
    }
}

const fn plan(name: &'static str, refuses: &'static str) -> Rule {
    Rule {
        name,
        refuses,
        loosenable: true,
    }
}

/// Every rule, in the order the documentation lists them. The first ones
/// keep objects inside the release's namespace and its own RBAC, which is
/// what makes the broker safe to share, so no plan can loosen them.
pub const RULES: &[Rule] = &[
    never(
        "invalid-yaml",
        "output that is not YAML (duplicate keys included)",
    ),
    never(
        "ambiguous-yaml",
        "YAML Kubernetes' Go reader may read differently: anchors, aliases, merge keys, tags, non-string keys, U+2028/U+2029/U+0085 and control characters, tabs in indentation, `---` inside text, YAML 1.1 numbers JSON can't carry",
    ),
    never(
        "not-an-object",
        "a document without apiVersion, kind and metadata.name",
    ),
    never(
        "cluster-scoped",
        "ClusterRole, CRD, Namespace, webhooks, PersistentVolume, ...",
    ),
    never(
        "other-namespace",
        "metadata.namespace other than the release's",
    ),
    never(
        "rolebinding-clusterrole",
        "a RoleBinding whose roleRef is a ClusterRole",
    ),
    never(
        "wildcard-rbac",
        "a Role with `*` in apiGroups, resources or verbs",
    ),
    never(
        "rbac-system-subject",
        "a RoleBinding to a `system:*` user or group",
    ),
    never(
        "rolebinding-role",
        "a RoleBinding to a Role the release doesn't create",
    ),
    never(
        "rbac-subject",
        "a RoleBinding subject other than a ServiceAccount the release creates (users, groups, other namespaces, `default`)",
    ),
    never("service-external-ips", "a Service with externalIPs"),
    // Loosened through allow_kinds / extra_kinds, which say which kinds.
    never("kind-not-allowed", "a kind outside the allow-list"),
    plan(
        "privileged-container",
        "privileged: true, Windows HostProcess",
    ),
    plan(
        "privilege-escalation",
        "allowPrivilegeEscalation not set to false",
    ),
    plan("unmasked-proc-mount", "procMount other than Default"),
    plan("host-namespace", "hostNetwork, hostPID, hostIPC"),
    plan("host-port", "a container hostPort"),
    plan("host-path", "hostPath volumes"),
    plan(
        "volume-type",
        "volumes other than configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected, secret",
    ),
    plan(
        "run-as-root",
        "runAsNonRoot not true (pod or container), runAsUser 0",
    ),
    plan(
        "seccomp",
        "seccompProfile not RuntimeDefault or Localhost (pod or every container)",
    ),
    plan(
        "apparmor",
        "an AppArmor profile other than RuntimeDefault or Localhost (field or annotation)",
    ),
    plan(
        "selinux",
        "an SELinux type beyond container_t and its kin, an SELinux user or role",
    ),
    plan("sysctls", "sysctls outside the safe set"),
    plan(
        "capabilities-drop-all",
        "a container that does not drop ALL capabilities",
    ),
    plan(
        "capability-not-allowed",
        "a capability added other than NET_BIND_SERVICE (and allow_capabilities)",
    ),
    plan(
        "probe-host",
        "a probe or lifecycle hook aimed at another host",
    ),
    plan(
        "service-type",
        "a Service of type NodePort, LoadBalancer or ExternalName",
    ),
    plan(
        "rbac-sensitive",
        "a Role granting any verb on secrets, pods/exec, pods/attach, pods/portforward, pods/ephemeralcontainers, any */proxy, serviceaccounts/token, escalate, bind or impersonate",
    ),
    plan(
        "rbac-writes",
        "a Role granting create, update or patch on what the policy judges: pods, workloads, Services, Ingresses, NetworkPolicies, PVCs, HPAs, PDBs, Endpoints",
    ),
    plan(
        "rbac-ceiling",
        "a Role granting anything beyond the namespace edit ceiling (and role_resources), nonResourceURLs",
    ),
    plan(
        "service-account",
        "a pod running as a ServiceAccount the release doesn't create, or as default with its token mounted",
    ),
    plan(
        "node-name",
        "a pod pinned to a node (nodeName, nodeAffinity on fields)",
    ),
    plan(
        "control-plane",
        "tolerations, nodeSelector or nodeAffinity aimed at control-plane nodes; tolerating every taint",
    ),
    plan(
        "pod-field",
        "a pod, container or securityContext field the policy doesn't know; ephemeralContainers, priorityClassName, priority, runtimeClassName, schedulerName, resourceClaims",
    ),
    plan(
        "release-selector",
        "a Service, NetworkPolicy or PDB selector that is missing, pins no label value, or matches no pod template of the release",
    ),
    plan(
        "release-target",
        "an HPA, Ingress or route backend, TLS Secret, PVC data source or Endpoints aimed at an object the release doesn't create",
    ),
    plan(
        "ingress-host",
        "an Ingress or route host outside the plan's allow_hosts, no host, a default backend; external-dns annotations on a Service",
    ),
    plan(
        "ingress-annotation",
        "an Ingress or route annotation outside the allow-list (and allow_annotations)",
    ),
    plan(
        "networkpolicy-open",
        "a NetworkPolicy rule admitting every peer: no from/to, `{}`, namespaceSelector {}, an ipBlock wider than /8 (/16 for IPv6)",
    ),
    plan(
        "finalizers",
        "metadata.finalizers on any object (deletion and uninstall would wait on a controller)",
    ),
    plan(
        "pvc-binding",
        "a PersistentVolumeClaim bound to an existing volume (volumeName, selector, storageClassName \"\")",
    ),
    plan(
        "service-account-token",
        "a Secret of type kubernetes.io/service-account-token",
    ),
];

/// The rule called `name`.
pub(crate) fn find(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// The rules as `catalog lint` lists them: those a plan may loosen by name,
/// then those no plan may.
pub(crate) fn summary() -> Vec<String> {
    let names = |loosenable: bool| {
        RULES
            .iter()
            .filter(|r| r.loosenable == loosenable)
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        format!(
            "policy rules a plan may loosen (chart.policy.allow): {}",
            names(true)
        ),
        format!("policy rules no plan may loosen: {}", names(false)),
    ]
}
