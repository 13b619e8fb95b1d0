//! Helpers of the tests in tests/edge/catalog_change.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::Path;

use common::process::{Proc, spawn_serve};
use common::{fixtures, helm_bin};
use serde_json::Value;

/// The instance the test provisions, and the ids its deletes carry.
pub const INSTANCE: &str = "/v2/service_instances/gone-plan";
pub const IDS: &str = "service_id=svc-tiny&plan_id=plan-small";

pub fn start(data: &Path, catalog: &Path, port: u16) -> Proc {
    spawn_serve(
        port,
        catalog,
        &fixtures().join("charts"),
        data,
        &helm_bin(),
        &[],
    )
}

/// The test catalog with plan `plan-small` left out (when `without`).
pub fn catalog(dir: &Path, without: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(fixtures().join("catalog/test.yaml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    let mut doc = doc;
    if without {
        for svc in doc["services"].as_array_mut().unwrap() {
            svc["plans"]
                .as_array_mut()
                .unwrap()
                .retain(|p| p["id"] != "plan-small");
        }
    }
    // JSON is YAML.
    std::fs::write(dir.join("test.yaml"), doc.to_string()).unwrap();
}
