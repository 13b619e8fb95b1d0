//! End-to-end happy path through the HTTP API with the render engine.

use crate::common;

use crate::helpers::smoke::*;
use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn provision_bind_unbind_deprovision_sync() {
    let b = TestBroker::start().await;
    b.provision_sync("i-1", "plan-small", json!({"message": "hi"}))
        .await;
    let manifests = b.data.path().join("render/apps/cb-i-1/manifests.yaml");
    let text = std::fs::read_to_string(&manifests).unwrap();
    assert!(text.contains(r#""message":"hi""#), "{text}");

    let creds = b
        .bind_sync("i-1", "b-1", "plan-small", json!({"role": "reader"}))
        .await;
    assert_eq!(creds["host"], "cb-i-1.apps.svc.cluster.local");
    assert_eq!(creds["role"], "reader");
    let secret = b
        .data
        .path()
        .join("render/apps/cb-i-1/bindings/cb-bind-b-1.yaml");
    assert!(secret.is_file());

    let r = b
        .del(
            "/v2/service_instances/i-1/service_bindings/b-1?service_id=svc-tiny&plan_id=plan-small",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({}));
    assert!(!secret.exists());

    let r = b
        .del("/v2/service_instances/i-1?service_id=svc-tiny&plan_id=plan-small")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!manifests.exists());
}

/// `serve` with no helm anywhere it looks says how to get one and exits
/// non-zero, instead of starting a broker whose every chart operation fails.
#[test]
fn serve_without_helm_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let stderr = serve_refused(dir.path(), &empty, &[]);
    assert!(
        stderr.contains(
            "helm not found on PATH nor at .tools/bin/helm: run scripts/install-tools.sh --runtime, \
             or pass --helm /path/to/helm (helm 3.18+ or 4)"
        ),
        "{stderr}"
    );
    // Nothing was started: no data directory, no store.
    assert!(!dir.path().join("data").exists());

    let stderr = serve_refused(dir.path(), &empty, &["--helm", "/nonexistent/helm"]);
    assert!(
        stderr.contains("--helm /nonexistent/helm: no such file"),
        "{stderr}"
    );
}
