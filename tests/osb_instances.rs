//! Service instances over HTTP: provision, update, deprovision, fetch and
//! `last_operation`, each OSB rule with its status, body and headers, plus
//! hostile parameter values rendered through the real `helm template`.

mod common;

use axum::http::{Method, StatusCode, header};
use common::*;
use serde_json::{Value, json};

// === helpers ===

fn inst(id: &str) -> String {
    format!("/v2/service_instances/{id}")
}

fn inst_async(id: &str) -> String {
    format!("/v2/service_instances/{id}?accepts_incomplete=true")
}

fn deprovision_uri(id: &str, plan: &str, accepts_incomplete: bool) -> String {
    let flag = if accepts_incomplete {
        "&accepts_incomplete=true"
    } else {
        ""
    };
    format!("/v2/service_instances/{id}?service_id=svc-tiny&plan_id={plan}{flag}")
}

fn last_op(id: &str, op: Option<&str>) -> String {
    match op {
        Some(op) => {
            format!("/v2/service_instances/{id}/last_operation?operation={op}&service_id=svc-tiny")
        }
        None => format!("/v2/service_instances/{id}/last_operation"),
    }
}

/// A PATCH body as platforms send it.
fn update_body(plan: Option<&str>, params: Value) -> Value {
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
async fn assert_nothing_created(b: &TestBroker, id: &str) {
    let r = b.call(Method::GET, &inst(id), None).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "instance exists: {}",
        r.text
    );
    let r = b.call(Method::GET, &last_op(id, None), None).await;
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
async fn assert_instance(b: &TestBroker, id: &str, plan: &str, params: Value) {
    let r = b.call(Method::GET, &inst(id), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["plan_id"], plan, "{}", r.text);
    assert_eq!(r.json["parameters"], params, "{}", r.text);
}

/// The documents `helm template` rendered for an instance.
fn manifests(b: &TestBroker, id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(b.release_dir(id).join("manifests.yaml")).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("manifests are not YAML ({e}):\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind} in {docs:?}");
    found[0]
}

// === provision ===

#[tokio::test]
async fn provision_sync_returns_201() {
    let b = TestBroker::start().await;
    let r = b
        .call(
            Method::PUT,
            &inst("i-1"),
            Some(provision_body("plan-small", json!({"message": "hi"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.json.is_object(), "{}", r.text);
    assert!(r.json.get("operation").is_none(), "{}", r.text);
    assert!(b.release_dir("i-1").join("manifests.yaml").is_file());
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn provision_async_returns_202_with_operation_then_succeeds() {
    let b = TestBroker::start().await;
    let r = b
        .call(
            Method::PUT,
            &inst_async("i-1"),
            Some(provision_body("plan-small", json!({"message": "hi"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().expect("operation").to_string();
    assert!(!op.is_empty() && op.len() <= 10_000);
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    assert!(b.release_dir("i-1").join("manifests.yaml").is_file());
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn provision_async_required_plan_succeeds_with_accepts_incomplete() {
    let b = TestBroker::start().await;
    let op = b.provision_async("i-1", "plan-async", json!({})).await;
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

#[tokio::test]
async fn provision_repeated_while_in_progress_returns_202_with_same_operation() {
    let (b, gate) = TestBroker::start_gated().await;
    let body = provision_body("plan-small", json!({"message": "hi"}));
    let op = b
        .provision_async("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    for _ in 0..2 {
        let r = b
            .call(Method::PUT, &inst_async("i-1"), Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        assert_eq!(r.json["operation"], op.as_str(), "{}", r.text);
    }
    // The repeats really were answered while the operation ran.
    let r = b.call(Method::GET, &last_op("i-1", Some(&op)), None).await;
    assert_eq!(r.json["state"], "in progress", "{}", r.text);
    gate.open();
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

#[tokio::test]
async fn provision_conflicting_attributes_while_in_progress_returns_409() {
    let (b, gate) = TestBroker::start_gated().await;
    let op = b
        .provision_async("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let r = b
        .call(
            Method::PUT,
            &inst_async("i-1"),
            Some(provision_body("plan-small", json!({"message": "other"}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::CONFLICT, None);
    gate.open();
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn provision_identical_after_completion_returns_200() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    // Key order and unknown fields do not make a request different.
    let r = b
        .call(
            Method::PUT,
            &inst("i-1"),
            Some(json!({
                "parameters": {"message": "hi"},
                "space_guid": "space",
                "organization_guid": "org",
                "plan_id": "plan-small",
                "service_id": "svc-tiny",
                "context": {"namespace": "apps", "platform": "kubernetes"},
                "x-vendor-extension": {"ignored": true},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json.is_object(), "{}", r.text);
    assert!(r.json.get("operation").is_none(), "{}", r.text);
}

#[tokio::test]
async fn provision_same_id_with_different_attributes_returns_409() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let before = std::fs::read_to_string(b.release_dir("i-1").join("manifests.yaml")).unwrap();
    for body in [
        provision_body("plan-small", json!({"message": "other"})),
        provision_body("plan-large", json!({"message": "hi"})),
        {
            let mut v = provision_body("plan-small", json!({"message": "hi"}));
            v["context"]["namespace"] = json!("elsewhere");
            v
        },
    ] {
        let r = b.call(Method::PUT, &inst("i-1"), Some(body)).await;
        assert_osb_error(&r, StatusCode::CONFLICT, None);
    }
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
    let after = std::fs::read_to_string(b.release_dir("i-1").join("manifests.yaml")).unwrap();
    assert_eq!(before, after);
    assert!(!b.data.path().join("render/elsewhere").exists());
}

#[tokio::test]
async fn provision_unknown_service_or_plan_returns_400() {
    let b = TestBroker::start().await;
    for (service, plan) in [
        ("svc-nope", "plan-small"),
        ("svc-tiny", "plan-nope"),
        ("plan-small", "svc-tiny"),
    ] {
        let mut body = provision_body("plan-small", json!({}));
        body["service_id"] = json!(service);
        body["plan_id"] = json!(plan);
        let r = b.call(Method::PUT, &inst("i-1"), Some(body)).await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    }
    assert_nothing_created(&b, "i-1").await;
}

#[tokio::test]
async fn provision_missing_service_id_or_plan_id_returns_400() {
    let b = TestBroker::start().await;
    for field in ["service_id", "plan_id"] {
        // Absent, as the spec says, and "", as conformance suites send it.
        for missing in [None, Some(json!("")), Some(Value::Null)] {
            let mut body = provision_body("plan-small", json!({}));
            match &missing {
                None => {
                    body.as_object_mut().unwrap().remove(field);
                }
                Some(v) => body[field] = v.clone(),
            }
            let r = b.call(Method::PUT, &inst("i-1"), Some(body)).await;
            assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
            assert!(
                r.json["description"].as_str().unwrap().contains(field),
                "{field} {missing:?}: {}",
                r.text
            );
        }
    }
    assert_nothing_created(&b, "i-1").await;
}

#[tokio::test]
async fn provision_parameters_failing_the_schema_return_400_naming_the_field() {
    let b = TestBroker::start().await;
    for (params, want) in [
        (
            json!({"replicas": 9}),
            r#"parameters.replicas: "Number of replicas" must be at most 5 (got 9)"#,
        ),
        (
            json!({"replicas": "two"}),
            r#"parameters.replicas: "Number of replicas" must be an integer (got a string)"#,
        ),
        (
            json!({"message": "m".repeat(201)}),
            "parameters.message: must be at most 200 characters long (got 201)",
        ),
        (
            json!({"message": 5}),
            "parameters.message: must be a string (got 5)",
        ),
        (
            json!({"bogus": true}),
            r#"parameters: unknown property "bogus" (allowed: message, replicas)"#,
        ),
        // Several at once, each in its own words.
        (
            json!({"replicas": -1, "message": [], "bogus": 1, "other": 2}),
            r#"parameters.message: must be a string (got an array); parameters.replicas: "Number of replicas" must be at least 0 (got -1); parameters: unknown properties "bogus", "other" (allowed: message, replicas)"#,
        ),
    ] {
        let r = b
            .call(
                Method::PUT,
                &inst("i-1"),
                Some(provision_body("plan-small", params.clone())),
            )
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
        assert_eq!(r.json["description"], want, "{params}");
        assert_eq!(
            r.headers[header::CONTENT_TYPE],
            "application/json",
            "{params}"
        );
    }
    assert_nothing_created(&b, "i-1").await;
}

#[tokio::test]
async fn provision_parameters_not_an_object_return_400() {
    let b = TestBroker::start().await;
    for params in [json!([1, 2]), json!("message=hi"), json!(5), json!(true)] {
        let r = b
            .call(
                Method::PUT,
                &inst("i-1"),
                Some(provision_body("plan-small", params.clone())),
            )
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
        assert!(
            r.json["description"]
                .as_str()
                .unwrap()
                .contains("parameters"),
            "{params}: {}",
            r.text
        );
    }
    assert_nothing_created(&b, "i-1").await;
}

#[tokio::test]
async fn provision_context_not_an_object_returns_400() {
    let b = TestBroker::start().await;
    for context in [
        json!("kubernetes"),
        json!([{"platform": "kubernetes"}]),
        json!(1),
    ] {
        let mut body = provision_body("plan-small", json!({}));
        body["context"] = context.clone();
        let r = b.call(Method::PUT, &inst("i-1"), Some(body)).await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
        assert!(
            r.json["description"].as_str().unwrap().contains("context"),
            "{context}: {}",
            r.text
        );
    }
    assert_nothing_created(&b, "i-1").await;
}

#[tokio::test]
async fn provision_async_required_plan_without_accepts_incomplete_returns_422() {
    let b = TestBroker::start().await;
    for uri in [
        inst("i-1"),
        format!("{}?accepts_incomplete=false", inst("i-1")),
    ] {
        let r = b
            .call(
                Method::PUT,
                &uri,
                Some(provision_body("plan-async", json!({}))),
            )
            .await;
        assert_osb_error(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("AsyncRequired"));
    }
    assert_nothing_created(&b, "i-1").await;
}

#[tokio::test]
async fn provision_maintenance_info_version_mismatch_returns_422() {
    let b = TestBroker::start().await;
    for version in ["0.9.0", "2.0.0", "1.0.0+other"] {
        let mut body = provision_body("plan-small", json!({}));
        body["maintenance_info"] = json!({"version": version});
        let r = b.call(Method::PUT, &inst("i-1"), Some(body)).await;
        assert_osb_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("MaintenanceInfoConflict"),
        );
    }
    assert_nothing_created(&b, "i-1").await;
}

#[tokio::test]
async fn provision_with_empty_or_matching_maintenance_info_is_accepted() {
    let b = TestBroker::start().await;
    // Conformance suites send `maintenance_info: {}`.
    let mut body = provision_body("plan-small", json!({}));
    body["maintenance_info"] = json!({});
    let r = b.call(Method::PUT, &inst("i-1"), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut body = provision_body("plan-small", json!({}));
    body["maintenance_info"] = json!({"version": "1.0.0", "description": "ignored"});
    let r = b.call(Method::PUT, &inst("i-2"), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn provision_helm_failure_async_reports_failed_with_helms_message() {
    let b = TestBroker::start().await;
    let op = b.provision_async("i-1", "plan-broken", json!({})).await;
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = r.json["description"].as_str().unwrap();
    // Helm's own words (helm 3 and 4 both say this) and the field it rejected.
    assert!(d.contains("values don't meet the specifications"), "{d}");
    assert!(d.contains("replicas"), "{d}");
    // The spec allows these flags only for failed updates and deprovisions.
    assert!(r.json.get("instance_usable").is_none(), "{}", r.text);
    assert!(r.json.get("update_repeatable").is_none(), "{}", r.text);
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn provision_helm_failure_sync_returns_500_with_helms_message() {
    let b = TestBroker::start().await;
    let r = b
        .call(
            Method::PUT,
            &inst("i-1"),
            Some(provision_body("plan-broken", json!({}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains("values don't meet the specifications"), "{d}");
    assert!(d.contains("replicas"), "{d}");
    assert!(r.json.get("instance_usable").is_none(), "{}", r.text);
    assert!(r.json.get("update_repeatable").is_none(), "{}", r.text);
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

// === update ===

#[tokio::test]
async fn update_plan_change_is_applied() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let r = b
        .call(
            Method::PATCH,
            &inst("i-1"),
            Some(update_body(
                Some("plan-large"),
                json!({"message": "bigger"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({}));
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(r.json["plan_id"], "plan-large", "{}", r.text);
    assert_eq!(r.json["parameters"]["message"], "bigger", "{}", r.text);
    assert_eq!(r.json["maintenance_info"], json!({"version": "2.0.0"}));
    let docs = manifests(&b, "i-1");
    assert_eq!(of_kind(&docs, "ConfigMap")["data"]["message"], "bigger");
}

#[tokio::test]
async fn update_async_returns_202_then_succeeds() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-1"),
            Some(update_body(None, json!({"replicas": 2}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_string();
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    assert_instance(
        &b,
        "i-1",
        "plan-small",
        json!({"message": "hi", "replicas": 2}),
    )
    .await;
}

#[tokio::test]
async fn update_plan_change_from_non_updateable_plan_returns_422() {
    let b = TestBroker::start().await;
    let op = b.provision_async("i-1", "plan-async", json!({})).await;
    b.wait_instance("i-1", &op).await;
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-1"),
            Some(update_body(Some("plan-small"), json!({}))),
        )
        .await;
    assert_osb_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("PlanChangeNotSupported"),
    );
    assert_instance(&b, "i-1", "plan-async", json!({})).await;
}

#[tokio::test]
async fn update_parameters_of_non_updateable_plan_are_allowed() {
    // spec: without plan_updateable, platforms "MAY request an update to the
    // Service Instance parameters".
    let b = TestBroker::start().await;
    let op = b.provision_async("i-1", "plan-async", json!({})).await;
    b.wait_instance("i-1", &op).await;
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-1"),
            Some(update_body(Some("plan-async"), json!({"tier": "gold"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_string();
    assert_eq!(b.wait_instance("i-1", &op).await.json["state"], "succeeded");
    assert_instance(&b, "i-1", "plan-async", json!({"tier": "gold"})).await;
}

#[tokio::test]
async fn update_without_plan_id_or_parameters_changes_neither() {
    // spec: no `parameters` -> "MUST NOT change the parameters"; no
    // `plan_id` -> "MUST NOT change the Service Plan". Conformance suites
    // send absent fields as "" and `maintenance_info: {}`.
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    for body in [
        json!({"service_id": "svc-tiny"}),
        json!({"service_id": "svc-tiny", "plan_id": "", "maintenance_info": {}}),
        json!({"service_id": "svc-tiny", "parameters": null, "context": {"platform": "kubernetes", "namespace": "apps"}}),
    ] {
        let r = b
            .call(Method::PATCH, &inst("i-1"), Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text);
        assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
    }
    // A plan change alone keeps the parameters too (plan-large's default
    // replicas of 3 does not replace the instance's 1).
    let r = b
        .call(
            Method::PATCH,
            &inst("i-1"),
            Some(json!({"service_id": "svc-tiny", "plan_id": "plan-large"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_instance(&b, "i-1", "plan-large", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn update_async_required_plan_without_accepts_incomplete_returns_422() {
    let b = TestBroker::start().await;
    let op = b.provision_async("i-1", "plan-async", json!({})).await;
    b.wait_instance("i-1", &op).await;
    let r = b
        .call(
            Method::PATCH,
            &inst("i-1"),
            Some(update_body(None, json!({"x": 1}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::UNPROCESSABLE_ENTITY, Some("AsyncRequired"));
    assert_instance(&b, "i-1", "plan-async", json!({})).await;
}

#[tokio::test]
async fn update_parameters_are_validated_against_the_update_schema() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    for (params, want) in [
        (
            json!({"replicas": -1}),
            "parameters.replicas: must be at least 0 (got -1)",
        ),
        (
            json!({"message": ["not", "a", "string"]}),
            "parameters.message: must be a string (got an array)",
        ),
        (
            json!({"bogus": 1}),
            r#"parameters: unknown property "bogus" (allowed: message, replicas)"#,
        ),
    ] {
        let r = b
            .call(
                Method::PATCH,
                &inst("i-1"),
                Some(update_body(None, params.clone())),
            )
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
        assert_eq!(r.json["description"], want, "{params}");
    }
    let r = b
        .call(
            Method::PATCH,
            &inst("i-1"),
            Some(update_body(None, json!([1]))),
        )
        .await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn update_failing_in_helm_returns_500_and_changes_nothing() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    // 7 passes plan-small's update schema (no maximum; the create schema's is
    // 5), so validation lets it through, and the chart's values.schema.json
    // (maximum 5) rejects it in helm.
    let r = b
        .call(
            Method::PATCH,
            &inst("i-1"),
            Some(update_body(None, json!({"replicas": 7}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    assert!(
        r.json["description"].as_str().unwrap().contains("replicas"),
        "{}",
        r.text
    );
    // A failed update may carry these; this one left the instance usable.
    assert_eq!(r.json["instance_usable"], true, "{}", r.text);
    assert_eq!(r.json["update_repeatable"], true, "{}", r.text);
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
    let r = b.call(Method::GET, &last_op("i-1", None), None).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    assert_eq!(r.json["instance_usable"], true, "{}", r.text);
}

#[tokio::test]
async fn update_maintenance_info_mismatch_returns_422_and_changes_nothing() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let mut body = update_body(None, json!({"message": "new"}));
    body["maintenance_info"] = json!({"version": "0.1.0"});
    let r = b.call(Method::PATCH, &inst("i-1"), Some(body)).await;
    assert_osb_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("MaintenanceInfoConflict"),
    );
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn update_unknown_plan_or_missing_service_id_returns_400_and_changes_nothing() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let r = b
        .call(
            Method::PATCH,
            &inst("i-1"),
            Some(update_body(Some("plan-nope"), json!({}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    for missing in [None, Some(json!(""))] {
        let mut body = update_body(None, json!({"message": "new"}));
        match missing {
            None => {
                body.as_object_mut().unwrap().remove("service_id");
            }
            Some(v) => body["service_id"] = v,
        }
        let r = b.call(Method::PATCH, &inst("i-1"), Some(body)).await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    }
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn update_while_another_operation_runs_returns_422_concurrency_error() {
    let (b, gate) = TestBroker::start_gated().await;
    gate.open();
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    gate.close();
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-1"),
            Some(update_body(None, json!({"message": "first"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_string();
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-1"),
            Some(update_body(None, json!({"message": "second"}))),
        )
        .await;
    assert_osb_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("ConcurrencyError"),
    );
    let r = b
        .call(
            Method::DELETE,
            &deprovision_uri("i-1", "plan-small", true),
            None,
        )
        .await;
    assert_osb_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("ConcurrencyError"),
    );
    gate.open();
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    assert_instance(&b, "i-1", "plan-small", json!({"message": "first"})).await;
}

#[tokio::test]
async fn update_repeated_while_in_progress_returns_202_with_same_operation() {
    let (b, gate) = TestBroker::start_gated().await;
    gate.open();
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    gate.close();
    let body = update_body(Some("plan-large"), json!({"message": "big"}));
    let r = b
        .call(Method::PATCH, &inst_async("i-1"), Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_string();
    let r = b.call(Method::PATCH, &inst_async("i-1"), Some(body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.json["operation"], op.as_str(), "{}", r.text);
    let r = b.call(Method::GET, &last_op("i-1", Some(&op)), None).await;
    assert_eq!(r.json["state"], "in progress", "{}", r.text);
    gate.open();
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(r.json["plan_id"], "plan-large", "{}", r.text);
}

#[tokio::test]
async fn update_unknown_instance_returns_404() {
    let b = TestBroker::start().await;
    let r = b
        .call(
            Method::PATCH,
            &inst("i-nope"),
            Some(update_body(None, json!({"message": "x"}))),
        )
        .await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    assert_nothing_created(&b, "i-nope").await;
}

#[tokio::test]
async fn update_does_not_rotate_generated_secrets() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let before = b.bind_sync("i-1", "b-1", "plan-small", json!({})).await;
    let password = before["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 24);
    let secret_in_manifest =
        |b: &TestBroker| of_kind(&manifests(b, "i-1"), "Secret")["stringData"]["password"].clone();
    assert_eq!(secret_in_manifest(&b), password.as_str());

    let r = b
        .call(
            Method::PATCH,
            &inst("i-1"),
            Some(update_body(None, json!({"message": "changed"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The release was rendered again ...
    assert_eq!(
        of_kind(&manifests(&b, "i-1"), "ConfigMap")["data"]["message"],
        "changed"
    );
    // ... with the same password, which new bindings hand out too.
    assert_eq!(secret_in_manifest(&b), password.as_str());
    let after = b.bind_sync("i-1", "b-2", "plan-small", json!({})).await;
    assert_eq!(after["password"], password.as_str());
}

// === deprovision ===

#[tokio::test]
async fn deprovision_unknown_instance_returns_410() {
    let b = TestBroker::start().await;
    for accepts in [false, true] {
        let r = b
            .call(
                Method::DELETE,
                &deprovision_uri("i-nope", "plan-small", accepts),
                None,
            )
            .await;
        assert_osb_error(&r, StatusCode::GONE, None);
    }
}

#[tokio::test]
async fn deprovision_without_service_id_or_plan_id_returns_400() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({})).await;
    for query in [
        "",
        "?plan_id=plan-small",
        "?service_id=svc-tiny",
        "?service_id=&plan_id=plan-small",
        "?service_id=svc-tiny&plan_id=",
    ] {
        let r = b
            .call(Method::DELETE, &format!("{}{query}", inst("i-1")), None)
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    }
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(b.release_dir("i-1").join("manifests.yaml").is_file());
}

#[tokio::test]
async fn deprovision_sync_returns_200_with_empty_object() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({})).await;
    let r = b
        .call(
            Method::DELETE,
            &deprovision_uri("i-1", "plan-small", false),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({}));
    assert!(!b.release_dir("i-1").exists());
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = b
        .call(
            Method::DELETE,
            &deprovision_uri("i-1", "plan-small", false),
            None,
        )
        .await;
    assert_osb_error(&r, StatusCode::GONE, None);
}

#[tokio::test]
async fn deprovision_async_returns_202_then_last_operation_succeeded() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({})).await;
    let r = b
        .call(
            Method::DELETE,
            &deprovision_uri("i-1", "plan-small", true),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_string();
    let r = b.wait_instance("i-1", &op).await;
    assert_delete_done(&r);
    // Asked again, the same; and without the operation too, while the
    // tombstone lives.
    let r = b.call(Method::GET, &last_op("i-1", Some(&op)), None).await;
    assert_delete_done(&r);
    let r = b.call(Method::GET, &last_op("i-1", None), None).await;
    assert_delete_done(&r);
    // A delete the broker has forgotten (or never knew) is gone; anything
    // else about an unknown instance is 404.
    let r = b
        .call(Method::GET, &last_op("i-never", Some(&op)), None)
        .await;
    assert_osb_error(&r, StatusCode::GONE, None);
    let r = b.call(Method::GET, &last_op("i-never", None), None).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    assert!(!b.release_dir("i-1").exists());
}

#[tokio::test]
async fn deprovision_while_provisioning_returns_422_concurrency_error() {
    let (b, gate) = TestBroker::start_gated().await;
    let op = b.provision_async("i-1", "plan-small", json!({})).await;
    for accepts in [true, false] {
        let r = b
            .call(
                Method::DELETE,
                &deprovision_uri("i-1", "plan-small", accepts),
                None,
            )
            .await;
        assert_osb_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("ConcurrencyError"),
        );
    }
    gate.open();
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the refused delete removed the instance: {}",
        r.text
    );
}

// === last_operation ===

#[tokio::test]
async fn last_operation_for_never_existing_instance_returns_404() {
    let b = TestBroker::start().await;
    for op in [None, Some("provision-123")] {
        let r = b.call(Method::GET, &last_op("i-nope", op), None).await;
        assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    }
}

#[tokio::test]
async fn last_operation_with_an_operation_never_issued_answers_about_the_latest() {
    let (b, gate) = TestBroker::start_gated().await;
    gate.open();
    let first = b.provision_async("i-1", "plan-small", json!({})).await;
    b.wait_instance("i-1", &first).await;
    // The latest operation is still running; the older one succeeded.
    gate.close();
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-1"),
            Some(update_body(None, json!({"message": "x"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let latest = r.json["operation"].as_str().unwrap().to_string();
    // Platforms and suites send words of their own, or stale ids: the
    // latest operation answers, with the same headers as always.
    for foreign in ["no-such-op", "update", "provision-00000000", "%20"] {
        let r = b
            .call(Method::GET, &last_op("i-1", Some(foreign)), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{foreign}: {}", r.text);
        assert_eq!(r.json["state"], "in progress", "{foreign}: {}", r.text);
        assert_eq!(r.headers["retry-after"], "2", "{foreign}");
    }
    // An older operation of this instance keeps its own answer.
    let r = b
        .call(Method::GET, &last_op("i-1", Some(&first)), None)
        .await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    gate.open();
    let r = b.wait_instance("i-1", &latest).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

#[tokio::test]
async fn last_operation_keeps_states_after_success_and_failure() {
    let b = TestBroker::start().await;
    // Success, asked repeatedly, and still answered after a newer operation.
    let ok = b.provision_async("i-ok", "plan-small", json!({})).await;
    assert_eq!(
        b.wait_instance("i-ok", &ok).await.json["state"],
        "succeeded"
    );
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-ok"),
            Some(update_body(None, json!({"message": "x"}))),
        )
        .await;
    let upd = r.json["operation"].as_str().unwrap().to_string();
    assert_eq!(
        b.wait_instance("i-ok", &upd).await.json["state"],
        "succeeded"
    );
    for _ in 0..2 {
        let r = b.call(Method::GET, &last_op("i-ok", Some(&ok)), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    }
    // Failure, asked repeatedly, with the same description each time.
    let bad = b.provision_async("i-bad", "plan-broken", json!({})).await;
    let first = b.wait_instance("i-bad", &bad).await;
    assert_eq!(first.json["state"], "failed", "{}", first.text);
    for op in [Some(bad.as_str()), None] {
        let r = b.call(Method::GET, &last_op("i-bad", op), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json, first.json);
    }
}

#[tokio::test]
async fn last_operation_in_progress_carries_retry_after() {
    let (b, gate) = TestBroker::start_gated().await;
    let op = b.provision_async("i-1", "plan-small", json!({})).await;
    let r = b.call(Method::GET, &last_op("i-1", Some(&op)), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "in progress", "{}", r.text);
    let retry = r
        .headers
        .get(header::RETRY_AFTER)
        .expect("Retry-After while in progress")
        .to_str()
        .unwrap();
    // The spec recommends a duration (delay-seconds) over a date.
    let secs: u64 = retry.parse().unwrap_or_else(|_| panic!("{retry:?}"));
    assert!(secs > 0);
    gate.open();
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

// === fetch ===

#[tokio::test]
async fn fetch_instance_while_provisioning_returns_404() {
    let (b, gate) = TestBroker::start_gated().await;
    let op = b
        .provision_async("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    gate.open();
    b.wait_instance("i-1", &op).await;
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn fetch_instance_returns_service_plan_parameters_and_maintenance_info() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi", "replicas": 2}))
        .await;
    let r = b
        .call(
            Method::GET,
            &format!("{}?service_id=svc-tiny&plan_id=plan-small", inst("i-1")),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["service_id"], "svc-tiny");
    assert_eq!(r.json["plan_id"], "plan-small");
    assert_eq!(
        r.json["parameters"],
        json!({"message": "hi", "replicas": 2})
    );
    assert_eq!(r.json["maintenance_info"], json!({"version": "1.0.0"}));
    assert!(!r.text.contains("password"), "{}", r.text);
}

#[tokio::test]
async fn fetch_instance_while_updating_returns_422_concurrency_error() {
    let (b, gate) = TestBroker::start_gated().await;
    gate.open();
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    gate.close();
    let r = b
        .call(
            Method::PATCH,
            &inst_async("i-1"),
            Some(update_body(None, json!({"message": "new"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_string();
    let r = b.call(Method::GET, &inst("i-1"), None).await;
    assert_osb_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("ConcurrencyError"),
    );
    gate.open();
    b.wait_instance("i-1", &op).await;
    assert_instance(&b, "i-1", "plan-small", json!({"message": "new"})).await;
}

// === hostile parameters ===

/// Provisions `message` for real and checks the rendered manifests carry it
/// as one literal string under `data.message`, with nothing added, and that
/// the Secret holds the generated password.
async fn assert_rendered_literally(message: &str) {
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

#[tokio::test]
async fn hostile_yaml_in_parameters_stays_a_literal_string() {
    for message in [
        "x\nreplicas: 5",
        "{a: 1}",
        "[1, 2]",
        "x\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: evil}",
        "&anchor *alias !!binary # comment",
    ] {
        assert_rendered_literally(message).await;
    }
}

#[tokio::test]
async fn handlebars_in_parameters_is_not_evaluated() {
    for message in [
        "{{secrets.password}}",
        "{{{secrets.password}}}",
        "{{#each secrets}}{{this}}{{/each}}",
        "{{ .Values.password }}",
    ] {
        assert_rendered_literally(message).await;
    }
}

#[tokio::test]
async fn newlines_and_quotes_in_parameters_survive_verbatim() {
    for message in [
        "line1\nline2\r\nline3\ttab",
        "double \" quote and 'single' and \\ backslash",
        "\"}\nmessage: injected\n\"",
        "ünïcödé ✓ <b>&amp;</b>",
    ] {
        assert_rendered_literally(message).await;
    }
}

#[tokio::test]
async fn parameters_cannot_override_generated_secrets() {
    // plan-large allows extra parameters; a `password` among them must not
    // reach the chart's password value.
    let b = TestBroker::start().await;
    b.provision_sync(
        "i-1",
        "plan-large",
        json!({"message": "m", "password": "attacker-chosen"}),
    )
    .await;
    let creds = b.bind_sync("i-1", "b-1", "plan-large", json!({})).await;
    let password = creds["password"].as_str().unwrap();
    assert_ne!(password, "attacker-chosen");
    let docs = manifests(&b, "i-1");
    assert_eq!(
        of_kind(&docs, "Secret")["stringData"],
        json!({"password": password})
    );
    assert!(
        !std::fs::read_to_string(b.release_dir("i-1").join("manifests.yaml"))
            .unwrap()
            .contains("attacker-chosen")
    );
}
