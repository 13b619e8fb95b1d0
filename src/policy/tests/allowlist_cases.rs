//! The hostile half of the allow-list case tables, one function per class:
//! (rule, extra object, patch on the Deployment's pod spec).

use serde_json::{Value, json};

use super::allowlist::{RB, backend, binding, ingress, netpol, obj, role};

/// Every hostile case.
pub(super) fn hostile() -> Vec<(&'static str, Option<Value>, Value)> {
    [
        rbac(),
        pods(),
        selectors(),
        targets(),
        super::allowlist_network_cases::ingresses(),
        super::allowlist_network_cases::routes(),
        super::allowlist_network_cases::network_policies(),
        spellings(),
        bindings(),
        other_classes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn rbac() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let rule = |g: &str, r: &str, v: &str| {
        role(json!([{"apiGroups": [g], "resources": [r], "verbs": [v]}]))
    };
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    for (g, r, v) in [
        ("", "secrets", "get"),
        ("", "secrets", "watch"),
        ("", "secrets", "create"),
        ("", "secrets", "patch"),
        ("", "pods/exec", "create"),
        ("", "pods/attach", "get"),
        ("", "pods/portforward", "create"),
        ("", "pods/ephemeralcontainers", "patch"),
        ("", "services/proxy", "get"),
        ("", "pods/proxy", "create"),
        ("", "nodes/proxy", "get"),
        ("", "serviceaccounts/token", "create"),
        (RB, "roles", "escalate"),
        (RB, "rolebindings", "bind"),
        ("", "serviceaccounts", "impersonate"),
    ] {
        out.push(("rbac-sensitive", Some(rule(g, r, v)), none.clone()));
    }
    for (g, r, v) in [
        ("", "pods", "create"),
        ("apps", "deployments", "patch"),
        ("apps", "daemonsets", "create"),
        ("batch", "cronjobs", "update"),
        ("", "replicationcontrollers", "create"),
        ("", "services", "create"),
        ("", "endpoints", "create"),
        ("discovery.k8s.io", "endpointslices", "create"),
        ("", "persistentvolumeclaims", "create"),
        ("networking.k8s.io", "ingresses", "patch"),
        ("networking.k8s.io", "networkpolicies", "update"),
        ("autoscaling", "horizontalpodautoscalers", "create"),
    ] {
        out.push(("rbac-writes", Some(rule(g, r, v)), none.clone()));
    }
    for (g, r, v) in [
        (RB, "roles", "create"),
        (RB, "rolebindings", "create"),
        ("", "limitranges", "create"),
        ("", "resourcequotas", "update"),
        ("coordination.k8s.io", "leases", "update"),
        ("", "configmaps", "approve"),
        (
            "certificates.k8s.io",
            "certificatesigningrequests",
            "create",
        ),
    ] {
        out.push(("rbac-ceiling", Some(rule(g, r, v)), none.clone()));
    }
    out.push((
        "rbac-ceiling",
        Some(role(
            json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
        )),
        none.clone(),
    ));
    out
}

fn bindings() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let own_role = json!({"apiGroup": RB, "kind": "Role", "name": "r"});
    let sa = json!([{"kind": "ServiceAccount", "name": "sa"}]);
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    out.push((
        "rolebinding-role",
        Some(binding(
            json!({"apiGroup": RB, "kind": "Role", "name": "someone-elses"}),
            sa.clone(),
        )),
        none.clone(),
    ));
    for subject in [
        json!({"kind": "User", "name": "alice"}),
        json!({"kind": "Group", "name": "developers"}),
        json!({"kind": "ServiceAccount", "name": "sa", "namespace": "other"}),
        json!({"kind": "ServiceAccount", "name": "default"}),
        json!({"kind": "ServiceAccount", "name": "not-ours", "namespace": "apps"}),
    ] {
        out.push((
            "rbac-subject",
            Some(binding(own_role.clone(), json!([subject]))),
            none.clone(),
        ));
    }
    out
}

fn pods() -> Vec<(&'static str, Option<Value>, Value)> {
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    // Pods.
    for patch in [
        json!({"serviceAccountName": "someone-elses"}),
        json!({"serviceAccountName": null, "serviceAccount": "someone-elses"}),
        json!({"serviceAccountName": "default", "automountServiceAccountToken": null}),
        json!({"serviceAccountName": null}),
        json!({"serviceAccountName": null, "automountServiceAccountToken": false, "volumes": [
            {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}),
    ] {
        out.push(("service-account", None, patch));
    }
    out.push(("node-name", None, json!({"nodeName": "cp-1"})));
    out.push((
        "node-name",
        None,
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["cp-1"]}]}]}}}}),
    ));
    for patch in [
        json!({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}),
        json!({"tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]}),
        json!({"tolerations": [{"operator": "Exists"}]}),
        json!({"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]}),
        json!({"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}),
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1,
            "preference": {"matchExpressions": [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}]}}]}}}),
    ] {
        out.push(("control-plane", None, patch));
    }
    for patch in [
        json!({"priorityClassName": "system-node-critical"}),
        json!({"priority": 1000000}),
        json!({"runtimeClassName": "runc-unsandboxed"}),
        json!({"schedulerName": "mine"}),
        json!({"resourceClaims": [{"name": "gpu", "resourceClaimName": "theirs"}]}),
        json!({"HostNetwork": false}),
        json!({"securityContext": {"RunAsGroup": 1000}}),
        json!({"futureIsolationKnob": true}),
    ] {
        out.push(("pod-field", None, patch));
    }
    out
}

