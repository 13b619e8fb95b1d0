//! Helpers of the tests in tests/cluster/tenant_isolation/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use chartbroker::runtime::{Engine, ServeConfig};

pub fn tenant_config(data: &Path) -> ServeConfig {
    let mut cfg = config(data);
    cfg.catalog_dir = fixtures().join("catalog-tenant");
    cfg
}

pub async fn render_broker(edit: impl FnOnce(&mut ServeConfig)) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = tenant_config(data.path());
    edit(&mut cfg);
    TestBroker::with_config(data, cfg).await
}

pub fn provision(service: &str, plan: &str, ns: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan,
        "context": {"platform": "kubernetes", "namespace": ns}, "parameters": params})
}

pub fn bind(service: &str, plan: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan, "parameters": params})
}

pub fn identity(user: &str) -> String {
    let v = json!({"username": user, "uid": user, "groups": [], "extra": {}});
    format!(
        "kubernetes {}",
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    )
}

pub fn as_user(
    method: Method,
    uri: &str,
    body: Option<Value>,
    user: Option<&str>,
) -> Request<Body> {
    let identity = user.map(identity);
    let cred = (USER, PASS);
    super::tenant_isolation_platform_trust::as_platform(
        cred,
        method,
        uri,
        body,
        identity.as_deref(),
    )
}

/// Sends as `user` and, on 202, waits for the operation.
pub async fn run(
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

/// [`run`]'s `PUT` of instance `id` (a provision) as `user`.
pub async fn put_instance(b: &TestBroker, user: Option<&str>, id: &str, body: Value) -> Resp {
    run(
        b,
        user,
        Method::PUT,
        &format!("/v2/service_instances/{id}"),
        Some(body),
    )
    .await
}

/// Provisions app instance `id` in `team-b`, using store instance `store`.
pub async fn app_using(b: &TestBroker, id: &str, store: &str) -> Resp {
    put_instance(
        b,
        None,
        id,
        provision(
            "svc-app",
            "plan-app",
            "team-b",
            json!({"store_instance": store}),
        ),
    )
    .await
}

/// Every manifest file under the render tree that declares Secret `ns/name`.
pub fn rendered_secrets(b: &TestBroker, ns: &str, name: &str) -> Vec<PathBuf> {
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
pub type Grants = &'static [(&'static str, &'static [&'static str])];

/// The real control plane (tests/testenv) with `namespaces` (name, labels)
/// and, for each user, the built-in `edit` role in the namespaces `grants`
/// lists: the SubjectAccessReviews are answered by the real RBAC authorizer.
/// The tests of this file share one control plane, so these namespaces
/// and grants are shared too: every test uses names of its own for
/// instances and Secrets, and the same grants for the same user.
pub async fn cluster(namespaces: &[(&str, Value)], grants: Grants) -> TenantCluster {
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
pub struct TenantCluster {
    pub kubeconfig: std::path::PathBuf,
}

impl TenantCluster {
    /// A copy of the admin kubeconfig in `dir` (where `secret_data` reads it).
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::copy(&self.kubeconfig, &path).unwrap();
        path
    }
}

pub async fn helm_broker(k: &TenantCluster, edit: impl FnOnce(&mut ServeConfig)) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = tenant_config(data.path());
    cfg.engine = Engine::Helm;
    cfg.kubeconfig = Some(k.kubeconfig(data.path()));
    edit(&mut cfg);
    TestBroker::with_config(data, cfg).await
}

/// A Secret's string data, read through the API like any client would.
pub async fn secret_data(b: &TestBroker, ns: &str, name: &str) -> Option<BTreeMap<String, String>> {
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

// === 7. one owner per namespace and per name, in the render tree ===

/// Every file under `render/<ns>` with its content: what applying that
/// namespace's part of the tree would bring.
pub fn tree_of(b: &TestBroker, ns: &str) -> BTreeMap<PathBuf, String> {
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
pub fn namespace_manifests(b: &TestBroker, ns: &str) -> Vec<PathBuf> {
    tree_of(b, "")
        .into_iter()
        .filter(|(_, text)| {
            // The emitted form: one line of JSON per document.
            text.contains(r#""kind":"Namespace""#) && text.contains(&format!(r#""name":"{ns}""#))
        })
        .map(|(p, _)| p)
        .collect()
}

// === 8. secrets transformed by a chart stay redacted ===

/// The longest run of `secret`'s characters, case-folded, forwards or
/// reversed, left in `text` once everything but ASCII letters and digits
/// is dropped (zero-width and other separators included).
pub fn longest_run(text: &str, secret: &str) -> usize {
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

/// [`run`]'s asynchronous provision of `id` as `user`.
pub async fn provision_run(b: &TestBroker, user: Option<&str>, id: &str, body: Value) -> Resp {
    let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    run(b, user, Method::PUT, &uri, Some(body)).await
}

/// [`run`]'s asynchronous bind of `binding` to `instance` as `user`.
pub async fn bind_run(
    b: &TestBroker,
    user: Option<&str>,
    instance: &str,
    binding: &str,
    body: Value,
) -> Resp {
    let uri = format!(
        "/v2/service_instances/{instance}/service_bindings/{binding}?accepts_incomplete=true"
    );
    run(b, user, Method::PUT, &uri, Some(body)).await
}

/// [`provision_run`] that must succeed.
pub async fn provisioned_run(b: &TestBroker, user: Option<&str>, id: &str, body: Value) -> Resp {
    let r = provision_run(b, user, id, body).await;
    assert_eq!(r.json["state"], "succeeded", "{id}: {}", r.text);
    r
}

/// [`bind_run`] that must succeed.
pub async fn bound_run(
    b: &TestBroker,
    user: Option<&str>,
    id: &str,
    bid: &str,
    body: Value,
) -> Resp {
    let r = bind_run(b, user, id, bid, body).await;
    assert_eq!(r.json["state"], "succeeded", "{id}/{bid}: {}", r.text);
    r
}

/// `PUT` of a `svc-store` instance `id` in `ns` (no parameters): the answer.
pub async fn store_put(b: &TestBroker, id: &str, ns: &str) -> Resp {
    let body = provision("svc-store", "plan-store", ns, json!({}));
    b.put(&format!("/v2/service_instances/{id}"), body).await
}

/// [`store_put`] that must answer 201 Created.
pub async fn store_created(b: &TestBroker, id: &str, ns: &str) -> Resp {
    let r = store_put(b, id, ns).await;
    assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.text);
    r
}

/// `PUT` of binding `bid` of `svc-store` instance `id` with `params`.
pub async fn store_bind_put(b: &TestBroker, id: &str, bid: &str, params: Value) -> Resp {
    let uri = format!("/v2/service_instances/{id}/service_bindings/{bid}");
    b.put(&uri, bind("svc-store", "plan-store", params)).await
}

/// [`store_bind_put`] that must answer 201 Created.
pub async fn store_bind_created(b: &TestBroker, id: &str, bid: &str, params: Value) -> Resp {
    let r = store_bind_put(b, id, bid, params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{id}/{bid}: {}", r.text);
    r
}
