//! Helpers of the tests in tests/cluster/cluster_rbac/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use common::cluster::BrokerIdentity;
use common::*;
use serde_json::{Value, json};

pub async fn broker(id: &BrokerIdentity) -> TestBroker {
    TestBroker::on_cluster(id, |_, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-cluster");
    })
    .await
}

pub fn provision(plan: &str, ns: &str, params: Value) -> Value {
    json!({
        "service_id": "svc-cluster", "plan_id": plan,
        "organization_guid": "org", "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": params,
    })
}
