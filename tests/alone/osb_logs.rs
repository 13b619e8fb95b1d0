//! Logs never show credentials: generated passwords, binding credentials,
//! or what platforms send in `Authorization`.
//!
//! Alone in its own test binary (tests/alone) on purpose: the capture uses
//! a thread-scoped `tracing` subscriber, and `tracing`'s per-callsite
//! interest cache races when another test thread hits the same callsite
//! first (a missing `operation failed` line about one run in four when this
//! test shared a binary, even with the cache rebuilt).

use crate::common;

use crate::helpers::osb_logs::*;
use axum::http::{Method, StatusCode};
use common::*;

#[tokio::test]
async fn logs_never_show_credentials() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    // The test runtime is single-threaded: operations spawned by the broker
    // log through this thread's subscriber too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let b = echo_broker().await;
    let (password, _) = echo_failures(&b).await;
    let r = b
        .send(bare(
            Method::GET,
            "/v2/catalog",
            &[
                ("x-broker-api-version", "2.17"),
                ("authorization", &basic(USER, "wrong-guess-password")),
            ],
            None,
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = b
        .del("/v2/service_instances/e-1?service_id=svc-echo&plan_id=plan-echo")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The capture works and saw the failures (with helm's redacted message).
    assert!(text.contains("operation failed"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    let basic_header = auth();
    let encoded = basic_header.trim_start_matches("Basic ");
    for secret in [password.as_str(), PASS, "wrong-guess-password", encoded] {
        assert!(!text.contains(secret), "logs show {secret:?}:\n{text}");
    }
}
