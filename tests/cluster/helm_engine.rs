//! The helm engine end to end against the real API server (tests/testenv):
//! OSB requests in, the real helm binary (4 and 3) installing as the
//! deploy/ ServiceAccount with deploy/'s RBAC, binding Secrets applied by
//! kube-rs, every step checked with the admin's GETs.

use crate::common;

use crate::helpers::helm_engine::*;
use axum::http::{Method, StatusCode};
use common::cluster::{Cluster, secret_value};
use common::cluster_calls::*;
use common::*;
use serde_json::json;

/// Was lifecycle_helm4 and lifecycle_helm3 (cases "4", "3").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_helm4_and_3() {
    on_helm4_and_3(|helm, _| lifecycle(helm)).await;
}

/// The API server refuses the upgrade (a label value it won't take, which
/// `helm template` lets through): the engine rolls back, says so, and the
/// instance stays usable with its old parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_upgrade_rolls_back_and_keeps_the_instance_usable() {
    let k = Cluster::admin().await;
    let (_id, ns, b) = setup(&k, helm_bin(), Some(fixtures().join("catalog-cluster"))).await;
    let body = json!({
        "service_id": "svc-cluster", "plan_id": "plan-labelled",
        "organization_guid": "org", "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": {"tier": "good"},
    });
    let done = b
        .run(
            Method::PUT,
            "/v2/service_instances/rb-1?accepts_incomplete=true",
            Some(body),
        )
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);

    let done = b
        .run(
            Method::PATCH,
            "/v2/service_instances/rb-1?accepts_incomplete=true",
            Some(json!({"service_id": "svc-cluster", "parameters": {"tier": "not a label!"}})),
        )
        .await;
    assert_eq!(done.json["state"], "failed", "{}", done.text);
    assert_eq!(done.json["instance_usable"], true, "{}", done.text);
    let desc = done.json["description"].as_str().unwrap();
    assert!(desc.contains("rolled back to revision 1"), "{desc}");
    let cm = k
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/cb-rb-1"))
        .await
        .unwrap();
    assert_eq!(cm["metadata"]["labels"]["tier"], "good", "{cm:#}");
    // The recorded parameters are the old ones.
    let r = b
        .call(Method::GET, "/v2/service_instances/rb-1", None)
        .await;
    assert_eq!(r.json["parameters"]["tier"], "good", "{}", r.text);
    // Usable: the next good update goes through.
    let done = b
        .run(
            Method::PATCH,
            "/v2/service_instances/rb-1?accepts_incomplete=true",
            Some(json!({"service_id": "svc-cluster", "parameters": {"tier": "better"}})),
        )
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let cm = k
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/cb-rb-1"))
        .await
        .unwrap();
    assert_eq!(cm["metadata"]["labels"]["tier"], "better", "{cm:#}");
}

/// Binding needs no helm: it answers synchronously even on the helm engine,
/// for platforms that never bind asynchronously (Service Catalog).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_are_synchronous_on_the_helm_engine() {
    let k = Cluster::admin().await;
    let (_id, ns, b) = setup(&k, helm_bin(), None).await;
    let done = b
        .run(
            Method::PUT,
            "/v2/service_instances/sb-1?accepts_incomplete=true",
            Some(provision_body_in("plan-small", &ns, json!({}))),
        )
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let secret = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-sbb");
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/sb-1/service_bindings/sbb",
            Some(bind_body("plan-small", json!({}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let password = r.json["credentials"]["password"]
        .as_str()
        .expect("password");
    let s = k.get(&secret).await.expect("the binding Secret, at once");
    assert_eq!(secret_value(&s, "password").as_deref(), Some(password));
    let r = b
        .call(Method::DELETE, "/v2/service_instances/sb-1/service_bindings/sbb?service_id=svc-tiny&plan_id=plan-small", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(k.get(&secret).await.is_none(), "gone before the 200");
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
    assert!(
        k.get(&format!("/api/v1/namespaces/{ns}/configmaps/cb-sb-1"))
            .await
            .is_some(),
        "the refused DELETE left the release alone"
    );
}

/// Was waits_naming_what_is_not_ready_helm4 and waits_naming_what_is_not_ready_helm3 (cases
/// "4", "3").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_naming_what_is_not_ready_helm4_and_3() {
    on_helm4_and_3(|helm, _| waits_naming_what_is_not_ready(helm)).await;
}
