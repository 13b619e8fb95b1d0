//! chartbroker: an Open Service Broker API v2.17 server.
pub(crate) mod api_version;
pub mod broker;
pub mod catalog;
pub(crate) mod charts;
pub mod cluster;
pub(crate) mod credentials;
pub mod dbusers;
pub mod duration;
pub mod helm;
pub mod manifest;
pub(crate) mod metrics;
pub(crate) mod names;
pub(crate) mod osb;
pub mod policy;
pub mod redact;
pub mod releases;
pub mod reload;
pub mod runtime;
pub mod server;
pub mod store;
pub(crate) mod template;
pub mod tls;
pub mod ui;
pub mod upstream;

#[cfg(test)]
mod layers;
