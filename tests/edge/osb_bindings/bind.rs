use super::*;

// === bind ===

#[tokio::test]
async fn bind_returns_201_with_credentials() {
    let b = broker_with_instance().await;
    let r = b.put_created(&binding("i-1", "b-1"), reader()).await;
    let c = &r.json["credentials"];
    assert_eq!(c["host"], "cb-i-1.apps.svc.cluster.local");
    assert_eq!(c["port"], 5432);
    assert_eq!(c["role"], "reader");
    assert_eq!(c["password"].as_str().unwrap().len(), 24);
    assert!(r.json.get("operation").is_none(), "{}", r.text);
}

#[tokio::test]
async fn bind_writes_secret_manifest_and_unbind_removes_it() {
    let b = broker_with_instance().await;
    let creds = bind_as(&b, "writer").await;
    let path = secret_file(&b, "i-1", "b-1");
    let secret = read_secret_manifest(&path);
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"]["name"], "cb-bind-b-1");
    assert_eq!(secret["metadata"]["namespace"], "apps");
    // The service's `binding: {type: tiny}`: a Service Binding for
    // Kubernetes Secret, provider defaulted.
    assert_eq!(secret["type"], "servicebinding.io/tiny");
    let mut want = credential_data(&creds, "writer");
    want["type"] = json!("tiny");
    want["provider"] = json!("chartbroker");
    assert_eq!(secret["stringData"], want);
    let r = b.del(&unbind_uri("i-1", "b-1", false)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!path.exists(), "unbind left {}", path.display());
}

/// A service without `binding:` keeps plain `Opaque` Secrets holding only
/// the credentials.
#[tokio::test]
async fn a_service_without_binding_type_gets_an_opaque_secret() {
    let data = tempfile::tempdir().unwrap();
    let catalog = data.path().join("catalog");
    std::fs::create_dir(&catalog).unwrap();
    let text = std::fs::read_to_string(fixtures().join("catalog/test.yaml")).unwrap();
    let without = text.replace("    binding: {type: tiny}\n", "");
    assert_ne!(text, without, "the fixture sets binding:");
    std::fs::write(catalog.join("test.yaml"), without).unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog;
    let b = TestBroker::with_config(data, cfg).await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let creds = bind_as(&b, "reader").await;
    let secret = read_secret_manifest(&secret_file(&b, "i-1", "b-1"));
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["stringData"], credential_data(&creds, "reader"));
}

