//! The helm engine end to end: OSB requests in, the real helm binary (4 and
//! 3) installing into an in-process fake Kubernetes API, binding Secrets
//! applied by kube-rs.

mod common;

use std::path::PathBuf;

use axum::http::{Method, StatusCode};
use common::*;
use fake_kube::{FakeKube, FakeKubeHandle};
use serde_json::{Value, json};

use chartbroker::runtime::Engine;

fn helm3_bin() -> PathBuf {
    let p = std::env::var_os("CHARTBROKER_HELM3")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/bin/helm3"));
    assert!(
        p.is_file(),
        "helm 3 not found at {} — run scripts/install-tools.sh",
        p.display()
    );
    p
}

async fn cluster() -> FakeKubeHandle {
    let k = FakeKube::start().await;
    k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    k
}

async fn broker(k: &FakeKubeHandle, helm: PathBuf) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.engine = Engine::Helm;
    // These requests carry no originating identity; authorization has its own suites.
    cfg.subject_access_review = false;
    cfg.helm = helm;
    cfg.kubeconfig = Some(k.kubeconfig(data.path()));
    TestBroker::with_config(data, cfg).await
}

fn release_secrets(k: &FakeKubeHandle, release: &str) -> Vec<Value> {
    k.list("secrets", Some("apps"))
        .into_iter()
        .filter(|s| {
            s["metadata"]["labels"]["owner"] == "helm" && s["metadata"]["labels"]["name"] == release
        })
        .collect()
}

