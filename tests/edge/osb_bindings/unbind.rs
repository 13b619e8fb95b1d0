use super::*;

// === unbind ===

#[tokio::test]
async fn unbind_returns_200_with_empty_object() {
    let b = broker_with_instance().await;
    b.bind_sync("i-1", "b-1", "plan-small", json!({})).await;
    let r = b.del(&unbind_uri("i-1", "b-1", false)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({}));
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = b.del(&unbind_uri("i-1", "b-1", false)).await;
    assert_osb_error(&r, StatusCode::GONE, None);
}

#[tokio::test]
async fn unbind_unknown_binding_returns_410() {
    let b = broker_with_instance().await;
    for (i, id) in [("i-1", "b-nope"), ("i-nope", "b-nope")] {
        for accepts in [false, true] {
            let r = b.del(&unbind_uri(i, id, accepts)).await;
            assert_osb_error(&r, StatusCode::GONE, None);
        }
    }
}

#[tokio::test]
async fn unbind_without_service_id_or_plan_id_returns_400() {
    let b = broker_with_instance().await;
    let creds = b.bind_sync("i-1", "b-1", "plan-small", json!({})).await;
    assert_delete_needs_ids(&b, &binding("i-1", "b-1")).await;
    let r = b.get(&binding("i-1", "b-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["credentials"], creds);
    assert!(secret_file(&b, "i-1", "b-1").is_file());
}

#[tokio::test]
async fn unbind_async_returns_202_then_binding_last_operation_succeeded() {
    let b = broker_with_instance().await;
    b.bind_sync("i-1", "b-1", "plan-small", json!({})).await;
    let r = b.del(&unbind_uri("i-1", "b-1", true)).await;
    let op = accepted_op(&r);
    let r = b.wait_binding("i-1", "b-1", &op).await;
    assert_delete_done(&r);
    let r = b.get(&binding_last_op("i-1", "b-1", None)).await;
    assert_delete_done(&r);
    // An unbind the broker has forgotten (or never knew) is gone.
    let r = b.get(&binding_last_op("i-1", "b-never", Some(&op))).await;
    assert_osb_error(&r, StatusCode::GONE, None);
    assert!(!secret_file(&b, "i-1", "b-1").exists());
}
