//! Small OSB request and encoding helpers more than one test module uses.

use axum::http::Method;
use base64::Engine as _;

use super::{Resp, TestBroker, config, repo};

/// Standard base64 of `s`, as a Secret's `data` holds it.
pub fn b64_encode(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Standard base64 `s` decoded, as UTF-8 (a Secret's `data` value).
pub fn b64_decode(s: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

/// `GET last_operation` of instance `id`.
pub async fn last_operation(b: &TestBroker, id: &str) -> Resp {
    b.call(
        Method::GET,
        &format!("/v2/service_instances/{id}/last_operation"),
        None,
    )
    .await
}

/// The path of instance `id`.
pub fn inst(id: &str) -> String {
    format!("/v2/service_instances/{id}")
}

/// A broker on the repository's example catalog and charts.
pub async fn example_broker() -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    TestBroker::with_config(data, cfg).await
}
