use super::*;

#[tokio::test]
async fn last_operation_keeps_states_after_success_and_failure() {
    let b = TestBroker::start().await;
    // Success, asked repeatedly, and still answered after a newer operation.
    let ok = b.provision_async("i-ok", "plan-small", json!({})).await;
    assert_eq!(
        b.wait_instance("i-ok", &ok).await.json["state"],
        "succeeded"
    );
    let r = update(&b, &inst_async("i-ok"), None, json!({"message": "x"})).await;
    let upd = r.json["operation"].as_str().unwrap().to_string();
    assert_eq!(
        b.wait_instance("i-ok", &upd).await.json["state"],
        "succeeded"
    );
    for _ in 0..2 {
        let r = b.get(&last_op("i-ok", Some(&ok))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    }
    // Failure, asked repeatedly, with the same description each time.
    let bad = b.provision_async("i-bad", "plan-broken", json!({})).await;
    let first = b.wait_instance("i-bad", &bad).await;
    assert_eq!(first.json["state"], "failed", "{}", first.text);
    for op in [Some(bad.as_str()), None] {
        let r = b.get(&last_op("i-bad", op)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json, first.json);
    }
}

#[tokio::test]
async fn last_operation_in_progress_carries_retry_after() {
    let (b, gate, op) = provisioning_broker(json!({})).await;
    let r = b.get(&last_op("i-1", Some(&op))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "in progress", "{}", r.text);
    let retry = r
        .header("retry-after")
        .expect("Retry-After while in progress");
    // The spec recommends a duration (delay-seconds) over a date.
    let secs: u64 = retry.parse().unwrap_or_else(|_| panic!("{retry:?}"));
    assert!(secs > 0);
    gate.open();
    b.wait_succeeded("i-1", &op).await;
}

// === fetch ===

#[tokio::test]
async fn fetch_instance_while_provisioning_returns_404() {
    let (b, gate, op) = provisioning_broker(json!({"message": "hi"})).await;
    let r = b.get(&inst("i-1")).await;
    assert_osb_error(&r, StatusCode::NOT_FOUND, None);
    gate.open();
    b.wait_instance("i-1", &op).await;
    let r = b.get(&inst("i-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn fetch_instance_returns_service_plan_parameters_and_maintenance_info() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi", "replicas": 2}))
        .await;
    let r = b
        .get(&format!(
            "{}?service_id=svc-tiny&plan_id=plan-small",
            inst("i-1")
        ))
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
    let (b, gate) = gated_broker_with_instance().await;
    let op = update_async(&b, "i-1", update_body(None, json!({"message": "new"}))).await;
    let r = b.get(&inst("i-1")).await;
    assert_concurrency_error(&r);
    finish_as(&b, &gate, &op, json!({"message": "new"})).await;
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
