//! The cluster tier's own helpers, one module per test module (helpers
//! shared between tiers are in tests/common/mod.rs and its modules).

pub mod chart_sources;
pub mod cluster_helm;
pub mod cluster_rbac;
pub mod cluster_store;
pub mod delete_faults_helm;
pub mod delete_faults_killed;
pub mod dependencies;
pub mod deploy_chart;
pub mod helm_engine;
pub mod helm_faults;
pub mod kube_scale;
pub mod kubectl_apply;
pub mod platform_provider_osb;
pub mod policy;
pub mod postrender;
pub mod real_cluster;
pub mod registration;
pub mod tenant_isolation;
pub mod tenant_isolation_platform_trust;
pub mod tenant_isolation_release_identity;
pub mod ui_cluster;
