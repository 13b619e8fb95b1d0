/// One hostile chart: the object it smuggles in (`{r}` is the release name),
/// the rule that stops it, and the plan policy that would allow it, if any.
pub struct Case {
    pub chart: &'static str,
    pub object: &'static str,
    pub rule: &'static str,
    pub allow: Option<&'static str>,
}

impl Case {
    /// Asserts that a refusal's `description` of this case's chart, as
    /// `instance`, names the offending object and the rule.
    #[track_caller]
    pub fn assert_named_in(&self, instance: &str, description: &str) {
        let (chart, rule) = (self.chart, self.rule);
        let object = self.object.replace("{r}", &format!("cb-{instance}"));
        let named = description.contains(&format!("{object}: "));
        assert!(named, "{chart}: expected {object} in {description}");
        let ruled = description.contains(&format!("(rule: {rule})"));
        assert!(ruled, "{chart}: expected rule {rule} in {description}");
    }
}

pub const fn case(
    chart: &'static str,
    object: &'static str,
    rule: &'static str,
    allow: Option<&'static str>,
) -> Case {
    Case {
        chart,
        object,
        rule,
        allow,
    }
}

pub const CASES: &[Case] = &[
    case(
        "cluster-role",
        "ClusterRole/{r}-everything",
        "cluster-scoped",
        None,
    ),
    case(
        "crd",
        "CustomResourceDefinition/widgets.evil.example.com",
        "cluster-scoped",
        None,
    ),
    case(
        "namespace-object",
        "Namespace/{r}-land",
        "cluster-scoped",
        None,
    ),
    case(
        "other-namespace",
        "ConfigMap/{r}-coredns-override",
        "other-namespace",
        None,
    ),
    case(
        "privileged",
        "Deployment/{r}-web",
        "privileged-container",
        Some("{allow_privileged: true}"),
    ),
    case(
        "host-path",
        "Deployment/{r}-web",
        "host-path",
        Some("{allow_host_path: true}"),
    ),
    case(
        "host-network",
        "Pod/{r}-sniffer",
        "host-namespace",
        Some("{allow_host_network: true}"),
    ),
    case(
        "host-pid",
        "Deployment/{r}-web",
        "host-namespace",
        Some("{allow_host_network: true}"),
    ),
    case(
        "host-port",
        "Deployment/{r}-web",
        "host-port",
        Some("{allow_host_network: true}"),
    ),
    case(
        "capabilities-add",
        "Deployment/{r}-web",
        "capability-not-allowed",
        Some("{allow_capabilities: [SYS_ADMIN]}"),
    ),
    case(
        "rolebinding-to-clusterrole",
        "RoleBinding/{r}-admin",
        "rolebinding-clusterrole",
        None,
    ),
    case(
        "wildcard-role",
        "Role/{r}-everything",
        "wildcard-rbac",
        None,
    ),
    case(
        "daemonset",
        "DaemonSet/{r}-agent",
        "kind-not-allowed",
        Some("{extra_kinds: [DaemonSet]}"),
    ),
    case(
        "webhook",
        "MutatingWebhookConfiguration/{r}-inject",
        "cluster-scoped",
        None,
    ),
    case(
        "node-port",
        "Service/{r}-public",
        "service-type",
        Some("{allow: [service-type]}"),
    ),
    case(
        "external-ips",
        "Service/{r}-mitm",
        "service-external-ips",
        None,
    ),
    case(
        "secret-reader",
        "Role/{r}-secrets",
        "rbac-sensitive",
        Some("{allow: [rbac-sensitive]}"),
    ),
    case(
        "system-subject",
        "RoleBinding/{r}-everyone",
        "rbac-system-subject",
        None,
    ),
    case(
        "sa-token",
        "Secret/{r}-token",
        "service-account-token",
        Some("{allow: [service-account-token]}"),
    ),
    // The allow-list (issue 19): each class of what used to get through.
    case(
        "role-create-pods",
        "Role/{r}-pod-maker",
        "rbac-writes",
        Some("{allow: [rbac-writes]}"),
    ),
    case(
        "role-portforward",
        "Role/{r}-tunnel",
        "rbac-sensitive",
        Some("{allow: [rbac-sensitive]}"),
    ),
    case(
        "role-beyond-edit",
        "Role/{r}-binder",
        "rbac-ceiling",
        Some("{role_resources: [rolebindings.rbac.authorization.k8s.io]}"),
    ),
    case(
        "binding-other-namespace",
        "RoleBinding/{r}-foreign",
        "rbac-subject",
        None,
    ),
    case(
        "binding-outside-group",
        "RoleBinding/{r}-group",
        "rbac-subject",
        None,
    ),
    case(
        "binding-foreign-role",
        "RoleBinding/{r}-borrow",
        "rolebinding-role",
        None,
    ),
    case(
        "foreign-service-account",
        "Deployment/{r}-web",
        "service-account",
        Some("{allow: [service-account]}"),
    ),
    case(
        "node-name",
        "Deployment/{r}-pinned",
        "node-name",
        Some("{allow: [node-name]}"),
    ),
    case(
        "control-plane",
        "Deployment/{r}-web",
        "control-plane",
        Some("{allow: [control-plane]}"),
    ),
    case(
        "priority-class",
        "Deployment/{r}-web",
        "pod-field",
        Some("{allow: [pod-field]}"),
    ),
    case(
        "service-without-selector",
        "Service/{r}-api",
        "release-selector",
        Some("{allow: [release-selector]}"),
    ),
    case(
        "pdb-other-release",
        "PodDisruptionBudget/{r}-pdb",
        "release-selector",
        Some("{allow: [release-selector]}"),
    ),
    case(
        "hpa-other-release",
        "HorizontalPodAutoscaler/{r}-scale",
        "release-target",
        Some("{allow: [release-target]}"),
    ),
    case(
        "networkpolicy-open",
        "NetworkPolicy/{r}-open",
        "networkpolicy-open",
        Some("{allow: [networkpolicy-open]}"),
    ),
    case(
        "pvc-volume-name",
        "PersistentVolumeClaim/{r}-data",
        "pvc-binding",
        Some("{allow: [pvc-binding]}"),
    ),
    case(
        "pvc-clone-other",
        "PersistentVolumeClaim/{r}-copy",
        "release-target",
        Some("{allow: [release-target]}"),
    ),
    case(
        "finalizer",
        "ConfigMap/{r}-sticky",
        "finalizers",
        Some("{allow: [finalizers]}"),
    ),
    case(
        "ingress-any-host",
        "Ingress/{r}-web",
        "ingress-host",
        Some("{allow_hosts: [victim.example.com]}"),
    ),
    case(
        "ingress-snippet",
        "Ingress/{r}-snippet",
        "ingress-annotation",
        Some(
            "{allow_hosts: ['*.apps.example.com'], \
             allow_annotations: [nginx.ingress.kubernetes.io/configuration-snippet]}",
        ),
    ),
    case(
        "ingress-foreign-backend",
        "Ingress/{r}-steal",
        "release-target",
        Some("{allow_hosts: ['*.apps.example.com'], allow: [release-target]}"),
    ),
];
