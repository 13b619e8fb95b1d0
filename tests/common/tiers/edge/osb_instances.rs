//! Helpers of the tests in tests/edge/osb_instances/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

// === helpers ===

pub fn inst_async(id: &str) -> String {
    format!("/v2/service_instances/{id}?accepts_incomplete=true")
}

pub fn deprovision_uri(id: &str, plan: &str, accepts_incomplete: bool) -> String {
    let flag = if accepts_incomplete {
        "&accepts_incomplete=true"
    } else {
        ""
    };
    format!("/v2/service_instances/{id}?service_id=svc-tiny&plan_id={plan}{flag}")
}

pub fn last_op(id: &str, op: Option<&str>) -> String {
    match op {
        Some(op) => {
            format!("/v2/service_instances/{id}/last_operation?operation={op}&service_id=svc-tiny")
        }
        None => format!("/v2/service_instances/{id}/last_operation"),
    }
}

/// A PATCH body as platforms send it.
pub fn update_body(plan: Option<&str>, params: Value) -> Value {
    let mut v = json!({
        "service_id": "svc-tiny",
        "parameters": params,
        "previous_values": {"plan_id": "plan-small"},
    });
    if let Some(p) = plan {
        v["plan_id"] = json!(p);
    }
    v
}

/// After a 4xx on provision: no record, no operation, no files.
pub async fn assert_nothing_created(b: &TestBroker, id: &str) {
    let r = b.get(&inst(id)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "instance exists: {}",
        r.text
    );
    let r = b.get(&last_op(id, None)).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "an operation was recorded: {}",
        r.text
    );
    assert!(!b.release_dir(id).exists(), "files were rendered for {id}");
}

/// The instance as GET shows it: plan and parameters, as the platform sent
/// them (the plan's defaults, such as `replicas`, reach the chart but are
/// not reported back: a platform comparing exactly must see no drift).
pub async fn assert_instance(b: &TestBroker, id: &str, plan: &str, params: Value) {
    let r = b.get(&inst(id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["plan_id"], plan, "{}", r.text);
    assert_eq!(r.json["parameters"], params, "{}", r.text);
}

/// The documents `helm template` rendered for an instance.
pub fn manifests(b: &TestBroker, id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(b.release_dir(id).join("manifests.yaml")).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("manifests are not YAML ({e}):\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind} in {docs:?}");
    found[0]
}

// === hostile parameters ===

/// Provisions `message` for real and checks the rendered manifests carry it
/// as one literal string under `data.message`, with nothing added, and that
/// the Secret holds the generated password.
pub async fn assert_rendered_literally(message: &str) {
    let b = TestBroker::start().await;
    b.provision_sync("i-h", "plan-small", json!({"message": message}))
        .await;
    let creds = b.bind_sync("i-h", "b-h", "plan-small", json!({})).await;
    let password = creds["password"].as_str().unwrap();
    assert_eq!(password.len(), 24);
    assert_ne!(password, message);
    let docs = manifests(&b, "i-h");
    assert_eq!(docs.len(), 2, "documents were injected: {docs:?}");
    let cm = of_kind(&docs, "ConfigMap");
    assert_eq!(
        cm["data"],
        json!({"message": message, "replicas": "1"}),
        "ConfigMap data must have exactly these keys and values"
    );
    let secret = of_kind(&docs, "Secret");
    assert_eq!(secret["stringData"], json!({"password": password}));
    assert_eq!(secret["metadata"]["name"], "cb-i-h");
    assert_eq!(secret["metadata"]["namespace"], "apps");
}
