//! Helpers of the tests in tests/adapters/upstream_requests.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use common::upstream as support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use chartbroker::upstream::client::Client;
use chartbroker::upstream::config::UpstreamConfig;
use common::TestBroker;
use support::*;

/// The pair derived for `clusterid: c-1`, namespace `apps`, computed
/// independently with Python's `uuid.uuid5` over the documented names.
pub const ORG_C1: &str = "164cfd3e-02c3-50da-9c0e-f640e81d6957";
pub const SPACE_C1_APPS: &str = "6cc24af8-9db1-5714-b1a7-6fec1cdb4051";

/// A provision as a Kubernetes platform may send it: a Kubernetes context,
/// the deprecated guids absent (`guids: None`) or empty. (Crossplane's
/// provider-osb sends UUIDs from its spec, passed through as sent.)
pub fn k8s_provision(guids: Option<&str>, params: Value) -> Value {
    let mut body = json!({
        "service_id": "svc-db",
        "plan_id": "plan-premium",
        "context": {
            "platform": "kubernetes",
            "clusterid": "c-1",
            "namespace": "apps",
            "instance_name": "orders-db",
        },
        "parameters": params,
    });
    if let Some(v) = guids {
        body["organization_guid"] = json!(v);
        body["space_guid"] = json!(v);
    }
    body
}

pub async fn put(b: &TestBroker, uri: &str, body: Value) -> common::Resp {
    call(b, Method::PUT, uri, Some(body)).await
}

pub async fn provision_until_done(b: &TestBroker, id: &str, body: Value) -> Value {
    let r = put(
        b,
        &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let done = b
        .wait_instance(id, r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    done.json
}

// === ids as path segments ===

pub fn client_for(cloud: &Cloud) -> Client {
    let pw = cloud.dir.path().join("password");
    std::fs::write(&pw, CLOUD_PASSWORD).unwrap();
    let settings = json!({
        "url": cloud.url,
        "allow_insecure_http": true,
        "auth": {"basic": {"username": CLOUD_USER, "password_file": pw}},
    });
    let cfg = UpstreamConfig::parse(
        &chartbroker::catalog::Upstream {
            name: "cloud".into(),
            settings: settings.as_object().unwrap().clone(),
        },
        cloud.dir.path(),
    )
    .unwrap();
    Client::new(cfg).unwrap()
}

/// The raw request targets the upstream received (before its server
/// decoded them).
pub fn raw_uris(cloud: &Cloud) -> Vec<String> {
    cloud
        .requests()
        .iter()
        .map(|r| r["raw_uri"].as_str().unwrap_or_default().to_string())
        .collect()
}