#[tokio::test]
async fn deprovision_removes_bindings_left_behind() {
    let b = broker_with_instance().await;
    b.bind_sync("i-1", "b-1", "plan-small", json!({})).await;
    let path = secret_file(&b, "i-1", "b-1");
    assert!(path.is_file());
    let r = b
        .del("/v2/service_instances/i-1?service_id=svc-tiny&plan_id=plan-small")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!path.exists());
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn bind_identical_repeat_returns_200_with_same_credentials() {
    let b = broker_with_instance().await;
    let body = reader();
    let first = b.put(&binding("i-1", "b-1"), body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = b.put(&binding("i-1", "b-1"), body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["credentials"], first.json["credentials"]);
}

#[tokio::test]
async fn bind_accepts_empty_bind_resource_as_absent() {
    // Conformance suites send `bind_resource: {}`.
    let b = broker_with_instance().await;
    let mut body = bind_body("plan-small", json!({}));
    body["bind_resource"] = json!({});
    b.put_created(&binding("i-1", "b-1"), body.clone()).await;
    body.as_object_mut().unwrap().remove("bind_resource");
    let r = b.put(&binding("i-1", "b-1"), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn bind_same_id_with_different_attributes_returns_409() {
    let b = broker_with_instance().await;
    let creds = bind_as(&b, "reader").await;
    let other_app = {
        let mut v = reader();
        v["bind_resource"] = json!({"app_guid": "app-2"});
        v
    };
    for body in [
        bind_body("plan-small", json!({"role": "writer"})),
        other_app,
    ] {
        let r = b.put(&binding("i-1", "b-1"), body).await;
        assert_osb_error(&r, StatusCode::CONFLICT, None);
    }
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["credentials"], creds);
    assert_eq!(r.json["parameters"], json!({"role": "reader"}));
}

#[tokio::test]
async fn bind_refused_leaves_no_binding() {
    // Each case on a broker of its own, as the tests it replaces were.
    for c in BIND_REFUSALS {
        eprintln!("case: {}", c.name);
        let (r, b) = refused_bind(c).await;
        assert_osb_error(&r, c.status, None);
        assert_no_binding(&b, c.instance, c.binding).await;
    }
}

#[tokio::test]
async fn bind_parameters_violating_binding_schema_return_400() {
    let b = broker_with_instance().await;
    for (params, want) in [
        (
            json!({"role": "admin"}),
            "parameters.role: must be one of reader, writer",
        ),
        (
            json!({"role": 1}),
            "parameters.role: must be a string (got 1); parameters.role: must be one of reader, writer",
        ),
        (
            json!({"scope": "all"}),
            r#"parameters: unknown property "scope" (allowed: role)"#,
        ),
    ] {
        let r = b
            .put(
                &binding("i-1", "b-1"),
                bind_body("plan-small", params.clone()),
            )
            .await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, Some("BadRequest"));
        assert_eq!(r.json["description"], want, "{params}");
    }
    let r = b
        .put(
            &binding("i-1", "b-1"),
            bind_body("plan-small", json!("role=admin")),
        )
        .await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    assert_no_binding(&b, "i-1", "b-1").await;
}

#[tokio::test]
async fn bind_missing_service_id_or_plan_id_returns_400() {
    let b = broker_with_instance().await;
    for field in ["service_id", "plan_id"] {
        for missing in [None, Some(json!(""))] {
            let mut body = bind_body("plan-small", json!({}));
            match &missing {
                None => {
                    body.as_object_mut().unwrap().remove(field);
                }
                Some(v) => body[field] = v.clone(),
            }
            let r = b.put(&binding("i-1", "b-1"), body).await;
            assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
        }
    }
    assert_no_binding(&b, "i-1", "b-1").await;
}

#[tokio::test]
async fn bind_async_returns_202_without_credentials_then_get_returns_them() {
    let b = broker_with_instance().await;
    let r = b.put(&binding_async("i-1", "b-1"), reader()).await;
    let op = accepted_op(&r);
    // spec: credentials MUST NOT be returned in a 202.
    assert!(r.json.get("credentials").is_none(), "{}", r.text);
    let r = b.wait_binding("i-1", "b-1", &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["credentials"]["role"], "reader");
    assert_eq!(
        r.json["credentials"]["password"].as_str().unwrap().len(),
        24
    );
    assert_eq!(r.json["parameters"], json!({"role": "reader"}));
    assert!(secret_file(&b, "i-1", "b-1").is_file());
}

#[tokio::test]
async fn fetch_binding_while_binding_returns_404() {
    let b = broker_with_instance().await;
    let (hold, op) = held_bind(&b).await;

    let r = b.get(&binding("i-1", "b-1")).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    // It is 404 because the bind is still running.
    let r = b.get(&binding_last_op("i-1", "b-1", Some(&op))).await;
    assert_eq!(r.json["state"], "in progress", "{}", r.text);

    // The held write fails (a FIFO can't be fsynced): the bind fails and the
    // binding stays invisible.
    hold.release().await;
    let r = b.wait_binding("i-1", "b-1", &op).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);

    // The same bind may be tried again.
    let r = b.put(&binding_async("i-1", "b-1"), reader()).await;
    let op2 = accepted_op(&r);
    assert_ne!(op2, op);
    b.wait_binding_succeeded("i-1", "b-1", &op2).await;
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn bind_repeated_while_in_progress_returns_202_with_same_operation() {
    let b = broker_with_instance().await;
    let (hold, op) = held_bind(&b).await;
    let r = b.put(&binding_async("i-1", "b-1"), reader()).await;
    assert_same_operation(&r, &op);
    assert!(r.json.get("credentials").is_none(), "{}", r.text);
    // Binding last_operation in progress carries Retry-After too.
    let r = b.get(&binding_last_op("i-1", "b-1", Some(&op))).await;
    assert_eq!(r.json["state"], "in progress", "{}", r.text);
    let retry = r.headers.get(header::RETRY_AFTER).expect("Retry-After");
    assert!(retry.to_str().unwrap().parse::<u64>().unwrap() > 0);
    // Unbinding a binding being created is a concurrency error.
    let r = b.del(&unbind_uri("i-1", "b-1", true)).await;
    assert_concurrency_error(&r);
    hold.release().await;
    let r = b.wait_binding("i-1", "b-1", &op).await;
    assert_ne!(r.json["state"], "in progress", "{}", r.text);
}

#[tokio::test]
async fn bind_while_instance_is_provisioning_returns_422_concurrency_error() {
    let (b, gate, op) = provisioning_broker(json!({})).await;
    let r = b
        .put(
            &binding_async("i-1", "b-1"),
            bind_body("plan-small", json!({})),
        )
        .await;
    assert_concurrency_error(&r);
    gate.open();
    b.wait_instance("i-1", &op).await;
    assert_no_binding(&b, "i-1", "b-1").await;
}

// === rotation ===

#[tokio::test]
async fn binding_rotation_copies_the_predecessors_parameters() {
    let b = broker_with_instance().await;
    let old = bind_as(&b, "writer").await;
    let mut body = bind_body("plan-small", json!({}));
    body.as_object_mut().unwrap().remove("parameters");
    body["predecessor_binding_id"] = json!("b-1");
    let r = b.put_created(&binding("i-1", "b-2"), body).await;
    assert_eq!(r.json["credentials"]["role"], "writer", "{}", r.text);
    assert_eq!(r.json["credentials"]["host"], old["host"]);
    let r = b.get(&binding("i-1", "b-2")).await;
    assert_eq!(
        r.json["parameters"],
        json!({"role": "writer"}),
        "{}",
        r.text
    );
    // spec: both MUST be valid in parallel.
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["credentials"], old);
    assert!(secret_file(&b, "i-1", "b-1").is_file());
    assert!(secret_file(&b, "i-1", "b-2").is_file());
}

// === fetch / last_operation ===

#[tokio::test]
async fn fetch_unknown_binding_returns_404() {
    let b = broker_with_instance().await;
    let r = b.get(&binding("i-1", "b-nope")).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
}

#[tokio::test]
async fn binding_last_operation_unknown_binding_404_foreign_operation_answers_latest() {
    let b = broker_with_instance().await;
    let r = b.get(&binding_last_op("i-1", "b-nope", None)).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    b.bind_sync("i-1", "b-1", "plan-small", json!({})).await;
    for foreign in ["no-such-op", "bind", "unbind-1"] {
        let r = b.get(&binding_last_op("i-1", "b-1", Some(foreign))).await;
        assert_eq!(r.status, StatusCode::OK, "{foreign}: {}", r.text);
        assert_eq!(r.json["state"], "succeeded", "{foreign}: {}", r.text);
    }
}
