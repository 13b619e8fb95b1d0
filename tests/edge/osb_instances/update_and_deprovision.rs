use super::*;

#[tokio::test]
async fn update_without_plan_id_or_parameters_changes_neither() {
    // spec: no `parameters` -> "MUST NOT change the parameters"; no
    // `plan_id` -> "MUST NOT change the Service Plan". Conformance suites
    // send absent fields as "" and `maintenance_info: {}`.
    let b = broker_with_instance().await;
    for body in [
        json!({"service_id": "svc-tiny"}),
        json!({"service_id": "svc-tiny", "plan_id": "", "maintenance_info": {}}),
        json!({"service_id": "svc-tiny", "parameters": null, "context": {"platform": "kubernetes", "namespace": "apps"}}),
    ] {
        let r = b.patch(&inst("i-1"), body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text);
        assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
    }
    // A plan change alone keeps the parameters too (plan-large's default
    // replicas of 3 does not replace the instance's 1).
    let r = b
        .patch(
            &inst("i-1"),
            json!({"service_id": "svc-tiny", "plan_id": "plan-large"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_instance(&b, "i-1", "plan-large", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn update_refused_with_422_changes_nothing() {
    // Each case on a broker of its own, as the tests it replaces were.
    for c in UPDATE_REFUSALS {
        eprintln!("case: {}", c.name);
        let (b, provisioned) = instance_of(c.plan).await;
        let r = b.patch(&c.uri(), c.body()).await;
        assert_osb_error(&r, StatusCode::UNPROCESSABLE_ENTITY, Some(c.error));
        assert_instance(&b, "i-1", c.plan, provisioned).await;
    }
}

#[tokio::test]
async fn update_parameters_are_validated_against_the_update_schema() {
    let b = broker_with_instance().await;
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
            .patch(&inst("i-1"), update_body(None, params.clone()))
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
        assert_eq!(r.json["description"], want, "{params}");
    }
    let r = b.patch(&inst("i-1"), update_body(None, json!([1]))).await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn update_failing_in_helm_returns_500_and_changes_nothing() {
    let b = broker_with_instance().await;
    // 7 passes plan-small's update schema (no maximum; the create schema's is
    // 5), so validation lets it through, and the chart's values.schema.json
    // (maximum 5) rejects it in helm.
    let r = b
        .patch(&inst("i-1"), update_body(None, json!({"replicas": 7})))
        .await;
    assert_osb_error_naming(&r, StatusCode::INTERNAL_SERVER_ERROR, &["replicas"], "");
    // A failed update may carry these; this one left the instance usable.
    assert_eq!(r.json["instance_usable"], true, "{}", r.text);
    assert_eq!(r.json["update_repeatable"], true, "{}", r.text);
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
    let r = b.get(&last_op("i-1", None)).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    assert_eq!(r.json["instance_usable"], true, "{}", r.text);
}

#[tokio::test]
async fn update_unknown_plan_or_missing_service_id_returns_400_and_changes_nothing() {
    let b = broker_with_instance().await;
    let r = b
        .patch(&inst("i-1"), update_body(Some("plan-nope"), json!({})))
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
        let r = b.patch(&inst("i-1"), body).await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    }
    assert_instance(&b, "i-1", "plan-small", json!({"message": "hi"})).await;
}

#[tokio::test]
async fn update_while_another_operation_runs_returns_422_concurrency_error() {
    let (b, gate) = gated_broker_with_instance().await;
    let op = update_async(&b, "i-1", update_body(None, json!({"message": "first"}))).await;
    let r = update(&b, &inst_async("i-1"), None, json!({"message": "second"})).await;
    assert_concurrency_error(&r);
    let r = b.del(&deprovision_uri("i-1", "plan-small", true)).await;
    assert_concurrency_error(&r);
    finish_as(&b, &gate, &op, json!({"message": "first"})).await;
}

#[tokio::test]
async fn update_repeated_while_in_progress_returns_202_with_same_operation() {
    let (b, gate) = gated_broker_with_instance().await;
    let body = update_body(Some("plan-large"), json!({"message": "big"}));
    let r = b.patch(&inst_async("i-1"), body.clone()).await;
    let op = accepted_op(&r);
    let r = b.patch(&inst_async("i-1"), body).await;
    assert_same_operation(&r, &op);
    let r = b.get(&last_op("i-1", Some(&op))).await;
    assert_eq!(r.json["state"], "in progress", "{}", r.text);
    gate.open();
    b.wait_succeeded("i-1", &op).await;
    let r = b.get(&inst("i-1")).await;
    assert_eq!(r.json["plan_id"], "plan-large", "{}", r.text);
}

#[tokio::test]
async fn update_unknown_instance_returns_404() {
    let b = TestBroker::start().await;
    let r = b
        .patch(&inst("i-nope"), update_body(None, json!({"message": "x"})))
        .await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    assert_nothing_created(&b, "i-nope").await;
}

#[tokio::test]
async fn update_does_not_rotate_generated_secrets() {
    let b = broker_with_instance().await;
    let before = b.bind_sync("i-1", "b-1", "plan-small", json!({})).await;
    let password = before["password"].as_str().unwrap().to_string();
    assert_eq!(password.len(), 24);
    let secret_in_manifest =
        |b: &TestBroker| of_kind(&manifests(b, "i-1"), "Secret")["stringData"]["password"].clone();
    assert_eq!(secret_in_manifest(&b), password.as_str());

    let r = update(&b, &inst("i-1"), None, json!({"message": "changed"})).await;
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
            .del(&deprovision_uri("i-nope", "plan-small", accepts))
            .await;
        assert_osb_error(&r, StatusCode::GONE, None);
    }
}

#[tokio::test]
async fn deprovision_without_service_id_or_plan_id_returns_400() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({})).await;
    assert_delete_needs_ids(&b, &inst("i-1")).await;
    let r = b.get(&inst("i-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(b.release_dir("i-1").join("manifests.yaml").is_file());
}

#[tokio::test]
async fn deprovision_sync_returns_200_with_empty_object() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({})).await;
    let r = b.del(&deprovision_uri("i-1", "plan-small", false)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({}));
    assert!(!b.release_dir("i-1").exists());
    let r = b.get(&inst("i-1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = b.del(&deprovision_uri("i-1", "plan-small", false)).await;
    assert_osb_error(&r, StatusCode::GONE, None);
}

#[tokio::test]
async fn deprovision_async_returns_202_then_last_operation_succeeded() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({})).await;
    let r = b.del(&deprovision_uri("i-1", "plan-small", true)).await;
    let op = accepted_op(&r);
    let r = b.wait_instance("i-1", &op).await;
    assert_delete_done(&r);
    // Asked again, the same; and without the operation too, while the
    // tombstone lives.
    let r = b.get(&last_op("i-1", Some(&op))).await;
    assert_delete_done(&r);
    let r = b.get(&last_op("i-1", None)).await;
    assert_delete_done(&r);
    // A delete the broker has forgotten (or never knew) is gone; anything
    // else about an unknown instance is 404.
    let r = b.get(&last_op("i-never", Some(&op))).await;
    assert_osb_error(&r, StatusCode::GONE, None);
    let r = b.get(&last_op("i-never", None)).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    assert!(!b.release_dir("i-1").exists());
}

#[tokio::test]
async fn deprovision_while_provisioning_returns_422_concurrency_error() {
    let (b, gate, op) = provisioning_broker(json!({})).await;
    for accepts in [true, false] {
        let r = b.del(&deprovision_uri("i-1", "plan-small", accepts)).await;
        assert_concurrency_error(&r);
    }
    gate.open();
    b.wait_succeeded("i-1", &op).await;
    let r = b.get(&inst("i-1")).await;
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
        let r = b.get(&last_op("i-nope", op)).await;
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
    let latest = update_async(&b, "i-1", update_body(None, json!({"message": "x"}))).await;
    // Platforms and suites send words of their own, or stale ids: the
    // latest operation answers, with the same headers as always.
    for foreign in ["no-such-op", "update", "provision-00000000", "%20"] {
        let r = b.get(&last_op("i-1", Some(foreign))).await;
        assert_eq!(r.status, StatusCode::OK, "{foreign}: {}", r.text);
        assert_eq!(r.json["state"], "in progress", "{foreign}: {}", r.text);
        assert_eq!(r.headers["retry-after"], "2", "{foreign}");
    }
    // An older operation of this instance keeps its own answer.
    let r = b.get(&last_op("i-1", Some(&first))).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    gate.open();
    b.wait_succeeded("i-1", &latest).await;
}
