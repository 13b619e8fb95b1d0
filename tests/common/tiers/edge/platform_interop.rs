//! Helpers of the tests in tests/edge/platform_interop.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::*;
use serde_json::{Value, json};

pub const XP: (&str, &str) = ("osb-crossplane", "xp-password-4567");

pub async fn broker() -> TestBroker {
    broker_with("").await
}

/// XP is its own authorizer and hears 410 for a completed deprovision;
/// `extra` adds YAML lines to its entry.
pub async fn broker_with(extra: &str) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = fixtures().join("catalog-platform");
    let creds = data.path().join("credentials.yaml");
    std::fs::write(
        &creds,
        format!(
            "users:\n  - username: {}\n    password: {}\n    identity: platform\n    deprovision_poll: gone{extra}\n",
            XP.0, XP.1
        ),
    )
    .unwrap();
    cfg.credentials_file = Some(creds);
    TestBroker::with_config(data, cfg).await
}

pub fn as_xp(method: Method, uri: &str, body: Option<Value>) -> Request<Body> {
    let mut r = req(method, uri, body);
    r.headers_mut()
        .insert("authorization", basic(XP.0, XP.1).parse().unwrap());
    r
}

/// An [`as_xp`] request sent to `b`.
pub async fn send_as_xp(b: &TestBroker, method: Method, uri: &str, body: Option<Value>) -> Resp {
    b.send(as_xp(method, uri, body)).await
}

/// xp's provision at `uri` of the `shop` database: the answer.
pub async fn provision_shop_as_xp(b: &TestBroker, uri: &str) -> Resp {
    let body = provision(json!({"database": "shop"}));
    send_as_xp(b, Method::PUT, uri, Some(body)).await
}

pub fn provision(params: Value) -> Value {
    json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f",
        "organization_guid": "2b6b0b8e-5d0a-4c1e-9a39-0f4f3c1d2e11",
        "space_guid": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "context": {"platform": "kubernetes", "namespace": "apps"},
        "parameters": params})
}

pub fn patch(params: Value) -> Value {
    json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f", "parameters": params})
}

/// The chart values the render engine wrote for `instance`.
pub fn rendered(b: &TestBroker, instance: &str) -> String {
    let mut out = String::new();
    for e in walk(&b.release_dir(instance)) {
        out.push_str(&std::fs::read_to_string(e).unwrap());
    }
    out
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
