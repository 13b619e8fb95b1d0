//! The confused deputy: with the helm engine, a Kubernetes platform user's
//! request is checked with a SubjectAccessReview against the namespace it
//! targets before the broker acts there with its own rights.

use crate::common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

use crate::helpers::authorization::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_user_without_access_to_the_namespace_is_refused() {
    let (k, b) = setup().await;
    let bob = identity(
        "kubernetes",
        json!({"username": "bob", "uid": "2", "groups": ["dev"], "extra": {}}),
    );
    let uri = "/v2/service_instances/az-1?accepts_incomplete=true";
    let r = put_as(&b, uri, provision_body("plan-small", json!({})), Some(&bob)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.json["error"], "Forbidden");
    let why = r.json["description"].as_str().unwrap();
    assert!(why.contains("bob"), "{}", r.text);
    // Nothing was recorded or installed.
    let r = last_operation(&b, "az-1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(k.get("v1", "configmaps", Some("apps"), "cb-az-1").is_none());
    let reviews: Vec<_> = k
        .requests()
        .into_iter()
        .filter(|(m, p)| m == "POST" && p.contains("subjectaccessreviews"))
        .collect();
    assert_eq!(reviews.len(), 1, "one SubjectAccessReview was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorized_user_provisions_and_binds() {
    let (k, b) = setup().await;
    let alice = identity(
        "kubernetes",
        json!({"username": "alice", "uid": "1", "groups": ["ops"], "extra": {"team": ["a"]}}),
    );
    let uri = "/v2/service_instances/az-2?accepts_incomplete=true";
    let r = put_as(
        &b,
        uri,
        provision_body("plan-small", json!({})),
        Some(&alice),
    )
    .await;
    let done = b.finish(uri, r).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    assert!(k.get("v1", "configmaps", Some("apps"), "cb-az-2").is_some());

    // Bob may not bind it either: the binding Secret would land in apps.
    let bob = identity(
        "kubernetes",
        json!({"username": "bob", "uid": "2", "groups": [], "extra": {}}),
    );
    let uri = "/v2/service_instances/az-2/service_bindings/azb?accepts_incomplete=true";
    let r = put_as(&b, uri, bind_body("plan-small", json!({})), Some(&bob)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let secret = k.get("v1", "secrets", Some("apps"), "cb-bind-azb");
    assert!(secret.is_none(), "{secret:?}");

    // On a Kubernetes platform, a request the broker can't check (no
    // identity, or another platform's) is refused: authorization fails
    // closed unless the operator turns SubjectAccessReview off.
    let cf = identity("cloudfoundry", json!({"user_id": "u-1"}));
    for (bid, id) in [("azb-none", None), ("azb-cf", Some(cf.as_str()))] {
        let uri =
            format!("/v2/service_instances/az-2/service_bindings/{bid}?accepts_incomplete=true");
        let r = put_as(&b, &uri, bind_body("plan-small", json!({})), id).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bid}: {}", r.text);
    }
}
