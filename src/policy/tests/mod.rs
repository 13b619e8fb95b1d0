//! Unit tests per rule, on small YAML strings.

mod allowlist;
mod allowlist_cases;
mod allowlist_network_cases;
mod pods;

use serde_json::{Value, json};

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

/// RFC 7386 merge of `patch` into `v` (`null` deletes a key; a `null`
/// patch changes nothing).
fn merge(v: &mut Value, patch: &Value) {
    match patch {
        Value::Null => {}
        Value::Object(p) => {
            if !v.is_object() {
                *v = json!({});
            }
            let map = v.as_object_mut().unwrap();
            for (k, pv) in p {
                if pv.is_null() {
                    map.remove(k);
                } else {
                    merge(map.entry(k.clone()).or_insert(Value::Null), pv);
                }
            }
        }
        other => *v = other.clone(),
    }
}

/// A pod spec that passes "restricted", with `pod_patch` merged into it and
/// `container_patch` into its one container `app`.
fn pod(pod_patch: &Value, container_patch: &Value) -> Value {
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "app",
            "image": "x",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        }],
    });
    merge(&mut spec, pod_patch);
    merge(&mut spec["containers"][0], container_patch);
    spec
}

/// An object `w` of `kind` carrying `spec` where that kind keeps its pod,
/// as JSON (which is YAML).
fn workload(kind: &str, spec: &Value) -> String {
    let template = json!({"metadata": {"labels": {"app": "w"}}, "spec": spec});
    let (api, body) = match kind {
        "Pod" => ("v1", json!({"spec": spec})),
        "PodTemplate" => ("v1", json!({"template": template})),
        "ReplicationController" => ("v1", json!({"spec": {"template": template}})),
        "Job" => ("batch/v1", json!({"spec": {"template": template}})),
        "CronJob" => (
            "batch/v1",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        ),
        _ => ("apps/v1", json!({"spec": {"template": template}})),
    };
    let mut doc = json!({"apiVersion": api, "kind": kind, "metadata": {"name": "w"}});
    merge(&mut doc, &body);
    doc.to_string()
}

#[test]
fn well_behaved_manifests_pass() {
    let yaml = format!(
        "---\n# Source: x/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: apps}}\nspec: {{clusterIP: None, selector: {{app: w}}}}\n---\n\n---\n{}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: r}}\nrules: [{{apiGroups: [''], resources: [configmaps], verbs: [get]}}]\n",
        workload("Deployment", &pod(&json!(null), &json!(null)))
    );
    assert_eq!(run(&yaml, &Policy::default()), vec![]);
    assert_eq!(run("", &Policy::default()), vec![]);
}

#[test]
fn display_names_object_and_rule() {
    let yaml = workload(
        "Deployment",
        &pod(
            &json!(null),
            &json!({"securityContext": {"privileged": true}}),
        ),
    );
    let err = check(&yaml, NS, &Policy::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Deployment/w: container \"app\" is privileged (rule: privileged-container)"
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
    assert_eq!(
        run(svc, &p),
        vec![
            ("Service/s".into(), "kind-not-allowed"),
            ("Service/s".into(), "release-selector")
        ]
    );
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

/// A Role `admin` and a ServiceAccount `app` of the release.
const OWN_RBAC: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: admin}\nrules: []\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app}\n";

#[test]
fn rbac() {
    let rb = |kind: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: b}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: admin}}\nsubjects: [{{kind: ServiceAccount, name: app}}]\n---\n{OWN_RBAC}"
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
    assert_eq!(
        rules(&role("{apiGroups: ['*'], resources: [pods], verbs: [get]}")),
        vec!["wildcard-rbac"]
    );
    assert!(!Policy::default().allows("wildcard-rbac"));
    assert_eq!(
        run(
            &role("{apiGroups: [''], resources: ['*'], verbs: [get]}"),
            &policy("allow: [wildcard-rbac]")
        ),
        vec![("Role/r".into(), "wildcard-rbac")]
    );
}

