//! The helm engine against a real API server (tests/testenv), with the
//! broker running as the ServiceAccount `deploy/` creates and nothing more
//! than the RBAC `deploy/` grants: the example catalog's `mysql` and a
//! `wordpress` that uses it, on Helm 4 and Helm 3; a chart that needs more
//! RBAC fails with Kubernetes' own Forbidden message; a failed upgrade rolls
//! back; `namespace: instance` namespaces really go away.

use crate::helpers::cluster_helm::*;

crate::helm4_and_3_tests!(
    example_catalog_lifecycle_with_helm4_as_the_deploy_service_account,
    example_catalog_lifecycle_with_helm3_as_the_deploy_service_account,
    |helm, _| example_catalog_lifecycle(helm)
);
