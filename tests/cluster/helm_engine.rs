//! The helm engine end to end against the real API server (tests/testenv):
//! OSB requests in, the real helm binary (4 and 3) installing as the
//! deploy/ ServiceAccount with deploy/'s RBAC, binding Secrets applied by
//! kube-rs, every step checked with the admin's GETs.

use crate::common;

use crate::helpers::helm_engine::*;
use axum::http::StatusCode;
use common::cluster::{Cluster, secret_value};
use common::cluster_calls::*;
use common::*;
use serde_json::json;

crate::helm4_and_3_tests!(
    lifecycle_helm4,
    lifecycle_helm3,
    |helm, _| lifecycle(helm),
    worker_threads = 2
);

/// The API server refuses the upgrade (a label value it won't take, which
/// `helm template` lets through): the engine rolls back, says so, and the
/// instance stays usable with its old parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_upgrade_rolls_back_and_keeps_the_instance_usable() {
    let k = Cluster::admin().await;
    let (_id, ns, b) = setup(&k, helm_bin(), Some(fixtures().join("catalog-cluster"))).await;
    let platform = b.by(None);
    let body = cluster_provision("plan-labelled", &ns, json!({"tier": "good"}));
    platform.provisioned("rb-1", body).await;

    let tier = |t: &str| json!({"service_id": "svc-cluster", "parameters": {"tier": t}});
    let done = platform.update("rb-1", tier("not a label!")).await;
    let desc = done.assert_state("failed");
    assert_eq!(done.json["instance_usable"], true, "{}", done.text);
    assert!(desc.contains("rolled back to revision 1"), "{desc}");
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps/cb-rb-1");
    let cm = k.get(&cm_path).await.unwrap();
    assert_eq!(cm["metadata"]["labels"]["tier"], "good", "{cm:#}");
    // The recorded parameters are the old ones.
    let r = b.get("/v2/service_instances/rb-1").await;
    assert_eq!(r.json["parameters"]["tier"], "good", "{}", r.text);
    // Usable: the next good update goes through.
    platform.updated("rb-1", tier("better")).await;
    let cm = k.get(&cm_path).await.unwrap();
    assert_eq!(cm["metadata"]["labels"]["tier"], "better", "{cm:#}");
}

/// Binding needs no helm: it answers synchronously even on the helm engine,
/// for platforms that never bind asynchronously (Service Catalog).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_are_synchronous_on_the_helm_engine() {
    let k = Cluster::admin().await;
    let (_id, ns, b) = setup(&k, helm_bin(), None).await;
    let platform = b.by(None);
    let body = provision_body_in("plan-small", &ns, json!({}));
    platform.provisioned("sb-1", body).await;
    let secret = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-sbb");
    let bind = bind_body("plan-small", json!({}));
    let r = platform.bound("sb-1", "sbb", bind).await;
    let password = r.json["credentials"]["password"]
        .as_str()
        .expect("password");
    let s = k.get(&secret).await.expect("the binding Secret, at once");
    assert_eq!(secret_value(&s, "password").as_deref(), Some(password));
    platform
        .unbound("sb-1", "sbb", "svc-tiny", "plan-small")
        .await;
    assert!(!k.has(&secret).await, "gone before the 200");
    // Instance operations still need accepts_incomplete.
    let sync = "/v2/service_instances/sb-1?service_id=svc-tiny&plan_id=plan-small";
    let r = b.del(sync).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json["error"], "AsyncRequired");
    let cm = format!("/api/v1/namespaces/{ns}/configmaps/cb-sb-1");
    assert!(
        k.has(&cm).await,
        "the refused DELETE left the release alone"
    );
}

crate::helm4_and_3_tests!(
    waits_naming_what_is_not_ready_helm4,
    waits_naming_what_is_not_ready_helm3,
    |helm, _| waits_naming_what_is_not_ready(helm),
    worker_threads = 2
);
