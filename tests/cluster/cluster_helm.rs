//! The helm engine against a real API server (tests/testenv), with the
//! broker running as the ServiceAccount `deploy/` creates and nothing more
//! than the RBAC `deploy/` grants: the example catalog's `mysql` and a
//! `wordpress` that uses it, on Helm 4 and Helm 3; a chart that needs more
//! RBAC fails with Kubernetes' own Forbidden message; a failed upgrade rolls
//! back; `namespace: instance` namespaces really go away.

use crate::common;

use crate::helpers::cluster_helm::*;
use common::cluster_calls::*;

/// Was example_catalog_lifecycle_with_helm4_as_the_deploy_service_account and
/// example_catalog_lifecycle_with_helm3_as_the_deploy_service_account (cases "4", "3").
#[tokio::test(flavor = "multi_thread")]
async fn example_catalog_lifecycle_with_helm4_and_3_as_the_deploy_service_account() {
    on_helm4_and_3(|helm, _| example_catalog_lifecycle(helm)).await;
}
