//! Unit tests per rule, on small YAML strings.

mod pods;

use super::{Policy, Violation, check};

const NS: &str = "apps";

/// The violations of `yaml` under `policy`, as `(kind/name, rule)`.
fn run(yaml: &str, policy: &Policy) -> Vec<(String, &'static str)> {
    match check(yaml, NS, policy) {
        Ok(()) => Vec::new(),
        Err(v) => {
            v.0.iter()
                .map(|v: &Violation| (format!("{}/{}", v.kind, v.name), v.rule))
                .collect()
        }
    }
}

fn rules(yaml: &str) -> Vec<&'static str> {
    run(yaml, &Policy::default())
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

fn policy(yaml: &str) -> Policy {
    serde_saphyr::from_str(yaml).unwrap()
}

/// A Deployment whose pod spec is `spec` (indented as a `spec:` body).
fn deployment(spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  template:\n    spec:\n{}",
        indent(spec, 6)
    )
}

fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

const APP: &str = "containers:\n- name: app\n  image: x\n";

#[test]
fn well_behaved_manifests_pass() {
    let yaml = format!(
        "---\n# Source: x/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: apps}}\n---\n\n---\n{}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: r}}\nrules: [{{apiGroups: [''], resources: [configmaps], verbs: [get]}}]\n",
        deployment(&format!(
            "{APP}  securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}"
        ))
    );
    assert_eq!(run(&yaml, &Policy::default()), vec![]);
    assert_eq!(run("", &Policy::default()), vec![]);
}

#[test]
fn display_names_object_and_rule() {
    let yaml = deployment(&format!("{APP}  securityContext: {{privileged: true}}"));
    let err = check(&yaml, NS, &Policy::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment/web: container \"app\" is privileged (rule: privileged-container)"
    );
    let _: &dyn std::error::Error = &err;
}

#[test]
fn documents_must_be_objects() {
    assert_eq!(rules("just a string\n"), vec!["not-an-object"]);
    assert_eq!(
        rules("kind: ConfigMap\nmetadata: {name: x}\n"),
        vec!["not-an-object"]
    );
    assert_eq!(
        rules("apiVersion: v1\nkind: ConfigMap\n"),
        vec!["not-an-object"]
    );
    assert_eq!(rules("a: [\n"), vec!["invalid-yaml"]);
    // Duplicate keys could show this check one value and the cluster another.
    assert_eq!(
        rules("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nkind: ClusterRole\n"),
        vec!["invalid-yaml"]
    );
}

#[test]
fn cluster_scoped_kinds_are_refused_even_when_allowed() {
    for kind in [
        "rbac.authorization.k8s.io/v1 ClusterRole",
        "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
        "apiextensions.k8s.io/v1 CustomResourceDefinition",
        "v1 Namespace",
        "v1 PersistentVolume",
        "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy",
        "scheduling.k8s.io/v1 PriorityClass",
        "evil.io/v1 clusterrole",
    ] {
        let (api, kind) = kind.split_once(' ').unwrap();
        let yaml = format!("apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\n");
        let p = policy(&format!("allow_kinds: [{kind}.evil.io]"));
        assert_eq!(
            run(&yaml, &p),
            vec![(format!("{kind}/x"), "cluster-scoped")]
        );
    }
}

#[test]
fn kinds_match_group_and_kind() {
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\n";
    assert_eq!(rules(ds), vec!["kind-not-allowed"]);
    assert_eq!(run(ds, &policy("extra_kinds: [DaemonSet]")), vec![]);
    // A custom resource called Deployment is not a Deployment.
    assert_eq!(
        rules("apiVersion: evil.io/v1\nkind: Deployment\nmetadata: {name: d}\n"),
        vec!["kind-not-allowed"]
    );
    // allow_kinds replaces the defaults; Kind.group names custom resources.
    let p = policy("allow_kinds: [ConfigMap, ServiceMonitor.monitoring.coreos.com]");
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
    assert_eq!(run(svc, &p), vec![("Service/s".into(), "kind-not-allowed")]);
    let sm = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\n";
    assert_eq!(run(sm, &p), vec![]);
    assert_eq!(rules(sm), vec!["kind-not-allowed"]);
}

#[test]
fn objects_stay_in_the_release_namespace() {
    let cm = |ns: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, {ns}}}\n");
    assert_eq!(rules(&cm("namespace: apps")), Vec::<&str>::new());
    assert_eq!(rules(&cm("namespace: ''")), Vec::<&str>::new());
    assert_eq!(
        rules(&cm("namespace: kube-system")),
        vec!["other-namespace"]
    );
    assert_eq!(
        rules(&cm("Namespace: kube-system")),
        vec!["other-namespace"]
    );
    let err = check(&cm("namespace: kube-system"), NS, &Policy::default()).unwrap_err();
    assert_eq!(err.0[0].namespace, "kube-system");
}

#[test]
fn rbac() {
    let rb = |kind: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: b}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: admin}}\nsubjects: [{{kind: ServiceAccount, name: default}}]\n"
        )
    };
    assert_eq!(rules(&rb("Role")), Vec::<&str>::new());
    assert_eq!(rules(&rb("ClusterRole")), vec!["rolebinding-clusterrole"]);
    let role = |rule: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: r}}\nrules: [{rule}]\n"
        )
    };
    assert_eq!(
        rules(&role("{apiGroups: [''], resources: [pods], verbs: ['*']}")),
        vec!["wildcard-rbac"]
    );
    assert_eq!(
        rules(&role("{apiGroups: [''], resources: ['*'], verbs: [get]}")),
        vec!["wildcard-rbac"]
    );
    assert_eq!(
        rules(&role(
            "{apiGroups: [''], resources: ['pods/*'], verbs: [get]}"
        )),
        vec!["wildcard-rbac"]
    );
}

#[test]
fn every_violation_is_reported() {
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d, namespace: kube-system}\nspec:\n  template:\n    spec:\n      hostPID: true\n      containers: [{name: c, securityContext: {privileged: true}}]\n";
    let yaml = format!("{ds}---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns1}}\n");
    assert_eq!(
        run(&yaml, &Policy::default()),
        vec![
            ("DaemonSet/d".into(), "kind-not-allowed"),
            ("DaemonSet/d".into(), "other-namespace"),
            ("DaemonSet/d".into(), "host-namespace"),
            ("DaemonSet/d".into(), "privileged-container"),
            ("Namespace/ns1".into(), "cluster-scoped"),
        ]
    );
}

#[test]
fn policy_lint() {
    assert!(Policy::default().problems().is_empty());
    let p = policy(
        "allow_kinds: [Deployment, Widget, ClusterRole]\nextra_kinds: [Foo.example.com, .x]\nallow_capabilities: [NET_BIND_SERVICE, cap_sys_admin, FLY]",
    );
    let paths: Vec<String> = p.problems().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "allow_kinds[1]",
            "allow_kinds[2]",
            "extra_kinds[1]",
            "allow_capabilities[2]"
        ]
    );
    assert!(serde_saphyr::from_str::<Policy>("allow_everything: true").is_err());
}
