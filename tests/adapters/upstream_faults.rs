//! Upstream faults: a small fault-injecting HTTP proxy (raw tokio, written
//! here) sits between chartbroker and the real upstream broker
//! (tests/upstream/broker.py on openbrokerapi). Each test checks what our
//! platform is told (state and `description`) and, from the upstream's own
//! request log, which orphan-mitigation calls actually reached it.

use crate::common;

use common::assert_delete_done;
use common::upstream as support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::upstream_faults::*;
use support::*;

// === provision ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_fails_fast_without_orphan_mitigation() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}");
    let b = broker(&CatalogOpts::new(&closed)).await;
    let r = provision_settled(&b, "down-1", json!({})).await;
    assert_eq!(r["state"], "failed", "{r}");
    let d = description(&r);
    assert!(d.contains("upstream broker cloud is unreachable"), "{d}");
    assert!(d.contains("nothing was created upstream"), "{d}");
    assert!(
        !d.contains("orphan"),
        "a refused connection created nothing: {d}"
    );
    // The platform's own orphan mitigation (a deprovision) is answered too;
    // the upstream is still down, so it fails, with a clear description.
    let r = deprovision(&b, "down-1", "plan-premium").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = b
        .wait_instance("down-1", r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    assert!(
        description(&r.json).contains("may still exist upstream"),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_provision_times_out_and_is_deprovisioned_upstream() {
    let s = setup("sync", 0, |_| {}).await;
    let path = format!("{INSTANCES}/slow-1");
    s.proxy
        .add("PUT", &path, 1, Fault::Delay(Duration::from_secs(3)));
    let d = s.provision_failed("slow-1", json!({})).await;
    assert!(d.contains("did not answer within 1s"), "{d}");
    assert!(
        d.contains("orphan mitigation") && d.contains("confirmed"),
        "{d}"
    );
    // The upstream created it, then got the mitigating DELETE.
    assert_eq!(s.cloud.received("PUT", &path).len(), 1);
    let dels = s.cloud.received("DELETE", &path);
    assert_eq!(dels.len(), 1, "{dels:#?}");
    assert_eq!(dels[0]["query"]["plan_id"], MYSQL_PREMIUM);
    // Nothing is left upstream.
    s.cloud.assert_gone(&path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_5xx_is_mitigated_and_retried_until_confirmed() {
    let s = setup("sync", 0, |_| {}).await;
    let path = format!("{INSTANCES}/five-1");
    s.proxy.add("PUT", &path, 1, Fault::Status(500));
    // The first two mitigating DELETEs fail too; the third goes through.
    s.proxy.add("DELETE", &path, 1, Fault::Refuse(503));
    s.proxy.add("DELETE", &path, 1, Fault::Drop);
    let d = s.provision_failed("five-1", json!({})).await;
    assert!(d.contains("answered HTTP 500"), "{d}");
    assert!(d.contains("injected by the fault proxy"), "{d}");
    assert!(d.contains("confirmed"), "{d}");
    assert_eq!(s.proxy.count("DELETE", &path), 3);
    // The dropped DELETE reached the upstream (which deleted it); the third
    // then got 410, which also confirms.
    assert_eq!(s.cloud.received("DELETE", &path).len(), 2);
    s.cloud.assert_gone(&path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_201_is_mitigated() {
    let s = setup("sync", 0, |_| {}).await;
    let path = format!("{INSTANCES}/junk-1");
    s.proxy.add("PUT", &path, 1, Fault::Garbage);
    let d = s.provision_failed("junk-1", json!({})).await;
    assert!(d.contains("answered HTTP 201 with a malformed body"), "{d}");
    assert!(d.contains("this is not json"), "{d}");
    assert_eq!(s.cloud.received("DELETE", &path).len(), 1, "mitigated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_409_is_translated_without_mitigation() {
    let s = setup("sync", 0, |_| {}).await;
    let path = format!("{INSTANCES}/dup-1");
    // Someone else already created this id upstream with other parameters.
    let (status, _) = s
        .cloud
        .direct(
            reqwest::Method::PUT,
            &path,
            Some(
                json!({"service_id": MYSQL_SERVICE, "plan_id": MYSQL_PREMIUM,
                "organization_guid": "o", "space_guid": "s", "parameters": {"database": "theirs"}}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let d = s
        .provision_failed("dup-1", json!({"database": "ours"}))
        .await;
    assert!(d.starts_with("conflict upstream"), "{d}");
    assert!(
        s.cloud.received("DELETE", &path).is_empty(),
        "a 4xx created nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_provision_that_fails_upstream_is_mitigated() {
    let s = setup("async", 1, |_| {}).await;
    let path = format!("{INSTANCES}/afail-1");
    let d = s
        .provision_failed("afail-1", json!({"outcome": "fail"}))
        .await;
    assert!(
        d.contains("reported the provision failed: simulated provision failure in the cloud"),
        "{d}"
    );
    assert!(d.contains("confirmed"), "{d}");
    // The DELETE was itself async upstream and was polled to completion.
    assert_eq!(s.cloud.received("DELETE", &path).len(), 1);
    s.cloud.assert_gone(&path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_survives_5xx_and_garbage_answers() {
    let s = setup("async", 2, |_| {}).await;
    let lo = format!("{INSTANCES}/flaky-1/last_operation");
    s.proxy.add("GET", &lo, 2, Fault::Status(502));
    s.proxy.add("GET", &lo, 1, Fault::Garbage);
    s.proxy.add("GET", &lo, 1, Fault::Drop);
    let r = provision_settled(&s.b, "flaky-1", json!({})).await;
    assert_eq!(r["state"], "succeeded", "{r}");
    // Four faulty answers, then a good one.
    assert!(s.proxy.count("GET", &lo) >= 5);
    s.cloud
        .assert_never_received("DELETE", &format!("{INSTANCES}/flaky-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_operation_outliving_max_polling_duration_is_mitigated() {
    // The upstream would need 1000 polls; the plan allows 4 seconds.
    let s = setup("async", 1000, |o| o.max_polling = 4).await;
    let d = s.provision_failed("long-1", json!({})).await;
    assert!(
        d.contains("did not finish the provision within the plan's maximum_polling_duration"),
        "{d}"
    );
    assert!(
        d.contains("in progress: provision"),
        "names the last answer: {d}"
    );
    assert_eq!(
        s.cloud
            .received("DELETE", &format!("{INSTANCES}/long-1"))
            .len(),
        1
    );
}

// === bind ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_bind_connection_is_unbound_upstream() {
    let s = setup("sync", 0, |_| {}).await;
    provision_settled(&s.b, "drop-1", json!({})).await;
    let bpath = format!("{INSTANCES}/drop-1/service_bindings/b-1");
    s.proxy.add("PUT", &bpath, 1, Fault::Drop);
    let op = bind(
        &s.b,
        "drop-1",
        "b-1",
        "svc-db",
        "plan-premium",
        json!({"app_guid": "a"}),
    )
    .await;
    let r = s.b.wait_binding("drop-1", "b-1", &op).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = description(&r.json);
    assert!(d.contains("broke before it answered"), "{d}");
    assert!(
        d.contains("ran unbind upstream") && d.contains("confirmed"),
        "{d}"
    );
    assert_eq!(s.cloud.received("PUT", &bpath).len(), 1);
    assert_eq!(
        s.cloud.received("DELETE", &bpath).len(),
        1,
        "the orphan binding was removed"
    );
    assert!(
        !s.b.release_dir("drop-1")
            .join("bindings/cb-bind-b-1.yaml")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requires_app_422_is_translated_without_mitigation() {
    let s = setup("sync", 0, |_| {}).await;
    let op = provision(&s.b, "kafka-1", "svc-stream", "plan-stream-dev", json!({})).await;
    let r = s.b.wait_instance("kafka-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let op = bind(
        &s.b,
        "kafka-1",
        "b-1",
        "svc-stream",
        "plan-stream-dev",
        json!({}),
    )
    .await;
    let r = s.b.wait_binding("kafka-1", "b-1", &op).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = description(&r.json);
    assert!(d.contains("HTTP 422") && d.contains("RequiresApp"), "{d}");
    let binding = format!("{INSTANCES}/kafka-1/service_bindings/b-1");
    s.cloud.assert_never_received("DELETE", &binding);
}

// === update, deprovision ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_404_fails_and_the_instance_stays_usable() {
    let s = setup("sync", 0, |_| {}).await;
    provision_settled(&s.b, "upd-1", json!({})).await;
    let path = format!("{INSTANCES}/upd-1");
    s.proxy.add("PATCH", &path, 1, Fault::Refuse(404));
    let r = call(
        &s.b,
        Method::PATCH,
        &format!("{path}?accepts_incomplete=true"),
        Some(json!({"service_id": "svc-db", "parameters": {"size_gb": 5}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r =
        s.b.wait_instance("upd-1", r.json["operation"].as_str().unwrap())
            .await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    assert!(
        description(&r.json).contains("does not know this service instance (HTTP 404)"),
        "{}",
        r.text
    );
    assert_eq!(r.json["instance_usable"], true);
    assert_eq!(r.json["update_repeatable"], false);
    let r = s.b.call(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_410_when_upstream_forgot_the_instance() {
    let s = setup("sync", 0, |_| {}).await;
    provision_settled(&s.b, "gone-1", json!({})).await;
    let path = format!("{INSTANCES}/gone-1");
    let q = format!("{path}?service_id={MYSQL_SERVICE}&plan_id={MYSQL_PREMIUM}");
    let (status, _) = s.cloud.direct(reqwest::Method::DELETE, &q, None).await;
    assert_eq!(status, 200, "deleted behind our back");
    let r = deprovision(&s.b, "gone-1", "plan-premium").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r =
        s.b.wait_instance("gone-1", r.json["operation"].as_str().unwrap())
            .await;
    // Deprovisioned: our last_operation answers the delete as succeeded
    // while the tombstone lives.
    assert_delete_done(&r);
    let r = deprovision(&s.b, "gone-1", "plan-premium").await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprovision_5xx_is_retried_then_fails_and_keeps_the_instance() {
    let s = setup("sync", 0, |o| o.retries = 2).await;
    provision_settled(&s.b, "keep-1", json!({})).await;
    let path = format!("{INSTANCES}/keep-1");
    s.proxy.add("DELETE", &path, 100, Fault::Refuse(500));
    let r = deprovision(&s.b, "keep-1", "plan-premium").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r =
        s.b.wait_instance("keep-1", r.json["operation"].as_str().unwrap())
            .await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = description(&r.json);
    assert!(
        d.contains("answered HTTP 500") && d.contains("deprovision again to retry"),
        "{d}"
    );
    assert_eq!(s.proxy.count("DELETE", &path), 3, "one try and two retries");
    let r = s.b.call(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "the instance is kept: {}", r.text);
    // Once the upstream recovers, the platform's retry succeeds.
    s.proxy.rules.lock().unwrap().clear();
    let r = deprovision(&s.b, "keep-1", "plan-premium").await;
    let r =
        s.b.wait_instance("keep-1", r.json["operation"].as_str().unwrap())
            .await;
    assert_delete_done(&r);
}

/// Each upstream delete (unbind, deprovision; upstream plans serve them
/// asynchronously) under each fault: what the platform sees, and that the
/// upstream ends without the instance or binding. A fault that leaves the
/// upstream holding it fails the delete with a description (the platform
/// retries), and the retry after the upstream recovers succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_delete_fault_matrix() {
    use common::deletes::Delete;
    let s = setup("sync", 0, |o| o.retries = 1).await;
    let faults = [
        DeleteFault::Forgot,
        DeleteFault::Errors,
        DeleteFault::TooSlow,
        DeleteFault::PlanRemoved,
    ];
    for fault in faults {
        for how in [Delete::UnbindAsync, Delete::DeprovisionAsync] {
            let cell = format!("{fault:?} × {how:?}");
            let id = format!("m-{}", uuid::Uuid::new_v4().simple());
            provision_settled(&s.b, &id, json!({})).await;
            let op = bind(
                &s.b,
                &id,
                "b1",
                "svc-db",
                "plan-premium",
                json!({"app_guid": "a"}),
            )
            .await;
            let r = s.b.wait_binding(&id, "b1", &op).await;
            assert_eq!(r.json["state"], "succeeded", "{cell}: {}", r.text);
            let path = if how.unbinds() {
                format!("{INSTANCES}/{id}/service_bindings/b1")
            } else {
                format!("{INSTANCES}/{id}")
            };
            let recovers = match fault {
                DeleteFault::Forgot => {
                    let q = format!("{path}?service_id={MYSQL_SERVICE}&plan_id={MYSQL_PREMIUM}");
                    let (status, _) = s.cloud.direct(reqwest::Method::DELETE, &q, None).await;
                    assert_eq!(status, 200, "{cell}: deleted behind our back");
                    false
                }
                DeleteFault::Errors => {
                    s.proxy.add("DELETE", &path, 100, Fault::Refuse(500));
                    true
                }
                DeleteFault::TooSlow => {
                    s.proxy
                        .add("DELETE", &path, 100, Fault::Delay(Duration::from_secs(3)));
                    true
                }
                DeleteFault::PlanRemoved => {
                    remove_premium(&s.b).await;
                    false
                }
            };
            let seen = s.b.delete(how, ("svc-db", "plan-premium"), &id, "b1").await;
            if recovers {
                let d = seen.assert_failed(&cell);
                assert!(d.contains("cloud"), "{cell}: names the upstream: {d}");
                s.proxy.rules.lock().unwrap().clear();
                s.b.delete(how, ("svc-db", "plan-premium"), &id, "b1")
                    .await
                    .assert_succeeded(&cell);
            } else {
                seen.assert_succeeded(&cell);
            }
            let again = s.b.delete(how, ("svc-db", "plan-premium"), &id, "b1").await;
            assert_eq!(
                again.answer.status,
                StatusCode::GONE,
                "{cell}: {}",
                again.answer.text
            );
            let q = format!("{path}?service_id={MYSQL_SERVICE}&plan_id={MYSQL_PREMIUM}");
            let (status, _) = s.cloud.direct(reqwest::Method::GET, &q, None).await;
            assert!(
                status == 404 || status == 410,
                "{cell}: the upstream still has it ({status})"
            );
            if matches!(fault, DeleteFault::PlanRemoved) {
                restore_premium(&s.b).await;
            }
        }
    }
}
