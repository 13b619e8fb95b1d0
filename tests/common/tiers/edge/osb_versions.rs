//! Helpers of the tests in tests/edge/osb_versions.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::*;
use serde_json::{Value, json};

/// Every key the catalog carries anywhere under services[] and plans[].
pub fn catalog_keys(catalog: &Value) -> (Vec<String>, Vec<String>) {
    let mut service_keys = Vec::new();
    let mut plan_keys = Vec::new();
    for s in catalog["services"].as_array().expect("services") {
        service_keys.extend(s.as_object().unwrap().keys().cloned());
        for p in s["plans"].as_array().expect("plans") {
            plan_keys.extend(p.as_object().unwrap().keys().cloned());
        }
    }
    (service_keys, plan_keys)
}

pub fn versioned(method: Method, uri: &str, version: &str, body: Option<Value>) -> Request<Body> {
    let mut r = req(method, uri, body);
    r.headers_mut()
        .insert("x-broker-api-version", version.parse().unwrap());
    r
}

/// A [`versioned`] request sent to `b`.
pub async fn send_versioned(
    b: &TestBroker,
    method: Method,
    uri: &str,
    version: &str,
    body: Option<Value>,
) -> Resp {
    b.send(versioned(method, uri, version, body)).await
}

/// `instance_usable` and `update_repeatable` are both in `r` exactly when
/// `present` (2.16 and later).
pub fn assert_failure_flags(r: &Resp, version: &str, present: bool) {
    for key in ["instance_usable", "update_repeatable"] {
        assert_eq!(
            r.json.get(key).is_some(),
            present,
            "{version}: {key} in {}",
            r.text
        );
    }
}

/// The test catalog with a `maximum_polling_duration` on one plan, so each
/// version-gated plan field appears somewhere in it.
/// [`broker`] with instance `i-1` of plan-small provisioned (message "hi").
pub async fn versions_broker_with_instance() -> TestBroker {
    let b = broker().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    b
}

pub async fn broker() -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("catalog");
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = std::fs::read_to_string(fixtures().join("catalog/test.yaml")).unwrap();
    let yaml = yaml.replacen(
        "        async_required: true\n",
        "        async_required: true\n        maximum_polling_duration: 600\n",
        1,
    );
    assert!(yaml.contains("maximum_polling_duration: 600"));
    std::fs::write(dir.join("test.yaml"), yaml).unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = dir;
    TestBroker::with_config(data, cfg).await
}

/// (key, on a service or a plan, first minor version defining it)
pub const GATED: [(&str, &str, u32); 7] = [
    ("instances_retrievable", "service", 14),
    ("bindings_retrievable", "service", 14),
    ("allow_context_updates", "service", 15),
    ("plan_updateable", "plan", 15),
    ("maintenance_info", "plan", 15),
    ("maximum_polling_duration", "plan", 15),
    ("binding_rotatable", "plan", 17),
];
