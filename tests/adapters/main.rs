//! Adapters tier: the broker against one real outside part that is not the
//! control plane — databases, upstream OSB brokers, the fake Kubernetes API
//! (tests/fake-kube), a browser, Go's YAML decoders. Rule: tests/README.md.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/tiers/adapters/mod.rs"]
mod helpers;

mod authorization;
mod dbusers;
mod delete_faults;
mod kube_store;
mod reload;
mod replicas;
mod ui_browser;
mod ui_browser_detail;
mod ui_detail;
mod upstream;
mod upstream_faults;
mod upstream_requests;
mod yaml_differential;