async fn lifecycle(helm: PathBuf) {
    let k = cluster().await;
    let b = broker(&k, helm).await;

    // Synchronous requests are refused: helm installs take time.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/h-1",
            Some(provision_body("plan-small", json!({"message": "one"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json["error"], "AsyncRequired");

    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/h-1?accepts_incomplete=true",
            Some(provision_body("plan-small", json!({"message": "one"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_string();
    let done = b.wait_instance("h-1", &op).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let cm = k
        .get("v1", "configmaps", Some("apps"), "cb-h-1")
        .expect("the release's ConfigMap exists");
    assert_eq!(cm["data"]["message"], "one");
    assert_eq!(
        release_secrets(&k, "cb-h-1").len(),
        1,
        "helm's release record is stored as a Secret"
    );

    // Bind: the Secret appears in the app namespace with the credentials.
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/h-1/service_bindings/hb-1?accepts_incomplete=true",
            Some(bind_body("plan-small", json!({"role": "writer"}))),
        )
        .await;
    let creds = if r.status == StatusCode::ACCEPTED {
        let op = r.json["operation"].as_str().unwrap().to_string();
        assert_eq!(
            b.wait_binding("h-1", "hb-1", &op).await.json["state"],
            "succeeded"
        );
        b.call(
            Method::GET,
            "/v2/service_instances/h-1/service_bindings/hb-1",
            None,
        )
        .await
        .json["credentials"]
            .clone()
    } else {
        r.json["credentials"].clone()
    };
    assert_eq!(creds["role"], "writer");
    let secret = k
        .get("v1", "secrets", Some("apps"), "cb-bind-hb-1")
        .expect("binding Secret applied");
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "chartbroker"
    );
    assert_eq!(
        secret["metadata"]["annotations"]["chartbroker.io/binding-id"],
        "hb-1"
    );
    let password = &secret["data"]["password"];
    assert!(password.is_string(), "{secret}");

    // Update: an upgrade keeps the generated password.
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/h-1?accepts_incomplete=true",
            Some(json!({"service_id": "svc-tiny", "parameters": {"message": "two"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let done = b
        .wait_instance("h-1", r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    assert_eq!(
        k.get("v1", "configmaps", Some("apps"), "cb-h-1").unwrap()["data"]["message"],
        "two"
    );
    let chart_secret = k.get("v1", "secrets", Some("apps"), "cb-h-1").unwrap();
    let creds2 = b
        .call(
            Method::GET,
            "/v2/service_instances/h-1/service_bindings/hb-1",
            None,
        )
        .await
        .json["credentials"]
        .clone();
    assert_eq!(creds2["password"], creds["password"]);
    assert!(chart_secret["data"]["password"].is_string());

    // Unbind removes the Secret.
    let r = b
        .call(Method::DELETE, "/v2/service_instances/h-1/service_bindings/hb-1?service_id=svc-tiny&plan_id=plan-small&accepts_incomplete=true", None)
        .await;
    assert!(
        r.status == StatusCode::OK || r.status == StatusCode::ACCEPTED,
        "{}",
        r.text
    );
    if r.status == StatusCode::ACCEPTED {
        let gone = b
            .wait_binding("h-1", "hb-1", r.json["operation"].as_str().unwrap())
            .await;
        assert_eq!(gone.status, StatusCode::GONE, "{}", gone.text);
    }
    assert!(
        k.get("v1", "secrets", Some("apps"), "cb-bind-hb-1")
            .is_none()
    );

    // Deprovision removes the release and its objects.
    let r = b
        .call(Method::DELETE, "/v2/service_instances/h-1?service_id=svc-tiny&plan_id=plan-small&accepts_incomplete=true", None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let gone = b
        .wait_instance("h-1", r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.text);
    assert!(k.get("v1", "configmaps", Some("apps"), "cb-h-1").is_none());
    assert!(release_secrets(&k, "cb-h-1").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_helm4() {
    lifecycle(helm_bin()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_helm3() {
    lifecycle(helm3_bin()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_upgrade_rolls_back_and_keeps_the_instance_usable() {
    let k = cluster().await;
    let b = broker(&k, helm_bin()).await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/rb-1?accepts_incomplete=true",
            Some(provision_body("plan-small", json!({"message": "good"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(
        b.wait_instance("rb-1", r.json["operation"].as_str().unwrap())
            .await
            .json["state"],
        "succeeded"
    );
    // The API server refuses the next write to the ConfigMap: the upgrade fails.
    k.fail_next("PATCH", "/api/v1/namespaces/apps/configmaps/cb-rb-1", 500);
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/rb-1?accepts_incomplete=true",
            Some(json!({"service_id": "svc-tiny", "parameters": {"message": "bad"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let done = b
        .wait_instance("rb-1", r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(done.json["state"], "failed", "{}", done.text);
    assert_eq!(done.json["instance_usable"], true, "{}", done.text);
    let desc = done.json["description"].as_str().unwrap();
    assert!(desc.contains("rolled back to revision 1"), "{desc}");
    assert_eq!(
        k.get("v1", "configmaps", Some("apps"), "cb-rb-1").unwrap()["data"]["message"],
        "good"
    );
    // The recorded parameters are the old ones.
    let r = b
        .call(Method::GET, "/v2/service_instances/rb-1", None)
        .await;
    assert_eq!(r.json["parameters"]["message"], "good");
}

/// Binding needs no helm: it answers synchronously even on the helm engine,
/// for platforms that never bind asynchronously (Service Catalog).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_are_synchronous_on_the_helm_engine() {
    let k = cluster().await;
    let b = broker(&k, helm_bin()).await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/sb-1?accepts_incomplete=true",
            Some(provision_body("plan-small", json!({}))),
        )
        .await;
    assert_eq!(
        b.wait_instance("sb-1", r.json["operation"].as_str().unwrap())
            .await
            .json["state"],
        "succeeded"
    );
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/sb-1/service_bindings/sbb",
            Some(bind_body("plan-small", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.json["credentials"]["password"].is_string());
    assert!(
        k.get("v1", "secrets", Some("apps"), "cb-bind-sbb")
            .is_some()
    );
    let r = b
        .call(Method::DELETE, "/v2/service_instances/sb-1/service_bindings/sbb?service_id=svc-tiny&plan_id=plan-small", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        k.get("v1", "secrets", Some("apps"), "cb-bind-sbb")
            .is_none()
    );
    // Instance operations still need accepts_incomplete.
    let r = b
        .call(
            Method::DELETE,
            "/v2/service_instances/sb-1?service_id=svc-tiny&plan_id=plan-small",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json["error"], "AsyncRequired");
}
