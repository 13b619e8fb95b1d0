//! Helpers of the tests in tests/edge/delete_example_catalog.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use axum::http::StatusCode;
use serde_json::json;

use common::TestBroker;
pub use common::example_catalog::{MYSQL, MYSQL_BASIC as BASIC, MYSQL_STANDARD as STANDARD};

/// Provisions `id` on `basic`, then updates it to `standard`, as the
/// suites' lifecycles do.
pub async fn standard_instance(b: &TestBroker, id: &str, accepts: bool) {
    let q = if accepts {
        "?accepts_incomplete=true"
    } else {
        ""
    };
    let uri = format!("/v2/service_instances/{id}{q}");
    let body = json!({
        "service_id": MYSQL, "plan_id": BASIC,
        "organization_guid": "org", "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": "apps"},
        "maintenance_info": {},
    });
    let r = b.put(&uri, body).await;
    assert!(r.status.is_success(), "{}", r.text);
    if r.status == StatusCode::ACCEPTED {
        let op = r.json["operation"].as_str().unwrap();
        assert_eq!(b.wait_instance(id, op).await.json["state"], "succeeded");
    }
    let body =
        json!({"service_id": MYSQL, "plan_id": STANDARD, "previous_values": {"plan_id": BASIC}});
    let r = b.patch(&uri, body).await;
    assert!(r.status.is_success(), "{}", r.text);
    if r.status == StatusCode::ACCEPTED {
        let op = r.json["operation"].as_str().unwrap();
        assert_eq!(b.wait_instance(id, op).await.json["state"], "succeeded");
    }
}
