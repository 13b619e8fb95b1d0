//! Helpers of the tests in tests/edge/ui.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::http::StatusCode;
use common::dashboard::provision;
use common::{Resp, TestBroker};
use serde_json::Value;

/// A plan-small provision of `id` in namespace `ns` that must answer 201
/// Created: the answer.
pub async fn provisioned(b: &TestBroker, id: &str, ns: &str, params: Value) -> Resp {
    let r = provision(b, id, "plan-small", ns, params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{id}: {}", r.text);
    r
}
