//! Which kinds exist where: the default allow-list, the cluster-scoped kinds
//! that are never allowed, and how a catalog names a kind.
//!
//! A kind is identified by API group and kind (`apps` + `Deployment`), never
//! by kind alone, so a custom resource that happens to be called
//! `Deployment` is not mistaken for the built-in one.

/// Built-in namespaced kinds a catalog may name without a group, with the
/// API group each belongs to (`""` is the core group).
const KNOWN: &[(&str, &str)] = &[
    ("Pod", ""),
    ("Service", ""),
    ("ConfigMap", ""),
    ("Secret", ""),
    ("PersistentVolumeClaim", ""),
    ("ServiceAccount", ""),
    ("ReplicationController", ""),
    ("Endpoints", ""),
    ("LimitRange", ""),
    ("ResourceQuota", ""),
    ("PodTemplate", ""),
    ("Deployment", "apps"),
    ("StatefulSet", "apps"),
    ("DaemonSet", "apps"),
    ("ReplicaSet", "apps"),
    ("Job", "batch"),
    ("CronJob", "batch"),
    ("Role", "rbac.authorization.k8s.io"),
    ("RoleBinding", "rbac.authorization.k8s.io"),
    ("NetworkPolicy", "networking.k8s.io"),
    ("Ingress", "networking.k8s.io"),
    ("PodDisruptionBudget", "policy"),
    ("HorizontalPodAutoscaler", "autoscaling"),
    ("EndpointSlice", "discovery.k8s.io"),
    ("Lease", "coordination.k8s.io"),
];

/// Allowed when the plan does not say `allow_kinds`: namespaced workloads
/// and what they need. DaemonSet is left out: it puts a pod on every node.
pub(super) const DEFAULT_ALLOWED: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
    "Service",
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Ingress",
];

/// Cluster-scoped kinds, refused whatever the plan allows. Matched on the
/// kind alone, ignoring case, so no group spelling gets one through.
const CLUSTER_SCOPED: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "Namespace",
    "PersistentVolume",
    "StorageClass",
    "VolumeAttributesClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "PriorityClass",
    "APIService",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "IngressClass",
    "RuntimeClass",
    "Node",
    "CertificateSigningRequest",
    "ClusterTrustBundle",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "DeviceClass",
    "ServiceCIDR",
    "IPAddress",
    "ComponentStatus",
];

/// Linux capabilities a container may add (without the `CAP_` prefix).
const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// An API group and a kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct GroupKind {
    pub(crate) group: String,
    pub(crate) kind: String,
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → core).
pub(super) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// Whether `kind` is cluster-scoped (refused always).
pub(super) fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.iter().any(|k| k.eq_ignore_ascii_case(kind))
}

/// Resolves a catalog entry: a built-in kind (`Deployment`) or a kind with
/// its group (`ServiceMonitor.monitoring.coreos.com`).
pub(super) fn parse_entry(entry: &str) -> Result<GroupKind, String> {
    let (kind, group) = match entry.split_once('.') {
        Some((kind, group)) if !kind.is_empty() && !group.is_empty() => (kind, Some(group)),
        Some(_) => return Err(format!("`{entry}` is not `Kind` or `Kind.group`")),
        None => (entry, None),
    };
    if is_cluster_scoped(kind) {
        return Err(format!(
            "`{entry}` is cluster-scoped; charts may never create cluster-scoped objects"
        ));
    }
    let group = match group {
        Some(group) => group,
        None => KNOWN
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, g)| *g)
            .ok_or_else(|| {
                format!(
                    "unknown kind `{entry}`; name built-in kinds exactly (`Deployment`) \
                     and others with their API group (`ServiceMonitor.monitoring.coreos.com`)"
                )
            })?,
    };
    Ok(GroupKind {
        group: group.to_owned(),
        kind: kind.to_owned(),
    })
}

/// A capability as the runtime sees it: upper case, no `CAP_` prefix.
pub(super) fn normalize_capability(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map_or(upper.clone(), str::to_owned)
}

/// Whether `cap` (normalized) is a Linux capability.
pub(super) fn is_capability(cap: &str) -> bool {
    CAPABILITIES.contains(&cap)
}