#[test]
fn rbac_that_reaches_beyond_the_release() {
    let role = |rule: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: r}}\nrules: [{rule}]\n"
        )
    };
    for grant in [
        "{apiGroups: [''], resources: [secrets], verbs: [get]}",
        "{apiGroups: [''], resources: [Secrets], verbs: [list], resourceNames: [x]}",
        "{apiGroups: [''], resources: [pods/exec], verbs: [create]}",
        "{apiGroups: [''], resources: [pods/attach], verbs: [create]}",
        "{apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}",
        "{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [escalate]}",
        "{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [bind]}",
        "{apiGroups: [''], resources: [users], verbs: [impersonate]}",
    ] {
        assert_eq!(rules(&role(grant)), vec!["rbac-sensitive"], "{grant}");
        assert_eq!(
            run(&role(grant), &policy("allow: [rbac-sensitive]")),
            vec![]
        );
    }
    let binding = |subject: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: b}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: admin}}\nsubjects: [{subject}]\n---\n{OWN_RBAC}"
        )
    };
    for subject in [
        "{kind: Group, name: 'system:authenticated'}",
        "{kind: Group, name: 'system:serviceaccounts'}",
        "{kind: User, name: 'system:anonymous'}",
        "{kind: user, name: ' SYSTEM:kube-proxy'}",
    ] {
        assert_eq!(
            rules(&binding(subject)),
            vec!["rbac-system-subject"],
            "{subject}"
        );
    }
    assert_eq!(
        rules(&binding(
            "{kind: ServiceAccount, name: app, namespace: apps}"
        )),
        Vec::<&str>::new()
    );
}

#[test]
fn services_stay_inside_the_cluster() {
    let svc = |spec: &str| {
        let spec = spec.replacen('{', "{selector: {app: w}, ", 1);
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec: {spec}\n---\n{}",
            workload("Deployment", &pod(&json!(null), &json!(null)))
        )
    };
    assert_eq!(
        rules(&svc("{type: ClusterIP, ports: [{port: 80}]}")),
        Vec::<&str>::new()
    );
    assert_eq!(rules(&svc("{clusterIP: None}")), Vec::<&str>::new());
    for t in ["NodePort", "LoadBalancer", "ExternalName"] {
        let s = svc(&format!("{{type: {t}}}"));
        assert_eq!(rules(&s), vec!["service-type"], "{t}");
        assert_eq!(run(&s, &policy("allow: [service-type]")), vec![]);
    }
    assert_eq!(rules(&svc("{Type: NodePort}")), vec!["service-type"]);
    let ips = svc("{externalIPs: [1.2.3.4]}");
    assert_eq!(rules(&ips), vec!["service-external-ips"]);
    assert_eq!(
        run(&ips, &policy("allow: [service-type]")),
        vec![("Service/s".into(), "service-external-ips")]
    );
}

#[test]
fn service_account_token_secrets() {
    let secret = |t: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: t, annotations: {{kubernetes.io/service-account.name: default}}}}\ntype: {t}\n"
        )
    };
    assert_eq!(
        rules(&secret("kubernetes.io/service-account-token")),
        vec!["service-account-token"]
    );
    assert_eq!(rules(&secret("Opaque")), Vec::<&str>::new());
    assert_eq!(
        run(
            &secret("kubernetes.io/service-account-token"),
            &policy("allow: [service-account-token]")
        ),
        vec![]
    );
}

/// YAML merge keys and anchors hide nothing: YAML readers disagree on
/// them, so they are refused before any rule looks (src/manifest).
#[test]
fn anchors_and_merge_keys_hide_nothing() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nx-bad: &bad {privileged: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\nspec:\n  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n  containers:\n  - name: app\n    securityContext:\n      <<: *bad\n";
    assert_eq!(rules(yaml), vec!["ambiguous-yaml"]);
}

#[test]
fn every_rule_has_a_unique_stable_name() {
    let mut names: Vec<&str> = super::RULES.iter().map(|r| r.name).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before);
    for name in names {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{name}"
        );
    }
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
            ("DaemonSet/d".into(), "privilege-escalation"),
            ("DaemonSet/d".into(), "capabilities-drop-all"),
            ("DaemonSet/d".into(), "run-as-root"),
            ("DaemonSet/d".into(), "seccomp"),
            ("DaemonSet/d".into(), "service-account"),
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
    let p = policy("allow: [seccomp, other-namespace, kind-not-allowed, no-such-rule]");
    let problems = p.problems();
    assert_eq!(
        problems.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["allow[1]", "allow[2]", "allow[3]"]
    );
    assert!(problems[0].1.contains("can't be loosened"), "{problems:?}");
    assert!(problems[1].1.contains("extra_kinds"), "{problems:?}");
    assert!(
        problems[2].1.contains("unknown rule `no-such-rule`"),
        "{problems:?}"
    );
    // A rule that can't be loosened stays on whatever the catalog says.
    assert!(!p.allows("other-namespace"));
}

#[test]
fn allowances_say_what_a_plan_allows() {
    assert!(Policy::default().allowances().is_empty());
    let p = policy(
        "{extra_kinds: [DaemonSet], allow_host_network: true, allow: [seccomp], allow_capabilities: [SYS_TIME]}",
    );
    assert_eq!(
        p.allowances(),
        [
            "kinds: also DaemonSet",
            "rules off: host-namespace, host-port, seccomp",
            "capabilities: also SYS_TIME"
        ]
    );
}
