//! Helpers of the tests in tests/adapters/authorization.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine as _;
use common::*;
use fake_kube::{FakeKube, FakeKubeHandle};
use serde_json::{Value, json};

use chartbroker::runtime::Engine;

pub fn identity(platform: &str, value: Value) -> String {
    format!(
        "{platform} {}",
        base64::engine::general_purpose::STANDARD.encode(value.to_string())
    )
}

pub fn with_identity(method: Method, uri: &str, body: Value, id: Option<&str>) -> Request<Body> {
    let mut r = req(method, uri, Some(body));
    if let Some(id) = id {
        r.headers_mut()
            .insert("x-broker-api-originating-identity", id.parse().unwrap());
    }
    r
}

/// An authenticated `PUT` of `body` on behalf of `id` (no identity: `None`).
pub async fn put_as(b: &TestBroker, uri: &str, body: Value, id: Option<&str>) -> Resp {
    b.send(with_identity(Method::PUT, uri, body, id)).await
}

pub async fn setup() -> (FakeKubeHandle, TestBroker) {
    let k = FakeKube::start().await;
    k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    // The release identity helm runs as (the fake checks no token).
    k.put(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "chartbroker-release", "namespace": "apps"}}));
    // Only alice may create Secrets in apps.
    k.set_authorizer(|spec| {
        spec["user"] == "alice"
            && spec["resourceAttributes"]["namespace"] == "apps"
            && spec["resourceAttributes"]["verb"] == "create"
            && spec["resourceAttributes"]["resource"] == "secrets"
    });
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.engine = Engine::Helm;
    cfg.kubeconfig = Some(k.kubeconfig(data.path()));
    let b = TestBroker::with_config(data, cfg).await;
    (k, b)
}
