//! Helpers of the tests in tests/edge/osb_conformance_suites/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Resp, TestBroker, auth, inst};

pub const VERSION: (&str, &str) = ("x-broker-api-version", "2.17");

// === schemas derived from the suites ===

/// A response schema kept as a fixture, `tests/fixtures/osb/schemas/<name>.json`.
pub fn schema(name: &str) -> Value {
    let path = common::fixtures().join(format!("osb/schemas/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `service_catalog.json` (osb-checker) and `catalog-schema.json` (kotlin):
/// services need name, id, description, bindable and plans (at least one);
/// names are CLI-friendly; a plan allows no fields beyond the listed ones.
/// The suites list only 2.13's plan fields; the 2.17 ones are added.
pub fn catalog_schema() -> Value {
    let non_blank = json!({"type": "string", "pattern": "\\S+"});
    let cli_name = json!({"type": "string", "pattern": "^[a-z0-9-]+$"});
    let service = json!({
        "type": "object",
        "required": ["name", "id", "description", "bindable", "plans"],
        "properties": {
            "name": cli_name,
            "id": non_blank,
            "description": non_blank,
            "tags": {"type": "array", "items": {"type": "string"}},
            "requires": {"type": "array", "items": {
                "enum": ["syslog_drain", "route_forwarding", "volume_mount"],
            }},
            "bindable": {"type": "boolean"},
            "metadata": {"type": "object"},
            "plan_updateable": {"type": "boolean"},
            "plans": {"type": "array", "minItems": 1, "items": plan_schema()},
        },
    });
    json!({
        "type": "object",
        "required": ["services"],
        "additionalProperties": false,
        "properties": {"services": {"type": "array", "items": service}},
    })
}

/// A catalog plan: closed, as in both suites.
pub fn plan_schema() -> Value {
    let non_blank = json!({"type": "string", "pattern": "\\S+"});
    let params = json!({
        "type": "object",
        "properties": {"parameters": {"type": "object"}},
    });
    let schemas = json!({
        "type": "object",
        "properties": {
            "service_instance": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"create": params, "update": params},
            },
            "service_binding": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"create": params},
            },
        },
    });
    json!({
        "type": "object",
        "required": ["id", "name", "description"],
        "additionalProperties": false,
        "properties": {
            "id": non_blank,
            "name": {"type": "string", "pattern": "^[a-z0-9-]+$"},
            "description": non_blank,
            "metadata": {"type": "object"},
            "free": {"type": "boolean"},
            "bindable": {"type": "boolean"},
            "schemas": schemas,
            // v2.17 plan fields the 2.13 schemas lack.
            "maintenance_info": {
                "type": "object",
                "required": ["version"],
                "properties": {"version": non_blank, "description": {"type": "string"}},
            },
            "plan_updateable": {"type": "boolean"},
            "maximum_polling_duration": {"type": "integer", "minimum": 0},
            "binding_rotatable": {"type": "boolean"},
        },
    })
}

/// `provision_response.json`: nothing but a dashboard URL and an operation.
pub fn provision_schema() -> Value {
    schema("provision")
}

/// `update_response.json`: nothing but an operation.
pub fn update_schema() -> Value {
    schema("update")
}

/// `provisioning_delete_response.json` / `binding_delete_response.json`.
pub fn delete_schema() -> Value {
    schema("delete")
}

/// `polling-response-schema.json` (kotlin; osb-checker's `last_operation.json`
/// is the same but allows other fields).
pub fn last_operation_schema() -> Value {
    schema("last_operation")
}

/// `binding-response-schema.json` (kotlin, closed; osb-checker's is open).
pub fn binding_schema() -> Value {
    schema("binding")
}

/// kotlin's fetch-instance schema (not published with the sources read):
/// the spec's GET instance fields, nothing else.
pub fn fetch_instance_schema() -> Value {
    schema("fetch_instance")
}

/// The spec's GET binding fields, nothing else.
pub fn fetch_binding_schema() -> Value {
    schema("fetch_binding")
}

/// `service-broker-error-response.json` (kotlin), checked on its 400s; with
/// `code`, the `service-broker-async-required.json` /
/// `service-broker-maintenance-info-error.json` variants.
pub fn error_schema(code: Option<&str>) -> Value {
    let mut s = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "error": {"type": "string", "pattern": "([a-z]+[A-Z]+\\w+)+"},
            "description": {"type": "string", "pattern": "\\S+"},
        },
    });
    if let Some(code) = code {
        s["required"] = json!(["error"]);
        s["properties"]["error"] = json!({"enum": [code]});
    }
    s
}

