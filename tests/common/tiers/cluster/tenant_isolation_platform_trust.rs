//! Helpers of the tests in tests/cluster/tenant_isolation/platform_trust.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use common::cluster::Cluster;
use common::*;
use serde_json::{Value, json};

use chartbroker::runtime::{Engine, ServeConfig};

/// The platform that checks its users, and the one that is its own
/// authorizer.
pub const CF: (&str, &str) = ("cf-platform", "cf-password-0123");
pub const XP: (&str, &str) = ("osb-crossplane", "xp-password-4567");

pub fn identity(platform: &str, value: Value) -> String {
    format!(
        "{platform} {}",
        base64::engine::general_purpose::STANDARD.encode(value.to_string())
    )
}

pub fn kube_user(user: &str) -> String {
    identity(
        "kubernetes",
        json!({"username": user, "uid": user, "groups": [], "extra": {}}),
    )
}

/// A request authenticated as `cred`, with `identity` when given.
pub fn as_platform(
    cred: (&str, &str),
    method: Method,
    uri: &str,
    body: Option<Value>,
    identity: Option<&str>,
) -> Request<Body> {
    let mut r = req(method, uri, body);
    let h = r.headers_mut();
    h.insert("authorization", basic(cred.0, cred.1).parse().unwrap());
    if let Some(id) = identity {
        h.insert("x-broker-api-originating-identity", id.parse().unwrap());
    }
    r
}

pub fn provision(ns: Option<&str>, platform: &str, params: Value) -> Value {
    let mut body = json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f",
        "organization_guid": "2b6b0b8e-5d0a-4c1e-9a39-0f4f3c1d2e11",
        "space_guid": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "parameters": params});
    if let Some(ns) = ns {
        body["context"] = json!({"platform": platform, "namespace": ns});
    }
    body
}

pub fn bind_body() -> Value {
    json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f"})
}

/// Sends; on 202, polls `last_operation` (as the same credential) until the
/// operation leaves `in progress` and returns that answer.
pub async fn run(b: &TestBroker, r: Request<Body>, cred: (&str, &str)) -> Resp {
    let uri = r.uri().path().to_string();
    let accepted = b.send(r).await;
    if accepted.status != StatusCode::ACCEPTED {
        return accepted;
    }
    let op = accepted.json["operation"].as_str().unwrap();
    let poll = format!("{uri}/last_operation?operation={op}");
    for _ in 0..1200 {
        let r = b
            .send(as_platform(cred, Method::GET, &poll, None, None))
            .await;
        if r.status != StatusCode::OK || r.json["state"] != "in progress" {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{poll} still in progress after 120 s");
}

pub fn write_credentials(dir: &Path, xp_namespaces: &[&str]) -> std::path::PathBuf {
    let path = dir.join("credentials.yaml");
    let ns = serde_json::to_string(xp_namespaces).unwrap();
    std::fs::write(
        &path,
        format!(
            "users:\n  - username: {}\n    password: {}\n  - username: {}\n    password: {}\n    identity: platform\n    namespaces: {ns}\n    deprovision_poll: gone\n",
            CF.0, CF.1, XP.0, XP.1
        ),
    )
    .unwrap();
    path
}

pub fn platform_config(data: &Path) -> ServeConfig {
    let mut cfg = config(data);
    cfg.catalog_dir = fixtures().join("catalog-platform");
    cfg.charts_dir = fixtures().join("charts");
    cfg
}

/// A helm-engine broker on the real control plane (admin kubeconfig, so
/// only the trust under test decides), SubjectAccessReviews on.
pub async fn cluster_broker(k: &Cluster, xp_namespaces: &[&str]) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = platform_config(data.path());
    cfg.engine = Engine::Helm;
    let kubeconfig = data.path().join("kubeconfig");
    std::fs::copy(&k.kubeconfig, &kubeconfig).unwrap();
    cfg.kubeconfig = Some(kubeconfig);
    cfg.helm_timeout = std::time::Duration::from_secs(120);
    cfg.credentials_file = Some(write_credentials(data.path(), xp_namespaces));
    assert!(cfg.subject_access_review);
    TestBroker::with_config(data, cfg).await
}

/// `last_operation` of instance `id`, asked as platform `cred`, is 404:
/// nothing was recorded for it.
pub async fn assert_nothing_recorded(b: &TestBroker, cred: (&str, &str), id: &str) {
    let uri = format!("/v2/service_instances/{id}/last_operation");
    let lo = b
        .send(as_platform(cred, Method::GET, &uri, None, None))
        .await;
    assert_eq!(
        lo.status,
        StatusCode::NOT_FOUND,
        "nothing recorded: {}",
        lo.text
    );
}

/// Request `allowed` is created (201) and `refused` answers 403 Forbidden.
pub async fn assert_only(b: &TestBroker, allowed: Request<Body>, refused: Request<Body>) {
    let r = b.send(allowed).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = b.send(refused).await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
}

/// A `PUT` of `body` to `uri` as platform `cred`, with `identity` when given.
pub async fn put_as(
    b: &TestBroker,
    cred: (&str, &str),
    uri: &str,
    body: Value,
    identity: Option<&str>,
) -> Resp {
    b.send(as_platform(cred, Method::PUT, uri, Some(body), identity))
        .await
}
