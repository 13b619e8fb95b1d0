//! Helpers of the tests in tests/cluster/cluster_rbac/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use common::cluster::{BrokerIdentity, Cluster, kubectl};
use common::cluster_calls::cluster_provision;
use common::*;
use serde_json::Value;

pub async fn broker(id: &BrokerIdentity) -> TestBroker {
    TestBroker::on_cluster(id, |_, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-cluster");
    })
    .await
}

/// A broker installed from the chart, a namespace it may install into that
/// `user` may edit, and a broker running as it.
pub async fn tenant_broker(user: &str) -> (Cluster, BrokerIdentity, String, TestBroker) {
    let (k, id, ns) = Cluster::with_tenant(user, false).await;
    let b = broker(&id).await;
    (k, id, ns, b)
}

/// [`tenant_broker`] with instance `id` of `plan` provisioned by `user`.
pub async fn tenant_with_instance(
    user: &str,
    id: &str,
    plan: &str,
    params: Value,
) -> (Cluster, BrokerIdentity, String, TestBroker) {
    let (k, identity, ns, b) = tenant_broker(user).await;
    let body = cluster_provision(plan, &ns, params);
    b.by(user).provisioned(id, body).await;
    (k, identity, ns, b)
}

/// `kubectl auth can-i <args> --as <who>`, as the admin: the answer's
/// first line (`yes`/`no`) and the whole output.
pub fn can_i(k: &Cluster, who: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["auth", "can-i"];
    all.extend(args);
    all.extend(["--as", who]);
    let (_, out) = kubectl(&k.kubeconfig, &all, "");
    (out.lines().next().unwrap_or("").to_string(), out)
}
