//! The helm engine against a real API server (tests/testenv), with the
//! broker running as the ServiceAccount `deploy/` creates and nothing more
//! than the RBAC `deploy/` grants: the example catalog's `mysql` and a
//! `wordpress` that uses it, on Helm 4 and Helm 3; a chart that needs more
//! RBAC fails with Kubernetes' own Forbidden message; a failed upgrade rolls
//! back; `namespace: instance` namespaces really go away.

use crate::common;

use crate::helpers::cluster_helm::*;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn example_catalog_lifecycle_with_helm4_as_the_deploy_service_account() {
    example_catalog_lifecycle(helm_bin()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn example_catalog_lifecycle_with_helm3_as_the_deploy_service_account() {
    example_catalog_lifecycle(helm3_bin()).await;
}
