use super::*;

// === provision ===

#[tokio::test]
async fn provision_sync_returns_201() {
    let b = TestBroker::start().await;
    let r = b.put_created(&inst("i-1"), hi_body()).await;
    assert!(r.json.is_object(), "{}", r.text);
    assert!(r.json.get("operation").is_none(), "{}", r.text);
    assert!(b.release_dir("i-1").join("manifests.yaml").is_file());
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn provision_async_returns_202_with_operation_then_succeeds() {
    let b = TestBroker::start().await;
    let r = b.put(&inst_async("i-1"), hi_body()).await;
    let op = accepted_op(&r);
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
    b.wait_succeeded("i-1", &op).await;
}

#[tokio::test]
async fn provision_repeated_while_in_progress_returns_202_with_same_operation() {
    let (b, gate, op) = provisioning_broker(json!({"message": "hi"})).await;
    let body = hi_body();
    for _ in 0..2 {
        let r = b.put(&inst_async("i-1"), body.clone()).await;
        assert_same_operation(&r, &op);
    }
    // The repeats really were answered while the operation ran.
    let r = b.get(&last_op("i-1", Some(&op))).await;
    assert_eq!(r.json["state"], "in progress", "{}", r.text);
    gate.open();
    b.wait_succeeded("i-1", &op).await;
}

#[tokio::test]
async fn provision_conflicting_attributes_while_in_progress_returns_409() {
    let (b, gate, op) = provisioning_broker(json!({"message": "hi"})).await;
    let r = b
        .put(
            &inst_async("i-1"),
            provision_body("plan-small", json!({"message": "other"})),
        )
        .await;
    assert_osb_error(&r, StatusCode::CONFLICT, None);
    finish_as(&b, &gate, &op, json!({"message": "hi"})).await;
}

#[tokio::test]
async fn provision_identical_after_completion_returns_200() {
    let b = broker_with_instance().await;
    // Key order and unknown fields do not make a request different.
    let r = b
        .put(
            &inst("i-1"),
            json!({
                "parameters": {"message": "hi"},
                "space_guid": "space",
                "organization_guid": "org",
                "plan_id": "plan-small",
                "service_id": "svc-tiny",
                "context": {"namespace": "apps", "platform": "kubernetes"},
                "x-vendor-extension": {"ignored": true},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json.is_object(), "{}", r.text);
    assert!(r.json.get("operation").is_none(), "{}", r.text);
}

#[tokio::test]
async fn provision_same_id_with_different_attributes_returns_409() {
    let b = broker_with_instance().await;
    let before = std::fs::read_to_string(b.release_dir("i-1").join("manifests.yaml")).unwrap();
    for body in [
        provision_body("plan-small", json!({"message": "other"})),
        provision_body("plan-large", json!({"message": "hi"})),
        {
            let mut v = hi_body();
            v["context"]["namespace"] = json!("elsewhere");
            v
        },
    ] {
        let r = b.put(&inst("i-1"), body).await;
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
        let r = b.put(&inst("i-1"), body).await;
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
            let r = provision_field(&b, field, missing.clone()).await;
            assert_400_naming(&r, field, &format!("{field} {missing:?}"));
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
        let r = provision_with(&b, params.clone()).await;
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

/// `parameters` or `context` that is not a JSON object: 400 naming the
/// field, nothing created. Each case on a broker of its own, as the two
/// tests it replaces were (their names are the case labels).
#[tokio::test]
async fn provision_parameters_or_context_not_an_object_return_400() {
    for (case, field, values) in [
        (
            "provision_parameters_not_an_object_return_400",
            "parameters",
            vec![json!([1, 2]), json!("message=hi"), json!(5), json!(true)],
        ),
        (
            "provision_context_not_an_object_returns_400",
            "context",
            vec![
                json!("kubernetes"),
                json!([{"platform": "kubernetes"}]),
                json!(1),
            ],
        ),
    ] {
        eprintln!("case: {case}");
        let b = TestBroker::start().await;
        for value in values {
            let r = provision_field(&b, field, Some(value.clone())).await;
            assert_400_naming(&r, field, &format!("{case}: {value}"));
        }
        assert_nothing_created(&b, "i-1").await;
    }
}

#[tokio::test]
async fn provision_async_required_plan_without_accepts_incomplete_returns_422() {
    let b = TestBroker::start().await;
    for uri in [
        inst("i-1"),
        format!("{}?accepts_incomplete=false", inst("i-1")),
    ] {
        let r = b.put(&uri, provision_body("plan-async", json!({}))).await;
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
        let r = b.put(&inst("i-1"), body).await;
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
    b.put_created(&inst("i-1"), body).await;
    let mut body = provision_body("plan-small", json!({}));
    body["maintenance_info"] = json!({"version": "1.0.0", "description": "ignored"});
    b.put_created(&inst("i-2"), body).await;
}

#[tokio::test]
async fn provision_helm_failure_async_reports_failed_with_helms_message() {
    let b = TestBroker::start().await;
    let op = b.provision_async("i-1", "plan-broken", json!({})).await;
    let r = b.wait_instance("i-1", &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    assert_helm_refused_provision(&b, &r).await;
}

#[tokio::test]
async fn provision_helm_failure_sync_returns_500_with_helms_message() {
    let b = TestBroker::start().await;
    let r = b
        .put(&inst("i-1"), provision_body("plan-broken", json!({})))
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    assert_helm_refused_provision(&b, &r).await;
}

// === update ===

#[tokio::test]
async fn update_plan_change_is_applied() {
    let b = broker_with_instance().await;
    let bigger = json!({"message": "bigger"});
    let r = update(&b, &inst("i-1"), Some("plan-large"), bigger).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({}));
    let r = b.get(&inst("i-1")).await;
    assert_eq!(r.json["plan_id"], "plan-large", "{}", r.text);
    assert_eq!(r.json["parameters"]["message"], "bigger", "{}", r.text);
    assert_eq!(r.json["maintenance_info"], json!({"version": "2.0.0"}));
    let docs = manifests(&b, "i-1");
    assert_eq!(of_kind(&docs, "ConfigMap")["data"]["message"], "bigger");
}

#[tokio::test]
async fn update_async_returns_202_then_succeeds() {
    let b = broker_with_instance().await;
    let op = update_async(&b, "i-1", update_body(None, json!({"replicas": 2}))).await;
    b.wait_succeeded("i-1", &op).await;
    assert_instance(
        &b,
        "i-1",
        "plan-small",
        json!({"message": "hi", "replicas": 2}),
    )
    .await;
}

#[tokio::test]
async fn update_parameters_of_non_updateable_plan_are_allowed() {
    // spec: without plan_updateable, platforms "MAY request an update to the
    // Service Instance parameters".
    let b = TestBroker::start().await;
    let op = b.provision_async("i-1", "plan-async", json!({})).await;
    b.wait_instance("i-1", &op).await;
    let op = update_async(
        &b,
        "i-1",
        update_body(Some("plan-async"), json!({"tier": "gold"})),
    )
    .await;
    assert_eq!(b.wait_instance("i-1", &op).await.json["state"], "succeeded");
    assert_instance(&b, "i-1", "plan-async", json!({"tier": "gold"})).await;
}
