//! Edge tier: the broker alone — its router in-process or its binary, the
//! render engine, offline tools (helm template, promtool, schemathesis); no
//! Kubernetes API, database or upstream broker. Rule: tests/README.md.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/tiers/edge/mod.rs"]
mod helpers;

mod catalog_change;
mod cli;
mod concurrency;
mod conformance;
mod delete_example_catalog;
mod deploy_manifests;
mod edge_credentials;
mod edge_limits;
mod group_commit_crash;
mod hostile_output;
mod layout;
mod observability;
mod osb_bindings;
mod osb_catalog;
mod osb_conformance_suites;
mod osb_edge;
mod osb_instances;
mod osb_versions;
mod platform_interop;
mod restart;
mod smoke;
mod tls;
mod ui;
mod ui_scale;
