//! The allow-list rules, as case tables: each hostile object, added to a
//! small well-behaved release, breaks exactly its rule (and the rule's
//! allowance lets it through when a plan may loosen it); each benign one
//! breaks nothing.

use serde_json::{Value, json};

use super::allowlist_cases::hostile;
use super::{merge, pod, policy, run};
use crate::policy::{Policy, ruleset};

/// A release that passes: Deployment `w` (pods labelled `app: w`), its
/// ServiceAccount `sa`, Role `r`, Service `s`, Secret `tls`, PVC `data`.
fn release() -> Vec<Value> {
    let template = json!({"metadata": {"labels": {"app": "w", "tier": "web"}},
        "spec": pod(&json!({"serviceAccountName": "sa", "automountServiceAccountToken": null}), &json!(null))});
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": template}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"selector": {"app": "w"}, "ports": [{"port": 80}]}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"]}}),
    ]
}

fn yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// The release with `extra` added, or with its Deployment's pod spec
/// patched by `pod_patch`.
fn with(extra: Option<Value>, pod_patch: &Value) -> String {
    let mut docs = release();
    merge(&mut docs[0]["spec"]["template"]["spec"], pod_patch);
    // An array stands for several objects.
    match extra {
        Some(Value::Array(objects)) => docs.extend(objects),
        other => docs.extend(other),
    }
    yaml(&docs)
}

pub(super) fn obj(api: &str, kind: &str, body: Value) -> Value {
    let mut o = json!({"apiVersion": api, "kind": kind, "metadata": {"name": "x"}});
    merge(&mut o, &body);
    o
}

pub(super) fn role(rules: Value) -> Value {
    obj(
        "rbac.authorization.k8s.io/v1",
        "Role",
        json!({"rules": rules}),
    )
}

pub(super) fn binding(role_ref: Value, subjects: Value) -> Value {
    obj(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        json!({"roleRef": role_ref, "subjects": subjects}),
    )
}

pub(super) fn ingress(spec: Value, annotations: Value) -> Value {
    obj(
        "networking.k8s.io/v1",
        "Ingress",
        json!({"metadata": {"annotations": annotations}, "spec": spec}),
    )
}

pub(super) fn backend(service: &str) -> Value {
    json!({"service": {"name": service, "port": {"number": 80}}})
}

pub(super) fn netpol(spec: Value) -> Value {
    obj(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        json!({"spec": spec}),
    )
}

pub(super) const RB: &str = "rbac.authorization.k8s.io";

/// Objects and pod patches that break nothing.
fn benign() -> Vec<(Option<Value>, Value)> {
    let none = Value::Null;
    let own_role = json!({"apiGroup": RB, "kind": "Role", "name": "r"});
    vec![
        (
            Some(role(json!([
                {"apiGroups": [""], "resources": ["configmaps", "events", "serviceaccounts"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["pods", "services", "persistentvolumeclaims"], "verbs": ["get", "list", "watch", "delete"]},
                {"apiGroups": [""], "resources": ["pods/log", "endpoints"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["deployments/scale", "statefulsets/scale"], "verbs": ["get", "update"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": ["get", "delete"]},
            ]))),
            none.clone(),
        ),
        (
            Some(binding(
                own_role.clone(),
                json!([{"kind": "ServiceAccount", "name": "sa", "namespace": "apps"}]),
            )),
            none.clone(),
        ),
        (
            Some(binding(
                own_role,
                json!([{"kind": "ServiceAccount", "name": "sa"}]),
            )),
            none.clone(),
        ),
        (
            None,
            json!({"serviceAccountName": "default", "automountServiceAccountToken": false}),
        ),
        (
            None,
            json!({"serviceAccountName": null, "automountServiceAccountToken": false}),
        ),
        (
            None,
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}]}}}}),
        ),
        (
            None,
            json!({"hostAliases": [{"ip": "127.0.0.1", "hostnames": ["db"]}], "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": false, "terminationGracePeriodSeconds": 5, "topologySpreadConstraints": []}),
        ),
        (
            Some(obj(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                json!({"spec": {"hostnames": ["a.apps.example.com"],
            "parentRefs": [{"name": "public", "namespace": "gateways"}],
            "rules": [{"backendRefs": [{"name": "s", "port": 80}]}]}}),
            )),
            none.clone(),
        ),
    ]
}

/// Benign objects that point at the release's own objects.
fn benign_targets() -> Vec<(Option<Value>, Value)> {
    let none = Value::Null;
    let own = json!({"matchLabels": {"app": "w"}});
    vec![
        (
            Some(obj(
                "v1",
                "Service",
                json!({"spec": {"clusterIP": "None", "selector": {"app": "w", "tier": "web"}}}),
            )),
            none.clone(),
        ),
        (
            Some(obj(
                "policy/v1",
                "PodDisruptionBudget",
                json!({"spec": {"maxUnavailable": 1, "selector": own}}),
            )),
            none.clone(),
        ),
        (
            Some(obj(
                "policy/v1",
                "PodDisruptionBudget",
                json!({"spec": {"maxUnavailable": 1,
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["w"]}]}}}),
            )),
            none.clone(),
        ),
        (
            Some(obj(
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                json!({"spec": {"maxReplicas": 3,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}}}),
            )),
            none.clone(),
        ),
        (
            Some(obj(
                "v1",
                "PersistentVolumeClaim",
                json!({"spec": {"dataSource": {"kind": "PersistentVolumeClaim", "name": "data"}}}),
            )),
            none.clone(),
        ),
        (
            Some(netpol(
                json!({"podSelector": own, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "w"}}}, {"namespaceSelector": {"matchLabels": {"team": "a"}}}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 5432}]}]}),
            )),
            none.clone(),
        ),
        (
            Some(netpol(
                json!({"podSelector": own, "policyTypes": ["Ingress"], "ingress": []}),
            )),
            none.clone(),
        ),
        (
            Some(ingress(
                json!({"ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.apps.example.com"], "secretName": "tls"}],
            "rules": [{"host": "shop.apps.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("s")}]}},
                      {"host": "web.apps.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("s")}]}}]}),
                json!({"nginx.ingress.kubernetes.io/proxy-body-size": "8m", "meta.helm.sh/release-name": "x"}),
            )),
            none,
        ),
    ]
}

