//! Helpers of the tests in tests/cluster/cluster_store.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use common::cluster::BrokerIdentity;
use common::*;
use serde_json::{Value, json};

use chartbroker::runtime::StoreKind;

pub fn provision(ns: &str, message: &str) -> Value {
    json!({
        "service_id": "svc-cluster", "plan_id": "plan-tiny",
        "organization_guid": "org", "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": {"message": message},
    })
}

pub async fn replica(id: &BrokerIdentity, key: &str) -> TestBroker {
    TestBroker::on_cluster(id, |_, cfg| {
        // These requests carry no originating identity; authorization has its own suites.
        cfg.subject_access_review = false;
        cfg.store = StoreKind::Kube;
        cfg.store_key = Some(key.to_string());
        cfg.catalog_dir = fixtures().join("catalog-cluster");
    })
    .await
}

/// `chartbroker_store_list_requests_total{selects}` of the broker on `port`.
pub async fn store_lists(port: u16, selects: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("chartbroker_store_list_requests_total{{selects=\"{selects}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}
