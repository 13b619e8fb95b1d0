//! Helpers of edge/edge_credentials.rs.

use crate::common;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::*;

pub const VERSION: (&str, &str) = ("x-broker-api-version", "2.17");

pub const ID: (&str, &str) = ("x-broker-api-request-identity", "lean-7f3a");

pub fn long(n: usize, seed: char) -> String {
    (0..n)
        .map(|i| char::from(b'a' + ((i * 7 + seed as usize) % 26) as u8))
        .collect()
}

/// A broker with the test user and the credentials of `users` and `tokens`.
pub async fn broker(users: &[(&str, &str)], tokens: &[&str]) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("credentials.yaml");
    let yaml = serde_json::json!({
        "users": users.iter().map(|(u, p)| serde_json::json!({"username": u, "password": p})).collect::<Vec<_>>(),
        "tokens": tokens,
    });
    // JSON is YAML.
    std::fs::write(&file, yaml.to_string()).unwrap();
    let mut cfg = config(data.path());
    cfg.credentials_file = Some(file);
    TestBroker::with_config(data, cfg).await
}

pub async fn status(b: &TestBroker, authorization: &str) -> StatusCode {
    let r = b.catalog_as(authorization).await;
    if r.status == StatusCode::UNAUTHORIZED {
        assert_osb_error(&r, StatusCode::UNAUTHORIZED, Some("Unauthorized"));
        assert!(
            r.headers.contains_key("www-authenticate"),
            "{:?}",
            r.headers
        );
    }
    r.status
}

pub fn raw_basic(decoded: &[u8]) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(decoded)
    )
}

/// A request (method, path, headers) and the status it must get.
pub type Case<'a> = (Method, &'a str, Vec<(&'a str, &'a str)>, StatusCode);