#[track_caller]
pub fn assert_schema(schema: &Value, r: &Resp) {
    let validator = jsonschema::validator_for(schema).expect("the test's schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&r.json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {} {}", r.status, r.text);
}

#[track_caller]
pub fn assert_status(r: &Resp, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

#[track_caller]
pub fn assert_json_content_type(r: &Resp) {
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(ct.contains("json"), "content-type {ct:?}");
}

// === request helpers ===

/// A request with exactly these headers and an optional JSON body.
pub async fn send(
    b: &TestBroker,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    let body = body.map(|v| serde_json::to_vec(&v).unwrap());
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    if body.is_some() {
        h.push(("content-type", "application/json"));
    }
    b.send_bare(method, uri, &h, body).await
}

/// An authenticated request with `X-Broker-API-Version`, as every suite
/// sends its valid requests.
pub async fn call(b: &TestBroker, method: Method, uri: &str, body: Option<Value>) -> Resp {
    let a = auth();
    send(b, method, uri, &[("authorization", &a), VERSION], body).await
}

/// [`call`] `DELETE`.
pub async fn call_delete(b: &TestBroker, uri: &str) -> Resp {
    call(b, Method::DELETE, uri, None).await
}

/// [`call`] `GET`.
pub async fn call_get(b: &TestBroker, uri: &str) -> Resp {
    call(b, Method::GET, uri, None).await
}

/// The asynchronous deprovision of instance `id` as the suites send it.
pub fn async_deprovision(id: &str) -> String {
    format!(
        "{}?accepts_incomplete=true&service_id=svc-tiny&plan_id=plan-small",
        inst(id)
    )
}

/// A `DELETE` of `uri` with each of `queries`: 400 every time.
pub async fn deletes_refused(b: &TestBroker, uri: &str, queries: &[&str]) {
    for query in queries {
        let r = call_delete(b, &format!("{uri}{query}")).await;
        assert_status(&r, StatusCode::BAD_REQUEST);
    }
}

/// An asynchronous provision of `i-1` refused with a 400 in the suites'
/// error schema: the answer.
pub async fn provision_refused(b: &TestBroker, body: Value) -> Resp {
    let uri = format!("{}?accepts_incomplete=true", inst("i-1"));
    let r = call(b, Method::PUT, &uri, Some(body)).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert_schema(&error_schema(None), &r);
    r
}

/// The body osb-checker's Go client sends: absent fields as `""`, and
/// always `maintenance_info: {}`.
pub fn go_provision_body(plan: &str, params: Value) -> Value {
    json!({
        "service_id": "svc-tiny",
        "plan_id": plan,
        "organization_guid": "org-guid-here",
        "space_guid": "space-guid-here",
        "parameters": params,
        "maintenance_info": {},
    })
}

pub fn binding(i: &str, id: &str) -> String {
    format!("/v2/service_instances/{i}/service_bindings/{id}")
}

/// Every route with a request that would otherwise be accepted.
pub fn routes() -> Vec<(Method, String, Option<Value>)> {
    let i = inst("i-1");
    let b = binding("i-1", "b-1");
    let provision = format!("{i}?accepts_incomplete=true");
    let deprovision = format!("{i}?accepts_incomplete=true&service_id=Invalid&plan_id=Invalid");
    let unbind = format!("{b}?service_id=Invalid&plan_id=Invalid");
    let empty = || Some(json!({}));
    vec![
        (Method::GET, "/v2/catalog".into(), None),
        (Method::PUT, provision, empty()),
        (Method::PATCH, i.clone(), empty()),
        (Method::GET, i.clone(), None),
        (Method::DELETE, i.clone(), None),
        (Method::DELETE, deprovision, None),
        (Method::GET, format!("{i}/last_operation"), None),
        (Method::PUT, b.clone(), empty()),
        (Method::PUT, b.clone(), None),
        (Method::GET, b.clone(), None),
        (Method::DELETE, unbind, None),
        (Method::GET, format!("{b}/last_operation"), None),
    ]
}
