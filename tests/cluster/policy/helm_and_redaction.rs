use super::*;

/// Whatever encoding a chart wraps a generated secret in, helm's error
/// reaches the platform (sync error body, async `last_operation`) with
/// the secret redacted.
#[tokio::test]
async fn generated_secrets_are_redacted_in_every_encoding() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let charts = tempfile::tempdir().unwrap();
    let catalog = tempfile::tempdir().unwrap();
    encoding_chart(charts.path(), catalog.path());
    let b = render_broker_on(catalog.path(), charts.path()).await;
    let mut provision = body("svc-enc", "enc");
    provision["parameters"] = json!({"message": "ok"});
    let r = b.put("/v2/service_instances/enc-1", provision).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let platform = b.by(None);
    let bind = json!({"service_id": "svc-enc", "plan_id": "enc"});
    let r = platform.bound("enc-1", "b1", bind).await;
    let password = String::from(r.json["credentials"]["password"].as_str().unwrap());
    let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
    let leaks = [
        password.clone(),
        STANDARD.encode(&password),
        STANDARD.encode(&password).trim_end_matches('=').to_owned(),
        URL_SAFE_NO_PAD.encode(&password),
        // The part of `b64enc "user:<password>"` that only the password decides.
        STANDARD.encode(format!("user:{password}"))[8..36].to_owned(),
        hex.clone(),
        hex.to_ascii_uppercase(),
    ];

    let update = json!({"service_id": "svc-enc", "parameters": {"message": "fail"}});
    let r = b.patch("/v2/service_instances/enc-1", update.clone()).await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let sync = r.text.clone();
    let r = platform.update("enc-1", update).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    for text in [sync, r.text.clone()] {
        // The failure is there to read, only the secret is gone.
        assert!(text.contains("std=<redacted>"), "{text}");
        assert!(text.contains("hex=<redacted>"), "{text}");
        for leak in &leaks {
            assert!(!text.contains(leak.as_str()), "{leak} in {text}");
        }
    }
}

crate::helm4_and_3_tests!(
    hostile_charts_are_refused_by_helm4_on_a_real_api_server,
    hostile_charts_are_refused_by_helm3_on_a_real_api_server,
    hostile_charts_refused_by_helm
);

/// The benign half of the allow-list, end to end: a release using every
/// default kind, each aimed only at its own objects, passes the default
/// policy on the render engine.
#[tokio::test]
async fn a_well_behaved_release_passes_the_allow_list() {
    let catalog = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = benign_broker_config(data.path(), catalog.path());
    let b = TestBroker::with_config(data, cfg).await;
    let r = b
        .put("/v2/service_instances/fine", body("svc-benign", "full"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let written = std::fs::read_to_string(b.release_dir("fine").join("manifests.yaml")).unwrap();
    // Read as YAML (JSON included), whatever form the emitter writes.
    let docs: Vec<Value> = serde_saphyr::from_multiple(&written).unwrap();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "CronJob",
    ] {
        assert!(kinds.contains(&kind), "{kind} not written: {kinds:?}");
    }
}

crate::helm4_and_3_tests!(
    a_well_behaved_release_installs_with_helm4_on_a_real_api_server,
    a_well_behaved_release_installs_with_helm3_on_a_real_api_server,
    well_behaved_release_installs
);
