//! The edge tier's own helpers, one module per test module (helpers
//! shared between tiers are in tests/common/mod.rs and its modules).

pub mod catalog_change;
pub mod cli;
pub mod delete_example_catalog;
pub mod deploy_manifests;
pub mod edge_credentials;
pub mod edge_limits;
pub mod group_commit_crash;
pub mod hostile_output;
pub mod observability;
pub mod osb_bindings;
pub mod osb_catalog;
pub mod osb_conformance_suites;
pub mod osb_edge;
pub mod osb_instances;
pub mod osb_versions;
pub mod platform_interop;
pub mod restart;
pub mod smoke;
pub mod tls;
pub mod ui;
pub mod ui_scale;