fn selectors() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    // Selectors and targets.
    let svc = |spec: Value| obj("v1", "Service", json!({"spec": spec}));
    out.push((
        "release-selector",
        Some(svc(json!({"ports": [{"port": 80}]}))),
        none.clone(),
    ));
    out.push((
        "release-selector",
        Some(svc(json!({"selector": {}}))),
        none.clone(),
    ));
    out.push((
        "release-selector",
        Some(svc(json!({"selector": {"app": "victim"}}))),
        none.clone(),
    ));
    let pdb = |sel: Value| {
        obj(
            "policy/v1",
            "PodDisruptionBudget",
            json!({"spec": {"minAvailable": 1, "selector": sel}}),
        )
    };
    out.push(("release-selector", Some(pdb(json!({}))), none.clone()));
    out.push((
        "release-selector",
        Some(pdb(json!({"matchLabels": {"app": "victim"}}))),
        none.clone(),
    ));
    out.push((
        "release-selector",
        Some(pdb(json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["nothing"]}]}))),
        none.clone(),
    ));
    out.push((
        "release-selector",
        Some(netpol(json!({"podSelector": {}}))),
        none.clone(),
    ));
    out
}

fn targets() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    let hpa = |kind: &str, name: &str| {
        obj(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 2,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name}}}),
        )
    };
    out.push((
        "release-target",
        Some(hpa("Deployment", "victim")),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(hpa("StatefulSet", "w")),
        none.clone(),
    ));
    let pvc = |spec: Value| obj("v1", "PersistentVolumeClaim", json!({"spec": spec}));
    out.push((
        "release-target",
        Some(pvc(
            json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "victim-data"}}),
        )),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(pvc(json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "data", "namespace": "other"}}))),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(pvc(json!({"dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "theirs"}}))),
        none.clone(),
    ));
    out.push((
        "pvc-binding",
        Some(pvc(json!({"volumeName": "pv-of-another-tenant"}))),
        none.clone(),
    ));
    out.push((
        "pvc-binding",
        Some(pvc(
            json!({"selector": {"matchLabels": {"owner": "victim"}}}),
        )),
        none.clone(),
    ));
    out.push((
        "pvc-binding",
        None,
        json!({"volumes": [{"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"volumeName": "pv-1"}}}}]}),
    ));
    out
}

fn spellings() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    // Second spellings of a key count too.
    out.push((
        "ingress-host",
        Some(ingress(
            json!({"rules": [{"host": "a.apps.example.com", "Host": "victim.example.org",
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("s")}]}}]}),
            none.clone(),
        )),
        none.clone(),
    ));
    out.push((
        "release-selector",
        Some(obj(
            "policy/v1",
            "PodDisruptionBudget",
            json!({"spec": {"minAvailable": 1,
            "selector": {"matchLabels": {"app": "w"}}, "Selector": {}}}),
        )),
        none.clone(),
    ));
    out
}

fn other_classes() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    out.push((
        "finalizers",
        Some(obj(
            "v1",
            "ConfigMap",
            json!({"metadata": {"finalizers": ["example.com/never"]}}),
        )),
        none.clone(),
    ));
    out.push((
        "ingress-host",
        Some(obj("v1", "Service", json!({"metadata": {"annotations": {"external-dns.alpha.kubernetes.io/hostname": "victim.example.org"}},
            "spec": {"selector": {"app": "w"}}}))),
        none.clone(),
    ));
    // Every route kind, not only HTTPRoute.
    out.push((
        "release-target",
        Some(obj(
            "gateway.networking.k8s.io/v1",
            "GRPCRoute",
            json!({"spec": {"hostnames": ["g.apps.example.com"],
            "rules": [{"backendRefs": [{"name": "victim", "port": 9000}]}]}}),
        )),
        none.clone(),
    ));
    out.push((
        "ingress-host",
        Some(obj(
            "gateway.networking.k8s.io/v1alpha2",
            "TCPRoute",
            json!({"spec": {
            "parentRefs": [{"name": "public", "namespace": "gateways"}],
            "rules": [{"backendRefs": [{"name": "s", "port": 80}]}]}}),
        )),
        none.clone(),
    ));
    out.push((
        "pvc-binding",
        Some(obj(
            "v1",
            "PersistentVolumeClaim",
            json!({"spec": {"storageClassName": ""}}),
        )),
        none.clone(),
    ));
    // `default` stays the namespace's, even if the chart writes one.
    out.push((
        "rbac-subject",
        Some(json!([
            obj(
                "v1",
                "ServiceAccount",
                json!({"metadata": {"name": "default"}})
            ),
            binding(
                json!({"apiGroup": RB, "kind": "Role", "name": "r"}),
                json!([{"kind": "ServiceAccount", "name": "default"}]),
            ),
        ])),
        none.clone(),
    ));
    // A namespaceSelector of only NotIn terms reaches nearly every namespace.
    out.push((
        "networkpolicy-open",
        Some(netpol(json!({"podSelector": {"matchLabels": {"app": "w"}}, "ingress": [{"from": [
            {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["x"]}]}}]}]}))),
        none,
    ));
    out
}
