//! The adapters tier's own helpers, one module per test module (helpers
//! shared between tiers are in tests/common/mod.rs and its modules).

pub mod authorization;
pub mod dbusers;
pub mod delete_faults;
pub mod kube_store;
pub mod reload;
pub mod replicas;
pub mod ui_browser;
pub mod ui_browser_detail;
pub mod ui_detail;
pub mod upstream;
pub mod upstream_faults;
pub mod upstream_requests;
pub mod yaml_differential;
