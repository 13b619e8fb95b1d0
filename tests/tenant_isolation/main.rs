//! Tenant isolation, attacked over HTTP the way a hostile tenant would: a
//! tenant is a namespace plus the identity the platform asserts, and
//! nothing one tenant sends may make the broker read, write or reveal
//! anything in another's namespace.
//!
//! Cluster tests get their cluster from [`cluster`]: the real control plane
//! (tests/testenv), whose RBAC authorizer answers the SubjectAccessReviews.

#[path = "../common/mod.rs"]
mod common;
// The confused-deputy cases on the real API server (issue 20) and the
// platform trust cases, as modules of this one binary.
mod platform_trust;
mod release_identity;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use chartbroker::runtime::{Engine, ServeConfig};

fn tenant_config(data: &Path) -> ServeConfig {
    let mut cfg = config(data);
    cfg.catalog_dir = fixtures().join("catalog-tenant");
    cfg
}

async fn render_broker(edit: impl FnOnce(&mut ServeConfig)) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = tenant_config(data.path());
    edit(&mut cfg);
    TestBroker::with_config(data, cfg).await
}

fn provision(service: &str, plan: &str, ns: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan,
        "context": {"platform": "kubernetes", "namespace": ns}, "parameters": params})
}

fn bind(service: &str, plan: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan, "parameters": params})
}

fn identity(user: &str) -> String {
    let v = json!({"username": user, "uid": user, "groups": [], "extra": {}});
    format!(
        "kubernetes {}",
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    )
}

fn as_user(method: Method, uri: &str, body: Option<Value>, user: Option<&str>) -> Request<Body> {
    let mut r = req(method, uri, body);
    if let Some(u) = user {
        r.headers_mut().insert(
            "x-broker-api-originating-identity",
            identity(u).parse().unwrap(),
        );
    }
    r
}

/// Sends as `user` and, on 202, waits for the operation.
async fn run(
    b: &TestBroker,
    user: Option<&str>,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> Resp {
    let r = b.send(as_user(method, uri, body, user)).await;
    if r.status != StatusCode::ACCEPTED {
        return r;
    }
    let op = r.json["operation"].as_str().unwrap();
    let path = uri.split('?').next().unwrap();
    let mut parts = path.trim_start_matches("/v2/service_instances/").split('/');
    let instance = parts.next().unwrap();
    match (parts.next(), parts.next()) {
        (Some("service_bindings"), Some(binding)) => b.wait_binding(instance, binding, op).await,
        _ => b.wait_instance(instance, op).await,
    }
}

/// Every manifest file under the render tree that declares Secret `ns/name`.
fn rendered_secrets(b: &TestBroker, ns: &str, name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&b.data.path().join("render"), &mut files);
    files
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            // Every file is the broker's canonical form (chartbroker::manifest).
            let docs = chartbroker::manifest::read(&text).unwrap();
            docs.iter().any(|d| {
                let v = &d.value;
                v["kind"] == "Secret"
                    && v["metadata"]["name"] == name
                    && v["metadata"]["namespace"] == ns
            })
        })
        .collect()
}

// === the cluster ===

/// Users and the namespaces each may create Secrets in.
type Grants = &'static [(&'static str, &'static [&'static str])];

/// The real control plane (tests/testenv) with `namespaces` (name, labels)
/// and, for each user, the built-in `edit` role in the namespaces `grants`
/// lists: the SubjectAccessReviews are answered by the real RBAC authorizer.
/// The tests of this file share one control plane, so these namespaces
/// and grants are shared too: every test uses names of its own for
/// instances and Secrets, and the same grants for the same user.
async fn cluster(namespaces: &[(&str, Value)], grants: Grants) -> TenantCluster {
    let k = common::cluster::Cluster::admin().await;
    for (ns, labels) in namespaces {
        let path = format!("/api/v1/namespaces/{ns}");
        if k.get(&path).await.is_none() {
            let body = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels}});
            // Another test may have made it meanwhile.
            let req = axum::http::Request::post("/api/v1/namespaces")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            match k.client.request::<Value>(req).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("creating namespace {ns}: {e}"),
            }
        }
        // Helm runs as the namespace's release identity, never as the admin.
        k.default_release_identity(ns);
    }
    for (user, nss) in grants {
        // A grant in a namespace that does not exist can't be made on a
        // real cluster (and grants nothing there).
        for ns in nss
            .iter()
            .filter(|ns| namespaces.iter().any(|(n, _)| n == *ns))
        {
            k.grant_user(ns, user);
        }
    }
    TenantCluster {
        kubeconfig: k.kubeconfig.clone(),
    }
}

/// What a broker needs of the cluster: its admin kubeconfig.
struct TenantCluster {
    kubeconfig: std::path::PathBuf,
}

impl TenantCluster {
    /// A copy of the admin kubeconfig in `dir` (where `secret_data` reads it).
    fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::copy(&self.kubeconfig, &path).unwrap();
        path
    }
}

