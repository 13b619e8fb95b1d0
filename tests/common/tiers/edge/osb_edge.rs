//! Helpers of the tests in tests/edge/osb_edge/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};

// === helpers ===

pub const VERSION: (&str, &str) = ("x-broker-api-version", "2.17");

/// An authenticated request declaring a JSON body of exactly `body`'s bytes
/// (or no body).
pub async fn send_json_bytes(
    b: &TestBroker,
    method: Method,
    uri: &str,
    body: Option<Vec<u8>>,
) -> Resp {
    b.send_bare(
        method,
        uri,
        &[
            ("authorization", &auth()),
            VERSION,
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
}

/// Every `/v2` route with a request that would otherwise succeed or fail
/// for reasons other than authentication.
pub fn v2_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let i = "/v2/service_instances/i-1";
    let b = "/v2/service_instances/i-1/service_bindings/b-1";
    vec![
        (Method::GET, "/v2/catalog", None),
        (
            Method::PUT,
            i,
            Some(provision_body("plan-small", json!({}))),
        ),
        (
            Method::PATCH,
            i,
            Some(json!({"service_id": "svc-tiny", "parameters": {}})),
        ),
        (Method::GET, i, None),
        (
            Method::DELETE,
            "/v2/service_instances/i-1?service_id=svc-tiny&plan_id=plan-small",
            None,
        ),
        (
            Method::GET,
            "/v2/service_instances/i-1/last_operation",
            None,
        ),
        (Method::PUT, b, Some(bind_body("plan-small", json!({})))),
        (Method::GET, b, None),
        (
            Method::DELETE,
            "/v2/service_instances/i-1/service_bindings/b-1?service_id=svc-tiny&plan_id=plan-small",
            None,
        ),
        (
            Method::GET,
            "/v2/service_instances/i-1/service_bindings/b-1/last_operation",
            None,
        ),
    ]
}

pub fn body_bytes(v: &Option<Value>) -> Option<Vec<u8>> {
    v.as_ref().map(|v| serde_json::to_vec(v).unwrap())
}

#[track_caller]
pub fn assert_unauthorized(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
    let challenges: Vec<_> = r
        .headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic ")),
        "{what}: challenges {challenges:?}"
    );
    let d = r.json["description"].as_str().unwrap_or("");
    assert!(!d.is_empty(), "{what}: {}", r.text);
}

/// A spec-conformant `error` code: one camel-case word.
pub fn is_camel_word(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

// === X-Broker-API-Originating-Identity ===

pub fn malformed_identities() -> Vec<String> {
    vec![
        "kubernetes".into(),
        "kubernetes !!!not-base64!!!".into(),
        format!(
            "kubernetes {}",
            base64::engine::general_purpose::STANDARD.encode("not json")
        ),
        format!("kubernetes {}", b64_encode(&json!([1, 2]).to_string())),
        format!("kubernetes {}", b64_encode(&json!("duke").to_string())),
        // The profile's required properties are missing.
        format!(
            "kubernetes {}",
            b64_encode(&json!({"uid": "1"}).to_string())
        ),
        format!(
            "cloudfoundry {}",
            b64_encode(&json!({"username": "duke"}).to_string())
        ),
    ]
}
