//! Many concurrent OSB requests on one instance, over HTTP: exactly one
//! operation starts; every other request gets the answer the spec gives
//! (202 with the same operation, 409, or 422 ConcurrencyError).

use crate::common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_instance_start_exactly_one_operation() {
    let (b, gate) = TestBroker::start_gated().await;
    let b = std::sync::Arc::new(b);
    let mut tasks = Vec::new();
    for n in 0..40 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let (method, uri, body) = match n % 4 {
                // Identical provisions.
                0 | 1 => (
                    Method::PUT,
                    "/v2/service_instances/race?accepts_incomplete=true".to_string(),
                    Some(provision_body("plan-small", json!({"message": "same"}))),
                ),
                // The same id with other attributes.
                2 => (
                    Method::PUT,
                    "/v2/service_instances/race?accepts_incomplete=true".to_string(),
                    Some(provision_body("plan-small", json!({"message": "other"}))),
                ),
                // Updates and deletes racing the provision.
                _ => (
                    Method::DELETE,
                    "/v2/service_instances/race?service_id=svc-tiny&plan_id=plan-small&accepts_incomplete=true".to_string(),
                    None,
                ),
            };
            (n, b.call(method, &uri, body).await)
        }));
    }
    // Two groups of provisions differ: whichever won, the other got 409.
    let group = |n: usize| if n % 4 == 2 { "other" } else { "same" };
    let mut operations = BTreeSet::new();
    let (mut accepted, mut conflicted) = (BTreeSet::new(), BTreeSet::new());
    for t in tasks {
        let (n, r) = t.await.unwrap();
        match r.status {
            StatusCode::ACCEPTED => {
                assert_ne!(
                    n % 4,
                    3,
                    "a DELETE never gets 202 while provisioning: {}",
                    r.text
                );
                operations.insert(r.json["operation"].as_str().unwrap().to_string());
                accepted.insert(group(n));
            }
            StatusCode::CONFLICT => {
                assert_ne!(n % 4, 3, "{}", r.text);
                conflicted.insert(group(n));
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(r.json["error"], "ConcurrencyError", "{}", r.text)
            }
            // A DELETE that ran before any provision existed.
            StatusCode::GONE => assert_eq!(n % 4, 3, "{}", r.text),
            other => panic!("request {n}: unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(
        operations.len(),
        1,
        "one operation for everyone: {operations:?}"
    );
    assert_eq!(
        accepted.len(),
        1,
        "one group of provisions won: {accepted:?}"
    );
    assert!(
        accepted.is_disjoint(&conflicted),
        "the losers got 409: {conflicted:?}"
    );
    let winner = *accepted.iter().next().unwrap();
    let op = operations.into_iter().next().unwrap();
    assert!(op.starts_with("provision-"), "{op}");
    gate.open();
    let done = b.wait_instance("race", &op).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let manifests = std::fs::read_to_string(b.release_dir("race").join("manifests.yaml")).unwrap();
    assert!(
        manifests.contains(&format!(r#""message":"{winner}""#)),
        "the winning request's parameters were used"
    );
}