/// The policy every case runs under: Ingress hosts under the plan's
/// pattern, and HTTPRoute, GRPCRoute and TCPRoute as allowed kinds.
fn plan() -> Policy {
    policy(
        "{allow_hosts: ['*.apps.example.com'], extra_kinds: [HTTPRoute.gateway.networking.k8s.io, GRPCRoute.gateway.networking.k8s.io, TCPRoute.gateway.networking.k8s.io]}",
    )
}

#[test]
fn the_base_release_passes() {
    assert_eq!(run(&with(None, &Value::Null), &plan()), vec![]);
    assert_eq!(run(&with(None, &Value::Null), &Policy::default()), vec![]);
}

#[test]
fn each_hostile_object_breaks_its_rule() {
    for (rule, extra, patch) in hostile() {
        let text = with(extra, &patch);
        let mut found: Vec<&str> = run(&text, &plan()).into_iter().map(|(_, r)| r).collect();
        found.dedup();
        assert_eq!(found, vec![rule], "{text}");
        let loosenable = ruleset::find(rule).unwrap().loosenable;
        let mut allowed = plan();
        allowed.allow.push(rule.to_owned());
        assert_eq!(
            run(&text, &allowed).is_empty(),
            loosenable,
            "{rule} allowed: {text}"
        );
    }
}

#[test]
fn each_benign_object_passes() {
    for (extra, patch) in benign().into_iter().chain(benign_targets()) {
        let text = with(extra, &patch);
        assert_eq!(run(&text, &plan()), vec![], "{text}");
    }
}

#[test]
fn every_new_rule_has_a_hostile_case() {
    let cases: Vec<&str> = hostile().into_iter().map(|(r, _, _)| r).collect();
    assert_eq!(cases.len(), 109, "the tables lost or gained cases");
    for rule in [
        "rbac-sensitive",
        "rbac-writes",
        "rbac-ceiling",
        "rolebinding-role",
        "rbac-subject",
        "service-account",
        "node-name",
        "control-plane",
        "pod-field",
        "release-selector",
        "release-target",
        "pvc-binding",
        "ingress-host",
        "ingress-annotation",
        "networkpolicy-open",
        "finalizers",
    ] {
        assert!(ruleset::find(rule).is_some(), "{rule}");
        assert!(cases.contains(&rule), "{rule} has no hostile case");
    }
}

#[test]
fn plan_settings_widen_by_value() {
    let ing = |host: &str| {
        with(
            Some(ingress(
                json!({"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("s")}]}}]}),
                json!({"cert-manager.io/cluster-issuer": "le"}),
            )),
            &Value::Null,
        )
    };
    let found = |text: &str, p: &Policy| -> Vec<&'static str> {
        let mut rules: Vec<&str> = run(text, p).into_iter().map(|(_, r)| r).collect();
        rules.dedup();
        rules
    };
    let p = policy(
        "{allow_hosts: ['*.{namespace}.example.com'], allow_annotations: [cert-manager.io/cluster-issuer]}",
    );
    assert_eq!(found(&ing("shop.apps.example.com"), &p), Vec::<&str>::new());
    assert_eq!(
        found(&ing("shop.other.example.com"), &p),
        vec!["ingress-host"]
    );
    assert_eq!(
        found(&ing("shop.apps.example.com"), &Policy::default()),
        vec!["ingress-annotation", "ingress-host"]
    );
    let lease = with(
        Some(role(
            json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"]}]),
        )),
        &Value::Null,
    );
    assert_eq!(found(&lease, &Policy::default()), vec!["rbac-ceiling"]);
    assert_eq!(
        found(
            &lease,
            &policy("role_resources: [leases.coordination.k8s.io]")
        ),
        Vec::<&str>::new()
    );
}

#[test]
fn plan_settings_are_linted() {
    let p = policy(
        "{allow_hosts: ['*', 'a.example.com', '*.{namespace}.example.com', 'bad host'], allow_annotations: ['x/*'], role_resources: [secrets, '*', leases.coordination.k8s.io, ingresses.networking.k8s.io]}",
    );
    let paths: Vec<String> = p.problems().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "allow_hosts[0]",
            "allow_hosts[3]",
            "allow_annotations[0]",
            "role_resources[0]",
            "role_resources[1]",
            "role_resources[3]"
        ]
    );
    assert_eq!(
        p.allowances()[0],
        "ingress hosts: *, a.example.com, *.{namespace}.example.com, bad host"
    );
}
