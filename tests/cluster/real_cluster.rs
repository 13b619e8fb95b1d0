//! The helm engine against a REAL Kubernetes cluster: provision, bind,
//! update, unbind and deprovision through the OSB API, checking the cluster
//! with kube-rs after every step.
//!
//! Runs only with `CHARTBROKER_REAL_CLUSTER=1` and `KUBECONFIG` naming a
//! readable kubeconfig (e.g. a kind or k3d cluster); otherwise each test
//! prints why it skipped and passes. Each run works in a namespace of its
//! own (`cb-rt-<random>`, labelled `chartbroker.io/test=real-cluster`) and
//! deletes it at the end, also when an assertion failed. Only documented
//! API behaviour is assumed: deletions are asynchronous (finalizers,
//! namespace termination), so "gone" is checked by polling, with a bound.
//!
//! The same suite also runs on every `cargo test` against the real API
//! server of tests/testenv (`runs_against_the_testenv_control_plane`), with
//! the broker as the deploy/ ServiceAccount, so it can't rot unnoticed on
//! machines without a cluster. What only kind/k3d add is a kubelet: there
//! Pods of the releases really start.

use crate::common;

use common::cluster::Cluster;

use crate::helpers::real_cluster::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_flows_on_a_real_cluster() {
    let Some(kubeconfig) = real_cluster() else {
        return;
    };
    let target = same_user(kubeconfig);
    in_test_namespace(&target.admin, |ns| {
        release_identity_in(&target, &ns);
        core_flows(&target, ns)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_per_instance_on_a_real_cluster() {
    let Some(kubeconfig) = real_cluster() else {
        return;
    };
    own_namespace_flow(&same_user(kubeconfig)).await;
}

/// The suite itself against the real API server of tests/testenv, the
/// broker as the deploy/ ServiceAccount (namespace RBAC included, which
/// `namespace: instance` needs): proves the code above works wherever
/// `cargo test` runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_against_the_testenv_control_plane() {
    let k = Cluster::admin().await;
    let id = k.install_broker(true).await;
    let target = Target {
        admin: k.kubeconfig.clone(),
        broker: id.kubeconfig.clone(),
        identity: id.identity_names(),
    };
    in_test_namespace(&target.admin, |ns| {
        k.grant_target(&id, &ns);
        core_flows(&target, ns)
    })
    .await;
    own_namespace_flow(&target).await;
    // The test's and the instance's namespaces came and went.
    let names: Vec<String> = k
        .list("/api/v1/namespaces")
        .await
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with("cb-rt")),
        "namespaces left behind: {names:?}"
    );
}
