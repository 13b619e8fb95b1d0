//! Helpers of the tests in tests/cluster/dependencies.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use common::*;
use serde_json::{Value, json};

pub const MYSQL: &str = "a0f5bc72-baad-493b-bc23-a1955f509a90";
pub const MYSQL_BASIC: &str = "d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1";
pub const WORDPRESS: &str = "c461081c-edf4-464d-a97a-c6bc513221d8";
pub const WORDPRESS_STANDARD: &str = "5d07b801-7bd4-41e1-b993-f981678db0af";

pub fn example_config(data: &std::path::Path) -> chartbroker::runtime::ServeConfig {
    let mut cfg = config(data);
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    cfg
}

pub fn body(service: &str, plan: &str, ns: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan,
        "context": {"platform": "kubernetes", "namespace": ns}, "parameters": params})
}
