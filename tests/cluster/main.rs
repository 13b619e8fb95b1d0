//! Cluster tier: everything that starts the real control plane
//! (tests/testenv, one per process, shared by every module: each test works
//! in names of its own). Rule: tests/README.md.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/tiers/cluster/mod.rs"]
mod helpers;

mod chart_sources;
mod cluster_helm;
mod cluster_rbac;
mod cluster_store;
mod delete_faults_helm;
mod delete_faults_killed;
mod dependencies;
mod deploy_chart;
mod helm_engine;
mod helm_faults;
mod kube_scale;
mod kubectl_apply;
mod platform_provider_osb;
mod policy;
mod postrender;
mod real_cluster;
mod registration;
mod tenant_isolation;
mod ui_cluster;