async fn helm_broker(k: &TenantCluster, edit: impl FnOnce(&mut ServeConfig)) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = tenant_config(data.path());
    cfg.engine = Engine::Helm;
    cfg.kubeconfig = Some(k.kubeconfig(data.path()));
    edit(&mut cfg);
    TestBroker::with_config(data, cfg).await
}

/// A Secret's string data, read through the API like any client would.
async fn secret_data(b: &TestBroker, ns: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let kubeconfig = b.data.path().join("kubeconfig");
    let client = common::cluster::client_from(&kubeconfig).await;
    let api: kube::Api<Secret> = kube::Api::namespaced(client, ns);
    api.get_opt(name).await.unwrap().map(|s| {
        let mut out: BTreeMap<String, String> = s
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        out.extend(s.string_data.unwrap_or_default());
        out
    })
}

// === 1. `uses` across namespaces ===

#[tokio::test]
async fn uses_cannot_reach_another_tenants_instance() {
    let b = render_broker(|_| {}).await;
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/victim-db",
        Some(provision("svc-store", "plan-store", "team-a", json!({}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The attacker knows the id; the answer is the one for an id that
    // does not exist.
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/thief",
        Some(provision(
            "svc-app",
            "plan-app",
            "team-b",
            json!({"store_instance": "victim-db"}),
        )),
    )
    .await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    let stolen = r.json["description"].as_str().unwrap().to_string();
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/thief",
        Some(provision(
            "svc-app",
            "plan-app",
            "team-b",
            json!({"store_instance": "no-such-db"}),
        )),
    )
    .await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    assert_eq!(
        stolen.replace("victim-db", "X"),
        r.json["description"]
            .as_str()
            .unwrap()
            .replace("no-such-db", "X")
    );
    assert!(!b.data.path().join("render/team-b/cb-thief").exists());

    // Nothing holds the victim's instance: it deprovisions.
    let r = b
        .call(
            Method::DELETE,
            "/v2/service_instances/victim-db?service_id=svc-store&plan_id=plan-store",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Its own namespace, and a namespace the plan lists, still work.
    for (id, ns) in [("own-db", "team-b"), ("shared-db", "shared")] {
        let r = run(
            &b,
            None,
            Method::PUT,
            &format!("/v2/service_instances/{id}"),
            Some(provision("svc-store", "plan-store", ns, json!({}))),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/app-1",
        Some(provision(
            "svc-app",
            "plan-app",
            "team-b",
            json!({"store_instance": "own-db"}),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/app-2",
        Some(provision(
            "svc-app",
            "plan-app",
            "team-b",
            json!({"store_instance": "shared-db"}),
        )),
    )
    .await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/app-3",
        Some(provision(
            "svc-app",
            "plan-app-shared",
            "team-b",
            json!({"store_instance": "shared-db"}),
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_checks_the_user_in_the_used_instances_namespace() {
    let k = cluster(
        &[("shared", json!({})), ("team-b", json!({}))],
        &[
            ("carol", &["shared"]),
            ("bob", &["team-b"]),
            ("alice", &["team-b", "shared"]),
        ],
    )
    .await;
    let b = helm_broker(&k, |_| {}).await;
    let r = run(
        &b,
        Some("carol"),
        Method::PUT,
        "/v2/service_instances/db?accepts_incomplete=true",
        Some(provision("svc-store", "plan-store", "shared", json!({}))),
    )
    .await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);

    // The plan may reach `shared`, but bob may not.
    let r = run(
        &b,
        Some("bob"),
        Method::PUT,
        "/v2/service_instances/bobs?accepts_incomplete=true",
        Some(provision(
            "svc-app",
            "plan-app-shared",
            "team-b",
            json!({"store_instance": "db"}),
        )),
    )
    .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    assert!(
        r.json["description"].as_str().unwrap().contains("shared"),
        "{}",
        r.text
    );
    assert!(secret_data(&b, "team-b", "cb-bobs-store").await.is_none());

    let r = run(
        &b,
        Some("alice"),
        Method::PUT,
        "/v2/service_instances/alices?accepts_incomplete=true",
        Some(provision(
            "svc-app",
            "plan-app-shared",
            "team-b",
            json!({"store_instance": "db"}),
        )),
    )
    .await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    assert!(secret_data(&b, "team-b", "cb-alices-store").await.is_some());
}

// === 2. namespaces the broker may act in ===

#[tokio::test]
async fn system_and_own_namespaces_are_refused_by_default() {
    let b = render_broker(|_| {}).await;
    for ns in [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "chartbroker-system",
    ] {
        let r = b
            .call(
                Method::PUT,
                "/v2/service_instances/sys",
                Some(provision("svc-store", "plan-store", ns, json!({}))),
            )
            .await;
        assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        assert!(
            r.json["description"].as_str().unwrap().contains(ns),
            "{}",
            r.text
        );
        assert!(!b.data.path().join("render").join(ns).exists());
    }
    let r = b
        .call(
            Method::GET,
            "/v2/service_instances/sys/last_operation",
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "nothing recorded: {}",
        r.text
    );

    // A binding Secret can't be steered there either, even by a plan
    // that lists them.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/ok",
            Some(provision("svc-store", "plan-store", "apps", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for ns in ["kube-system", "chartbroker-system"] {
        let r = b
            .call(
                Method::PUT,
                "/v2/service_instances/ok/service_bindings/sb",
                Some(bind(
                    "svc-store",
                    "plan-store",
                    json!({"namespace": ns, "secret_name": "creds"}),
                )),
            )
            .await;
        assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        assert!(rendered_secrets(&b, ns, "creds").is_empty());
    }
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/ok/service_bindings/sb",
            Some(bind(
                "svc-store",
                "plan-store",
                json!({"namespace": "shared", "secret_name": "creds"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn the_operators_namespace_list_is_enforced() {
    let b = render_broker(|c| {
        c.namespaces = vec![
            "team-*".into(),
            "!team-admin".into(),
            "*-public".into(),
            "kube-node-lease".into(),
        ]
    })
    .await;
    for (ns, allowed) in [
        ("team-a", true),
        ("team-admin", false),
        ("apps", false),
        ("kube-public", false),
        ("kube-node-lease", true),
    ] {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/i-{ns}"),
                Some(provision("svc-store", "plan-store", ns, json!({}))),
            )
            .await;
        if allowed {
            assert_eq!(r.status, StatusCode::CREATED, "{ns}: {}", r.text);
        } else {
            assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        }
    }
    // `namespace: instance` plans: the namespace the broker would create
    // is judged too.
    let b = render_broker(|c| c.namespaces = vec!["apps".into(), "!cb-*".into()]).await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/own",
            Some(provision("svc-store", "plan-own-ns", "apps", json!({}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    assert!(
        r.json["description"].as_str().unwrap().contains("cb-own"),
        "{}",
        r.text
    );
    assert!(!b.data.path().join("render/cb-own").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_selector_is_enforced() {
    let k = cluster(
        &[("team-a", json!({"tenant": "yes"})), ("team-b", json!({}))],
        &[("alice", &["team-a", "team-b", "ghost"])],
    )
    .await;
    let b = helm_broker(&k, |c| c.namespace_selector = Some("tenant=yes".into())).await;
    for (ns, ok) in [("team-b", false), ("ghost", false), ("team-a", true)] {
        let r = run(
            &b,
            Some("alice"),
            Method::PUT,
            &format!("/v2/service_instances/s-{ns}?accepts_incomplete=true"),
            Some(provision("svc-store", "plan-store", ns, json!({}))),
        )
        .await;
        if ok {
            assert_eq!(r.json["state"], "succeeded", "{}", r.text);
        } else {
            assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
            assert!(
                r.json["description"]
                    .as_str()
                    .unwrap()
                    .contains("tenant=yes"),
                "{}",
                r.text
            );
        }
    }
    // A binding Secret's namespace must match too.
    let r = run(
        &b,
        Some("alice"),
        Method::PUT,
        "/v2/service_instances/s-team-a/service_bindings/x?accepts_incomplete=true",
        Some(bind(
            "svc-store",
            "plan-store",
            json!({"namespace": "other"}),
        )),
    )
    .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
}

// === 3. authorization fails closed ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_request_without_an_identity_is_refused() {
    let k = cluster(&[("apps", json!({}))], &[("alice", &["apps"])]).await;
    let b = helm_broker(&k, |_| {}).await;
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/anon?accepts_incomplete=true",
        Some(provision("svc-store", "plan-store", "apps", json!({}))),
    )
    .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    assert!(
        r.json["description"]
            .as_str()
            .unwrap()
            .contains("Originating-Identity"),
        "{}",
        r.text
    );
    // Another platform's identity can't stand in for a Kubernetes user.
    let cf = format!(
        "cloudfoundry {}",
        base64::engine::general_purpose::STANDARD.encode(r#"{"user_id":"u"}"#)
    );
    let mut request = req(
        Method::PUT,
        "/v2/service_instances/anon?accepts_incomplete=true",
        Some(provision("svc-store", "plan-store", "apps", json!({}))),
    );
    request
        .headers_mut()
        .insert("x-broker-api-originating-identity", cf.parse().unwrap());
    assert_osb_error(
        &b.send(request).await,
        StatusCode::FORBIDDEN,
        Some("Forbidden"),
    );

    // Turned off explicitly, the platform is trusted.
    let b = helm_broker(&k, |c| c.subject_access_review = false).await;
    let r = run(
        &b,
        None,
        Method::PUT,
        "/v2/service_instances/anon?accepts_incomplete=true",
        Some(provision("svc-store", "plan-store", "apps", json!({}))),
    )
    .await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_authorized_like_provision() {
    let k = cluster(&[("apps", json!({}))], &[("alice", &["apps"])]).await;
    let b = helm_broker(&k, |_| {}).await;
    let r = run(
        &b,
        Some("alice"),
        Method::PUT,
        "/v2/service_instances/i?accepts_incomplete=true",
        Some(provision("svc-store", "plan-store", "apps", json!({}))),
    )
    .await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let r = run(
        &b,
        Some("alice"),
        Method::PUT,
        "/v2/service_instances/i/service_bindings/bb?accepts_incomplete=true",
        Some(bind("svc-store", "plan-store", json!({}))),
    )
    .await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);

    let attacks = [
        (
            Method::PATCH,
            "/v2/service_instances/i?accepts_incomplete=true",
            Some(
                json!({"service_id": "svc-store", "parameters": {}, "plan_id": "plan-store", "context": {"platform": "kubernetes", "namespace": "apps", "x": 1}}),
            ),
        ),
        (
            Method::DELETE,
            "/v2/service_instances/i/service_bindings/bb?service_id=svc-store&plan_id=plan-store&accepts_incomplete=true",
            None,
        ),
        (
            Method::DELETE,
            "/v2/service_instances/i?service_id=svc-store&plan_id=plan-store&accepts_incomplete=true",
            None,
        ),
    ];
    for user in [Some("mallory"), None] {
        for (m, uri, body) in &attacks {
            let r = b.send(as_user(m.clone(), uri, body.clone(), user)).await;
            assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
        }
    }
    assert!(secret_data(&b, "apps", "cb-bind-bb").await.is_some());

    // Ids that don't match the record are 400, before anything runs.
    for uri in [
        "/v2/service_instances/i/service_bindings/bb?service_id=svc-store&plan_id=plan-own-ns&accepts_incomplete=true",
        "/v2/service_instances/i/service_bindings/bb?service_id=svc-frozen&plan_id=plan-store&accepts_incomplete=true",
        "/v2/service_instances/i?service_id=svc-store&plan_id=plan-own-ns&accepts_incomplete=true",
        "/v2/service_instances/i?service_id=svc-frozen&plan_id=plan-frozen&accepts_incomplete=true",
    ] {
        let r = b
            .send(as_user(Method::DELETE, uri, None, Some("alice")))
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    }
    assert!(secret_data(&b, "apps", "cb-bind-bb").await.is_some());

    for (m, uri, body) in attacks {
        let r = run(&b, Some("alice"), m, uri, body).await;
        assert!(
            r.status.is_success() || r.status == StatusCode::GONE,
            "{}",
            r.text
        );
    }
    assert!(secret_data(&b, "apps", "cb-bind-bb").await.is_none());
}

// === 4. ids ===

#[tokio::test]
async fn ids_that_could_alias_are_refused_at_the_edge() {
    let b = render_broker(|_| {}).await;
    let long = "x".repeat(256);
    let bad = [
        "..",
        "%2E",
        "%2E%2E",
        "a%2Fb",
        "a%00b",
        "a%0Ab",
        "a%7Fb",
        long.as_str(),
    ];
    for id in bad {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}"),
                Some(provision("svc-store", "plan-store", "apps", json!({}))),
            )
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
        for (m, uri) in [
            (Method::GET, format!("/v2/service_instances/{id}")),
            (
                Method::GET,
                format!("/v2/service_instances/{id}/last_operation"),
            ),
            (
                Method::DELETE,
                format!("/v2/service_instances/{id}?service_id=svc-store&plan_id=plan-store"),
            ),
        ] {
            assert_osb_error(
                &b.call(m, &uri, None).await,
                StatusCode::BAD_REQUEST,
                Some("BadRequest"),
            );
        }
    }
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/a",
            Some(provision("svc-store", "plan-store", "apps", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for id in bad {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/a/service_bindings/{id}"),
                Some(bind("svc-store", "plan-store", json!({}))),
            )
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
    }
    // Nothing of the refused ids reached the store or the render tree.
    // (One release folder, and the one record of its objects.)
    for dir in ["render/apps", "render/apps/.objects"] {
        let names: Vec<String> = std::fs::read_dir(b.data.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(names, ["cb-a"], "{dir}");
    }
    assert_eq!(
        std::fs::read_dir(b.release_dir("a").join("bindings"))
            .into_iter()
            .flatten()
            .count(),
        0
    );
}

// === 5. binding Secrets belong to (instance, binding) ===

#[tokio::test]
async fn another_instances_binding_cannot_take_over_a_rendered_secret() {
    let b = render_broker(|_| {}).await;
    for (id, ns) in [("victim", "apps"), ("attacker", "other")] {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}"),
                Some(provision("svc-store", "plan-store", ns, json!({}))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let params = json!({"namespace": "apps", "secret_name": "db-creds"});
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/victim/service_bindings/b1",
            Some(bind("svc-store", "plan-store", params.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let victims = rendered_secrets(&b, "apps", "db-creds");
    assert_eq!(victims.len(), 1);
    let before = std::fs::read_to_string(&victims[0]).unwrap();

    // Same binding id, same Secret: refused.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/attacker/service_bindings/b1",
            Some(bind("svc-store", "plan-store", params)),
        )
        .await;
    assert!(
        r.status.is_client_error() || r.status.is_server_error(),
        "{}",
        r.text
    );
    assert!(
        r.json["description"]
            .as_str()
            .unwrap()
            .contains("another binding"),
        "{}",
        r.text
    );
    assert_eq!(rendered_secrets(&b, "apps", "db-creds"), victims);
    // Unbinding, or deprovisioning, the attacker leaves it alone.
    b.call(Method::DELETE, "/v2/service_instances/attacker/service_bindings/b1?service_id=svc-store&plan_id=plan-store", None).await;
    let r = b
        .call(
            Method::DELETE,
            "/v2/service_instances/attacker?service_id=svc-store&plan_id=plan-store",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(std::fs::read_to_string(&victims[0]).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_binding_cannot_take_over_a_cluster_secret() {
    let k = cluster(&[("apps", json!({})), ("other", json!({}))], &[]).await;
    let b = helm_broker(&k, |c| c.subject_access_review = false).await;
    for (id, ns) in [("victim", "apps"), ("attacker", "other")] {
        let r = run(
            &b,
            None,
            Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(provision("svc-store", "plan-store", ns, json!({}))),
        )
        .await;
        assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    }
    let params = json!({"namespace": "apps", "secret_name": "db-creds"});
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/victim/service_bindings/b1",
            Some(bind("svc-store", "plan-store", params.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let before = secret_data(&b, "apps", "db-creds")
        .await
        .expect("victim's Secret");

    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/attacker/service_bindings/b1",
            Some(bind("svc-store", "plan-store", params)),
        )
        .await;
    assert!(
        r.json["description"]
            .as_str()
            .unwrap()
            .contains("does not belong"),
        "{}",
        r.text
    );
    assert_eq!(
        secret_data(&b, "apps", "db-creds").await.as_ref(),
        Some(&before)
    );
    b.call(Method::DELETE, "/v2/service_instances/attacker/service_bindings/b1?service_id=svc-store&plan_id=plan-store", None).await;
    let r = run(&b, None, Method::DELETE, "/v2/service_instances/attacker?service_id=svc-store&plan_id=plan-store&accepts_incomplete=true", None).await;
    assert_delete_done(&r);
    assert_eq!(
        secret_data(&b, "apps", "db-creds").await.as_ref(),
        Some(&before)
    );
}

// === 6. context updates ===

#[tokio::test]
async fn context_updates_follow_the_catalog_and_the_namespace_rules() {
    let b = render_broker(|_| {}).await;
    for (id, s, p) in [
        ("f", "svc-frozen", "plan-frozen"),
        ("s", "svc-store", "plan-store"),
    ] {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}"),
                Some(provision(s, p, "apps", json!({}))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let patch = |s: &str, ctx: Value| json!({"service_id": s, "context": ctx});
    // allow_context_updates: false
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/f",
            Some(patch(
                "svc-frozen",
                json!({"platform": "kubernetes", "namespace": "apps", "clusterid": "x"}),
            )),
        )
        .await;
    assert_osb_error(&r, StatusCode::UNPROCESSABLE_ENTITY, None);
    assert!(
        r.json["description"]
            .as_str()
            .unwrap()
            .contains("allow_context_updates"),
        "{}",
        r.text
    );
    // The same context is no change.
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/f",
            Some(patch(
                "svc-frozen",
                json!({"platform": "kubernetes", "namespace": "apps"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Allowed, but validated like a provision: no moving to a system or
    // another tenant's namespace.
    for ns in ["kube-system", "team-b", "Not_A_Namespace"] {
        let r = b
            .call(
                Method::PATCH,
                "/v2/service_instances/s",
                Some(patch(
                    "svc-store",
                    json!({"platform": "kubernetes", "namespace": ns}),
                )),
            )
            .await;
        assert!(r.status.is_client_error(), "{ns}: {}", r.text);
        assert_osb_error(&r, r.status, None);
    }
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/s",
            Some(patch(
                "svc-store",
                json!({"platform": "kubernetes", "namespace": "apps", "clusterid": "x"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Binding still goes where the instance lives.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/s/service_bindings/sb",
            Some(bind("svc-store", "plan-store", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(rendered_secrets(&b, "apps", "cb-bind-sb").len(), 1);
}

// === 7. one owner per namespace and per name, in the render tree ===

/// Every file under `render/<ns>` with its content: what applying that
/// namespace's part of the tree would bring.
fn tree_of(b: &TestBroker, ns: &str) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&b.data.path().join("render").join(ns), &mut out);
    out
}

/// Every rendered Namespace manifest naming `ns`, anywhere in the tree.
fn namespace_manifests(b: &TestBroker, ns: &str) -> Vec<PathBuf> {
    tree_of(b, "")
        .into_iter()
        .filter(|(_, text)| {
            // The emitted form: one line of JSON per document.
            text.contains(r#""kind":"Namespace""#) && text.contains(&format!(r#""name":"{ns}""#))
        })
        .map(|(p, _)| p)
        .collect()
}

#[tokio::test]
async fn an_instance_namespace_is_never_taken_from_another_tenant() {
    let b = render_broker(|_| {}).await;
    // Tenant B lives in `cb-shop` and has a binding Secret there.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/b-store",
            Some(provision("svc-store", "plan-store", "cb-shop", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/b-store/service_bindings/b-bind",
            Some(bind("svc-store", "plan-store", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let before = tree_of(&b, "cb-shop");
    assert!(!before.is_empty());

    // Tenant A asks for instance `shop` of a plan with its own namespace:
    // `cb-shop`, synchronously and asynchronously.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/shop",
            Some(provision("svc-store", "plan-own-ns", "apps", json!({}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains("namespace cb-shop") && d.contains("another service instance"),
        "{d}"
    );
    assert!(
        !d.contains("b-store"),
        "names the other tenant's instance: {d}"
    );
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/shop?accepts_incomplete=true",
            Some(provision("svc-store", "plan-own-ns", "apps", json!({}))),
        )
        .await;
    let r = match r.status {
        StatusCode::ACCEPTED => {
            b.wait_instance("shop", r.json["operation"].as_str().unwrap())
                .await
        }
        _ => r,
    };
    assert!(
        r.json["state"] == "failed" || r.status == StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        r.text
    );
    assert!(
        r.json["description"]
            .as_str()
            .unwrap()
            .contains("namespace cb-shop"),
        "{}",
        r.text
    );
    // Nothing was written: no Namespace manifest claims cb-shop, and B's
    // part of the tree is as it was, also after A deprovisions.
    assert!(namespace_manifests(&b, "cb-shop").is_empty());
    assert_eq!(tree_of(&b, "cb-shop"), before);
    b.call(
        Method::DELETE,
        "/v2/service_instances/shop?service_id=svc-store&plan_id=plan-own-ns",
        None,
    )
    .await;
    assert_eq!(tree_of(&b, "cb-shop"), before);
}

#[tokio::test]
async fn nobody_else_renders_into_an_owned_namespace_and_deletion_takes_only_its_own() {
    let b = render_broker(|_| {}).await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/mine",
            Some(provision("svc-store", "plan-own-ns", "apps", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(namespace_manifests(&b, "cb-mine").len(), 1);
    let owned = tree_of(&b, "cb-mine");

    // Another tenant names the owned namespace as its own.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/intruder",
            Some(provision("svc-store", "plan-store", "cb-mine", json!({}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains("namespace cb-mine belongs to another service instance"),
        "{d}"
    );
    assert_eq!(tree_of(&b, "cb-mine"), owned);
    b.call(
        Method::DELETE,
        "/v2/service_instances/intruder?service_id=svc-store&plan_id=plan-store",
        None,
    )
    .await;
    assert_eq!(tree_of(&b, "cb-mine"), owned);

    // The owner binds, deprovisions: its folder goes, and the namespace
    // is free again.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/mine/service_bindings/mb",
            Some(bind("svc-store", "plan-own-ns", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    b.call(
        Method::DELETE,
        "/v2/service_instances/mine/service_bindings/mb?service_id=svc-store&plan_id=plan-own-ns",
        None,
    )
    .await;
    let r = b
        .call(
            Method::DELETE,
            "/v2/service_instances/mine?service_id=svc-store&plan_id=plan-own-ns",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(tree_of(&b, "cb-mine").is_empty());
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/newcomer",
            Some(provision("svc-store", "plan-store", "cb-mine", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_render_engine_checks_instance_namespaces_against_its_cluster() {
    let k = common::cluster::Cluster::admin().await;
    let state = k.namespace("rstate").await;
    // Someone else's namespace in the cluster, named like the namespace of
    // instance `rsquat-<suffix>`.
    let taken = k.namespace("cb-rsquat").await;
    let squatter = taken.trim_start_matches("cb-").to_string();
    let free = format!("rfree-{}", common::cluster::suffix());
    let b = render_broker(|c| {
        c.store = chartbroker::runtime::StoreKind::Kube;
        c.kubeconfig = Some(k.kubeconfig.clone());
        c.state_namespace = state.clone();
        c.store_key = Some(chartbroker::store::seal::Sealer::generate_base64());
    })
    .await;
    let r = b
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{squatter}"),
            Some(provision("svc-store", "plan-own-ns", "apps", json!({}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains(&format!("namespace {taken} already exists in the cluster")),
        "{d}"
    );
    assert!(tree_of(&b, &taken).is_empty());
    // A namespace the cluster doesn't have is the instance's to take.
    let r = b
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{free}"),
            Some(provision("svc-store", "plan-own-ns", "apps", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(namespace_manifests(&b, &format!("cb-{free}")).len(), 1);
}

#[tokio::test]
async fn a_binding_secret_never_shadows_a_release_object() {
    let b = render_broker(|_| {}).await;
    for (id, ns) in [("v1", "apps"), ("att", "other")] {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}"),
                Some(provision("svc-store", "plan-store", ns, json!({}))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // The victim's chart renders Secret apps/cb-v1 (and ConfigMap apps/cb-v1).
    let victims = rendered_secrets(&b, "apps", "cb-v1");
    assert_eq!(victims.len(), 1);
    let before = tree_of(&b, "apps");
    // Another tenant's binding asks for that name: refused, by any binding,
    // the victim's own included.
    for (instance, binding) in [("att", "ab"), ("v1", "vb")] {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{instance}/service_bindings/{binding}"),
                Some(bind(
                    "svc-store",
                    "plan-store",
                    json!({"namespace": "apps", "secret_name": "cb-v1"}),
                )),
            )
            .await;
        assert!(
            r.status.is_server_error() || r.status.is_client_error(),
            "{}",
            r.text
        );
        assert_osb_error(&r, r.status, None);
        let d = r.json["description"].as_str().unwrap();
        assert!(
            d.contains("apps/cb-v1") && d.contains("choose another secret_name"),
            "{d}"
        );
        assert_eq!(rendered_secrets(&b, "apps", "cb-v1"), victims);
        assert_eq!(tree_of(&b, "apps"), before);
    }
}

#[tokio::test]
async fn a_release_never_renders_an_object_named_like_a_binding_secret() {
    let b = render_broker(|_| {}).await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/att",
            Some(provision("svc-store", "plan-store", "other", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The attacker binds first, under the name the victim's release will use.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/att/service_bindings/ab",
            Some(bind(
                "svc-store",
                "plan-store",
                json!({"namespace": "apps", "secret_name": "cb-v2"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let planted = rendered_secrets(&b, "apps", "cb-v2");
    assert_eq!(planted.len(), 1);
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/v2",
            Some(provision("svc-store", "plan-store", "apps", json!({}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(
        d.contains("apps/cb-v2") && d.contains("binding Secret"),
        "{d}"
    );
    // Nothing of the release was written: one file declares the name.
    assert!(!b.release_dir("v2").exists());
    assert_eq!(rendered_secrets(&b, "apps", "cb-v2"), planted);
    // Once the binding is gone the name is free.
    b.call(
        Method::DELETE,
        "/v2/service_instances/v2?service_id=svc-store&plan_id=plan-store",
        None,
    )
    .await;
    let r = b
        .call(
            Method::DELETE,
            "/v2/service_instances/att/service_bindings/ab?service_id=svc-store&plan_id=plan-store",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/v2",
            Some(provision("svc-store", "plan-store", "apps", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        rendered_secrets(&b, "apps", "cb-v2"),
        vec![b.release_dir("v2").join("manifests.yaml")]
    );
}

// === 8. secrets transformed by a chart stay redacted ===

/// The longest run of `secret`'s characters, case-folded, forwards or
/// reversed, left in `text` once everything but ASCII letters and digits
/// is dropped (zero-width and other separators included).
fn longest_run(text: &str, secret: &str) -> usize {
    let fold = |t: &str| -> Vec<u8> {
        t.bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| b.to_ascii_lowercase())
            .collect()
    };
    // What a mask hides is not a character a reader can join runs over.
    let segments: Vec<Vec<u8>> = text.split("<redacted>").map(fold).collect();
    let s = fold(secret);
    let r: Vec<u8> = s.iter().rev().copied().collect();
    (1..=s.len())
        .rev()
        .find(|&n| {
            [&s, &r].iter().any(|sp| {
                sp.windows(n)
                    .any(|w| segments.iter().any(|t| t.windows(n).any(|t| t == w)))
            })
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charts_failure_text_never_carries_a_transformed_secret() {
    use common::process::{osb, serve};
    use reqwest::Method as M;
    let data = tempfile::tempdir().unwrap();
    let s = serve(
        &fixtures().join("catalog-tenant"),
        &fixtures().join("charts"),
        data.path(),
        &helm_bin(),
        &[],
    )
    .await;
    let body = |mode: &str| {
        json!({"service_id": "svc-leak", "plan_id": "plan-leak",
            "context": {"platform": "kubernetes", "namespace": "apps"},
            "parameters": {"mode": mode}})
    };
    let (status, _) = osb(
        M::PUT,
        format!("{}/v2/service_instances/leak", s.url),
        Some(body("ok")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, bound) = osb(
        M::PUT,
        format!("{}/v2/service_instances/leak/service_bindings/lb", s.url),
        Some(json!({"service_id": "svc-leak", "plan_id": "plan-leak"})),
    )
    .await;
    assert_eq!(status, 201, "{bound}");
    let password = bound["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 24);

    // The chart fails with the password dotted, upper-cased, reversed,
    // split across lines, interleaved, with zero-width spaces and in
    // pieces: synchronously (error body) and asynchronously
    // (last_operation).
    let update = json!({"service_id": "svc-leak", "parameters": {"mode": "leak"}});
    let (status, sync) = osb(
        M::PATCH,
        format!("{}/v2/service_instances/leak", s.url),
        Some(update.clone()),
    )
    .await;
    assert_eq!(status, 500, "{sync}");
    let (status, accepted) = osb(
        M::PATCH,
        format!(
            "{}/v2/service_instances/leak?accepts_incomplete=true",
            s.url
        ),
        Some(update),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let op = accepted["operation"].as_str().unwrap();
    let last = loop {
        let (status, last) = osb(
            M::GET,
            format!(
                "{}/v2/service_instances/leak/last_operation?operation={op}",
                s.url
            ),
            None,
        )
        .await;
        assert_eq!(status, 200, "{last}");
        if last["state"] != "in progress" {
            break last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(last["state"], "failed", "{last}");
    for d in [&sync["description"], &last["description"]] {
        let d = d.as_str().unwrap();
        // The failure is reported (the chart's own words, masked).
        assert!(d.contains("dots=") && d.contains("<redacted>"), "{d}");
        assert!(longest_run(d, &password) < 6, "{d}");
    }
    let log = std::fs::read_to_string(data.path().join("broker.log")).unwrap();
    assert!(log.contains("<redacted>"), "{log}");
    assert!(longest_run(&log, &password) < 6, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helm_engine_redacts_a_transformed_secret_too() {
    let k = cluster(&[("apps", json!({}))], &[]).await;
    let b = helm_broker(&k, |c| c.subject_access_review = false).await;
    let body = |mode: &str| {
        json!({"service_id": "svc-leak", "plan_id": "plan-leak",
            "context": {"platform": "kubernetes", "namespace": "apps"},
            "parameters": {"mode": mode}})
    };
    let id = format!("hleak-{}", common::cluster::suffix());
    let r = run(
        &b,
        None,
        Method::PUT,
        &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        Some(body("ok")),
    )
    .await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let r = b
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{id}/service_bindings/hb"),
            Some(json!({"service_id": "svc-leak", "plan_id": "plan-leak"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let credentials = r.json["credentials"].clone();
    let password = credentials["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 24);
    let r = run(
        &b,
        None,
        Method::PATCH,
        &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        Some(json!({"service_id": "svc-leak", "parameters": {"mode": "leak"}})),
    )
    .await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains("dots=") && d.contains("<redacted>"), "{d}");
    assert!(longest_run(d, &password) < 6, "{d}");
}

// === namespaces are owned ===

/// Tenant B owns namespace `cb-<id>`; tenant A provisions a `namespace:
/// instance` plan with instance id `<id>`. Refused, nothing written into
/// B's namespace, and A's deprovision deletes nothing of B's.
#[tokio::test(flavor = "multi_thread")]
async fn namespace_squat_is_refused_and_writes_nothing() {
    use common::cluster::{Cluster, suffix};
    let k = Cluster::admin().await;
    let id = k.install_broker(true).await;
    let b = TestBroker::on_cluster(&id, |_, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-cluster");
    })
    .await;
    let home = k.namespace("home").await;
    k.grant_user(&home, "alice");
    let instance = format!("shop-{}", suffix());
    let squatted = format!("cb-{instance}");
    // B's namespace, even labelled as if the broker made it: the label alone
    // (which anyone creating a namespace can set) does not make it A's.
    k.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": squatted,
               "labels": {"app.kubernetes.io/managed-by": "chartbroker"}}}),
    )
    .await;
    k.create(
        &format!("/api/v1/namespaces/{squatted}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b-data"},
               "stringData": {"k": "v"}}),
    )
    .await;

    let uri = format!("/v2/service_instances/{instance}?accepts_incomplete=true");
    let (done, writes) = k
        .writes_during(&format!("/api/v1/namespaces/{squatted}/secrets"), async {
            b.run_as(
                "alice",
                Method::PUT,
                &uri,
                Some(provision(
                    "svc-cluster",
                    "plan-own-ns",
                    &home,
                    json!({"message": "x"}),
                )),
            )
            .await
        })
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(
        done.headers["content-type"], "application/json",
        "{:?}",
        done.headers
    );
    assert_eq!(done.json["state"], "failed", "{}", done.text);
    let d = done.json["description"].as_str().unwrap();
    assert!(
        d.contains(&squatted) && d.contains("already exists") && d.contains("nothing was written"),
        "{d}"
    );
    assert!(
        writes.is_empty(),
        "Secrets written in B's namespace: {writes:?}"
    );
    for path in [
        format!("/api/v1/namespaces/{squatted}/configmaps/cb-{instance}"),
        format!(
            "/api/v1/namespaces/{squatted}/serviceaccounts/{}",
            id.identity_names().service_account
        ),
        format!(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{squatted}/rolebindings/{}",
            id.identity_names().release_role
        ),
    ] {
        assert!(k.get(&path).await.is_none(), "{path} was created");
    }

    // A's deprovision succeeds and leaves B's namespace and data alone.
    let done = b
        .run_as(
            "alice",
            Method::DELETE,
            &format!(
                "/v2/service_instances/{instance}?accepts_incomplete=true&service_id=svc-cluster&plan_id=plan-own-ns"
            ),
            None,
        )
        .await;
    assert_delete_done(&done);
    let ns = k
        .get(&format!("/api/v1/namespaces/{squatted}"))
        .await
        .expect("B's namespace stands");
    assert!(ns["metadata"]["deletionTimestamp"].is_null(), "{ns:#}");
    assert!(
        k.get(&format!("/api/v1/namespaces/{squatted}/secrets/b-data"))
            .await
            .is_some()
    );
}
