//! Crash safety with the real binary: kill -9 right after a 202, start again
//! on the same data directory, and the operation settles.

use crate::common;

use std::time::Duration;

use crate::helpers::restart::*;
use axum::http::StatusCode;
use common::process::{osb_get, osb_put, poll_last_operation};
use common::{TestBroker, config, helm_bin, write_helm_wrapper};
use serde_json::json;

#[tokio::test]
async fn kill_9_after_202_then_restart_settles_the_operation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    // A helm that takes a while to render, so the kill lands mid-operation.
    let slow = data.path().join("slow-helm");
    write_helm_wrapper(&slow, "case \"$1\" in template) sleep 5;; esac\n");
    let state = data.path().join("state");
    let mut first = start(&state, &slow).await;
    let put = format!(
        "{}/v2/service_instances/crash-1?accepts_incomplete=true",
        first.url
    );
    let body = json!({"service_id": "svc-tiny", "plan_id": "plan-small",
        "context": {"platform": "kubernetes", "namespace": "apps"},
        "parameters": {"message": "survives"}});
    let (status, body) = osb_put(&put, body).await;
    assert_eq!(status, 202, "{body}");
    let operation = body["operation"].as_str().unwrap().to_string();
    first.kill_9(); // no chance to clean up

    let second = start(&state, &helm_bin()).await;
    let url = format!(
        "{}/v2/service_instances/crash-1/last_operation?operation={operation}",
        second.url
    );
    let last = poll_last_operation(&url, 200, Duration::from_millis(100)).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    let manifests =
        std::fs::read_to_string(state.join("render/apps/cb-crash-1/manifests.yaml")).unwrap();
    assert!(manifests.contains("survives"));
    let (status, body) = osb_get(&format!("{}/v2/service_instances/crash-1", second.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["parameters"]["message"], "survives");
}

/// `/readyz` says "starting" until recovery has settled what a previous
/// process left (the binary listens first, so liveness probes pass while a
/// large store is settled), and "ready" after.
#[tokio::test]
async fn readyz_is_starting_until_recovery_finished() {
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path());
    let runtime = chartbroker::runtime::Runtime::init(
        &cfg,
        std::sync::Arc::new(chartbroker::dbusers::Servers),
    )
    .await
    .expect("broker initializes");
    let b = TestBroker {
        app: runtime.app(),
        runtime,
        data,
    };
    let r = b.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.json["status"], "starting", "{}", r.text);
    let r = b.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    b.runtime.recover().await.expect("recovery");
    let r = b.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "ready", "{}", r.text);
}
