//! The hostile allow-list cases about traffic (Ingresses, Gateway routes,
//! NetworkPolicies), in the form of `allowlist_cases.rs`.

use serde_json::{Value, json};

use super::allowlist::{backend, ingress, netpol, obj};

pub(super) fn ingresses() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    // Ingress and routes (the plan admits *.apps.example.com, so only the
    // rule under test fires).
    let rule_for = |host: &str, svc: &str| json!({"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend(svc)}]}}]});
    out.push((
        "ingress-host",
        Some(ingress(rule_for("victim.example.org", "s"), none.clone())),
        none.clone(),
    ));
    out.push(("ingress-host", Some(ingress(json!({"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend("s")}]}}]}), none.clone())), none.clone()));
    out.push((
        "ingress-host",
        Some(ingress(rule_for("a.b.apps.example.com", "s"), none.clone())),
        none.clone(),
    ));
    out.push((
        "ingress-host",
        Some(ingress(
            json!({"defaultBackend": backend("s")}),
            none.clone(),
        )),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(ingress(
            rule_for("a.apps.example.com", "victim"),
            none.clone(),
        )),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(ingress(
            json!({"tls": [{"hosts": ["a.apps.example.com"], "secretName": "victim-tls"}]}),
            none.clone(),
        )),
        none.clone(),
    ));
    for key in [
        "nginx.ingress.kubernetes.io/configuration-snippet",
        "nginx.ingress.kubernetes.io/server-snippet",
        "nginx.ingress.kubernetes.io/auth-url",
        "nginx.ingress.kubernetes.io/auth-tls-secret",
        "nginx.ingress.kubernetes.io/mirror-target",
    ] {
        out.push((
            "ingress-annotation",
            Some(ingress(
                rule_for("a.apps.example.com", "s"),
                json!({key: "x"}),
            )),
            none.clone(),
        ));
    }
    out
}

pub(super) fn routes() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    let route = |spec: Value| {
        obj(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            json!({"spec": spec}),
        )
    };
    out.push((
        "ingress-host",
        Some(route(
            json!({"rules": [{"backendRefs": [{"name": "s", "port": 80}]}]}),
        )),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(route(json!({"hostnames": ["a.apps.example.com"], "rules": [{"backendRefs": [{"name": "victim", "port": 80}]}]}))),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(route(json!({"hostnames": ["a.apps.example.com"], "parentRefs": [{"group": "", "kind": "Service", "name": "victim"}],
            "rules": [{"backendRefs": [{"name": "s", "port": 80}]}]}))),
        none.clone(),
    ));
    out.push((
        "release-target",
        Some(route(json!({"hostnames": ["a.apps.example.com"], "rules": [{"backendRefs": [{"name": "s", "port": 80}],
            "filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "s", "namespace": "other", "port": 80}}}]}]}))),
        none.clone(),
    ));
    out
}

pub(super) fn network_policies() -> Vec<(&'static str, Option<Value>, Value)> {
    let none = Value::Null;
    let mut out: Vec<(&'static str, Option<Value>, Value)> = Vec::new();
    // NetworkPolicies that open instead of narrowing.
    let own = json!({"matchLabels": {"app": "w"}});
    for (dir, key, peers) in [
        ("ingress", "from", Value::Null),
        ("ingress", "from", json!([])),
        ("ingress", "from", json!([{}])),
        ("ingress", "from", json!([{"namespaceSelector": {}}])),
        (
            "egress",
            "to",
            json!([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}]),
        ),
        ("egress", "to", json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}])),
        ("egress", "to", json!([{"ipBlock": {"cidr": "0.0.0.0/1"}}])),
        ("ingress", "from", json!([{"ipBlock": {"cidr": "::/0"}}])),
    ] {
        let mut r = json!({"ports": [{"port": 80}]});
        if !peers.is_null() {
            r[key] = peers;
        }
        out.push((
            "networkpolicy-open",
            Some(netpol(json!({"podSelector": own, dir: [r]}))),
            none.clone(),
        ));
    }
    out
}
