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

/// A synchronous plan-small provision of `i-1` with `params`: the answer.
pub async fn provision_with(b: &TestBroker, params: Value) -> Resp {
    b.put(&inst("i-1"), provision_body("plan-small", params))
        .await
}

/// A plan-small provision of `i-1` whose `field` is `value`, or absent
/// when `None`: the answer.
pub async fn provision_field(b: &TestBroker, field: &str, value: Option<Value>) -> Resp {
    let mut body = provision_body("plan-small", json!({}));
    match value {
        None => {
            body.as_object_mut().unwrap().remove(field);
        }
        Some(v) => body[field] = v,
    }
    b.put(&inst("i-1"), body).await
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

/// A PATCH of `uri` with [`update_body`] of `plan` and `params`: the answer.
pub async fn update(b: &TestBroker, uri: &str, plan: Option<&str>, params: Value) -> Resp {
    b.patch(uri, update_body(plan, params)).await
}

/// An asynchronous update of `id` that must answer 202: its operation.
pub async fn update_async(b: &TestBroker, id: &str, body: Value) -> String {
    let r = b.patch(&inst_async(id), body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json["operation"].as_str().unwrap().to_string()
}

/// The failure of plan-broken's provision of `i-1` (answer or poll): helm's
/// own words and the field it rejected, no update-only flags, no instance.
pub async fn assert_helm_refused_provision(b: &TestBroker, r: &Resp) {
    let d = r.json["description"].as_str().unwrap();
    // Helm's own words (helm 3 and 4 both say this) and the field it rejected.
    assert!(d.contains("values don't meet the specifications"), "{d}");
    assert!(d.contains("replicas"), "{d}");
    // The spec allows these flags only for failed updates and deprovisions.
    assert!(r.json.get("instance_usable").is_none(), "{}", r.text);
    assert!(r.json.get("update_repeatable").is_none(), "{}", r.text);
    let r = b.get(&inst("i-1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

/// An update of instance `i-1` refused with 422, leaving it as it was.
pub struct UpdateRefusal {
    /// Named so a failure says which case.
    pub name: &'static str,
    /// The instance's plan (see [`instance_of`]).
    pub plan: &'static str,
    /// Sent with `accepts_incomplete=true`.
    pub accepts_incomplete: bool,
    /// The PATCH: its `plan_id`, parameters (JSON) and
    /// `maintenance_info.version`.
    pub new_plan: Option<&'static str>,
    pub params: &'static str,
    pub maintenance_version: Option<&'static str>,
    /// The OSB error code of the 422.
    pub error: &'static str,
}

impl UpdateRefusal {
    pub fn uri(&self) -> String {
        if self.accepts_incomplete {
            inst_async("i-1")
        } else {
            inst("i-1")
        }
    }

    pub fn body(&self) -> Value {
        let params: Value = serde_json::from_str(self.params).unwrap();
        let mut body = update_body(self.new_plan, params);
        if let Some(v) = self.maintenance_version {
            body["maintenance_info"] = json!({"version": v});
        }
        body
    }
}

pub const UPDATE_REFUSALS: &[UpdateRefusal] = &[
    UpdateRefusal {
        name: "async-required plan without accepts_incomplete: AsyncRequired",
        plan: "plan-async",
        accepts_incomplete: false,
        new_plan: None,
        params: r#"{"x": 1}"#,
        maintenance_version: None,
        error: "AsyncRequired",
    },
    UpdateRefusal {
        name: "plan change from a non-updateable plan: PlanChangeNotSupported",
        plan: "plan-async",
        accepts_incomplete: true,
        new_plan: Some("plan-small"),
        params: "{}",
        maintenance_version: None,
        error: "PlanChangeNotSupported",
    },
    UpdateRefusal {
        name: "maintenance_info mismatch: MaintenanceInfoConflict",
        plan: "plan-small",
        accepts_incomplete: false,
        new_plan: None,
        params: r#"{"message": "new"}"#,
        maintenance_version: Some("0.1.0"),
        error: "MaintenanceInfoConflict",
    },
];

/// A new broker with instance `i-1` of `plan`: plan-async provisioned
/// asynchronously with no parameters, any other plan synchronously with
/// message "hi". The broker and the parameters the instance was given.
pub async fn instance_of(plan: &str) -> (TestBroker, Value) {
    if plan == "plan-async" {
        let b = TestBroker::start().await;
        let op = b.provision_async("i-1", plan, json!({})).await;
        b.wait_instance("i-1", &op).await;
        (b, json!({}))
    } else {
        let b = TestBroker::start().await;
        b.provision_sync("i-1", plan, json!({"message": "hi"}))
            .await;
        (b, json!({"message": "hi"}))
    }
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

/// Lets `op` on `i-1` through `gate`, waits until it has succeeded, and
/// checks the instance is plan-small with `params`.
pub async fn finish_as(b: &TestBroker, gate: &Gate, op: &str, params: Value) {
    gate.open();
    b.wait_succeeded("i-1", op).await;
    assert_instance(b, "i-1", "plan-small", params).await;
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
