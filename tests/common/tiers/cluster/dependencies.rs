//! Helpers of the tests in tests/cluster/dependencies.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

pub use common::example_catalog::{MYSQL, MYSQL_BASIC, WORDPRESS, WORDPRESS_STANDARD};
use common::*;
use serde_json::{Value, json};

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
