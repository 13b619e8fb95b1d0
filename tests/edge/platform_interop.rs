//! What a platform that compares exactly and deletes until 404/410
//! (Crossplane's provider-osb) needs from the broker, rule by rule over
//! HTTP on the render engine: fetch returns the parameters as sent, an
//! update may repeat current values (creation-only ones included), and a
//! credential may ask for 410 once a deprovision completed while another
//! keeps 200 `succeeded`.

use crate::common;

use crate::helpers::platform_interop::*;
use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn fetch_returns_the_parameters_as_sent_and_updates_may_repeat_them() {
    let b = broker().await;
    let uri = "/v2/service_instances/io-1";
    b.put_created(uri, provision(json!({"database": "shop"})))
        .await;
    // The chart got the plan's default ...
    assert!(
        rendered(&b, "io-1").contains(r#""replicas":"1""#),
        "{}",
        rendered(&b, "io-1")
    );
    // ... the platform gets back exactly what it sent.
    let r = b.get(uri).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["parameters"], json!({"database": "shop"}));
    assert_eq!(r.json["plan_id"], "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f");

    // The whole spec again, creation-only `database` included: applied.
    let spec = json!({"database": "shop", "message": "hi", "replicas": 2});
    let r = b.patch(uri, patch(spec.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(rendered(&b, "io-1").contains(r#""replicas":"2""#));
    let r = b.get(uri).await;
    assert_eq!(r.json["parameters"], spec);
    // Repeated as is: nothing to do, 200, still the same.
    let r = b.patch(uri, patch(spec.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = b.get(uri).await;
    assert_eq!(r.json["parameters"], spec);

    // Changing the creation-only parameter is still refused, and so is a
    // value the update schema forbids; nothing changes.
    for bad in [
        json!({"database": "other", "message": "hi", "replicas": 2}),
        json!({"database": "shop", "message": "hi", "replicas": 9}),
        json!({"database": "shop", "colour": "red"}),
    ] {
        let r = b.patch(uri, patch(bad)).await;
        assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    }
    let r = b.get(uri).await;
    assert_eq!(r.json["parameters"], spec);
    // A null for a key the instance lacks changes nothing either.
    let r = b
        .patch(uri, patch(json!({"database": "shop", "colour": null})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = b.get(uri).await;
    assert_eq!(r.json["parameters"], spec);
}

#[tokio::test]
async fn a_completed_deprovision_polls_as_its_credential_asks() {
    let b = broker().await;
    for id in ["dp-default", "dp-gone"] {
        let uri = format!("/v2/service_instances/{id}");
        b.put_created(&uri, provision(json!({"database": "shop"})))
            .await;
    }
    let del = |id: &str| {
        format!(
            "/v2/service_instances/{id}?service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f&accepts_incomplete=true"
        )
    };
    let poll =
        |id: &str, op: &str| format!("/v2/service_instances/{id}/last_operation?operation={op}");

    // The default: 200 `succeeded` (osb-checker), then 410 to a repeated DELETE.
    let r = b.del(&del("dp-default")).await;
    let op = accepted_op(&r);
    let done = b.wait_instance("dp-default", &op).await;
    assert_delete_done(&done);
    let again = b.get(&poll("dp-default", &op)).await;
    assert_delete_done(&again);
    assert_osb_error(&b.del(&del("dp-default")).await, StatusCode::GONE, None);

    // `deprovision_poll: gone`: in progress while it runs, 410 (with an
    // OSB error body) once it completed, on every later poll.
    let r = send_as_xp(&b, Method::DELETE, &del("dp-gone"), None).await;
    let op = accepted_op(&r);
    let mut last = None;
    for _ in 0..600 {
        let r = send_as_xp(&b, Method::GET, &poll("dp-gone", &op), None).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.json["state"], "in progress", "{}", r.text);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        last = Some(r);
        break;
    }
    let last = last.expect("the deprovision completes");
    assert_osb_error(&last, StatusCode::GONE, None);
    assert_eq!(
        last.headers.get("content-type").unwrap(),
        "application/json"
    );
    for query in [format!("operation={op}"), String::new()] {
        let uri = format!("/v2/service_instances/dp-gone/last_operation?{query}");
        let r = send_as_xp(&b, Method::GET, &uri, None).await;
        assert_osb_error(&r, StatusCode::GONE, None);
    }
    // The other credential still hears 200 `succeeded` about the same delete.
    assert_delete_done(&b.get(&poll("dp-gone", &op)).await);
    // A provision still polls as it always did for this credential.
    let r = provision_shop_as_xp(&b, "/v2/service_instances/dp-new?accepts_incomplete=true").await;
    assert!(
        r.status == StatusCode::ACCEPTED || r.status == StatusCode::CREATED,
        "{}",
        r.text
    );
    if r.status == StatusCode::ACCEPTED {
        let op = r.json["operation"].as_str().unwrap();
        let done = b.wait_instance("dp-new", op).await;
        assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    }
}

/// A credential confined to its namespaces can neither read nor change
/// what another platform made elsewhere: fetches and polls answer 404 (as
/// for an id that doesn't exist, so ids can't be probed), changes 403.
#[tokio::test]
async fn a_confined_credential_reaches_nothing_outside_its_namespaces() {
    let b = broker_with("\n    namespaces: [apps]").await;
    let mut body = provision(json!({"database": "shop"}));
    body["context"]["namespace"] = json!("other");
    // The test user (no namespace list) makes an instance and a binding in
    // `other`.
    b.put_created("/v2/service_instances/cn-1", body).await;
    let bind = "/v2/service_instances/cn-1/service_bindings/cn-b";
    let bind_body =
        json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f"});
    let r = b.put_created(bind, bind_body.clone()).await;
    assert!(r.json["credentials"]["password"].is_string(), "{}", r.text);
    for uri in [
        "/v2/service_instances/cn-1".to_string(),
        "/v2/service_instances/cn-1/last_operation".to_string(),
        bind.to_string(),
        format!("{bind}/last_operation"),
    ] {
        let r = send_as_xp(&b, Method::GET, &uri, None).await;
        assert_osb_error(&r, StatusCode::NOT_FOUND, None);
        assert!(!r.text.contains("password"), "{}", r.text);
        // The owner still reads it.
        let r = b.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
    }
    let q = "service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f";
    for (method, uri, body) in [
        (
            Method::PATCH,
            "/v2/service_instances/cn-1".to_string(),
            Some(patch(json!({"replicas": 2}))),
        ),
        (
            Method::PUT,
            "/v2/service_instances/cn-1/service_bindings/cn-x".to_string(),
            Some(bind_body),
        ),
        (Method::DELETE, format!("{bind}?{q}"), None),
        (
            Method::DELETE,
            format!("/v2/service_instances/cn-1?{q}"),
            None,
        ),
    ] {
        let r = send_as_xp(&b, method, &uri, body).await;
        assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    }
    let r = b.get(bind).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the binding is still there: {}",
        r.text
    );
    // In its own namespace it works.
    let r = provision_shop_as_xp(&b, "/v2/service_instances/cn-2").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}
