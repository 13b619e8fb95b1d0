//! chartbroker: an Open Service Broker API v2.17 server.
pub mod api_version;
pub mod broker;
pub mod catalog;
pub mod charts;
pub mod cluster;
pub mod credentials;
pub mod dbusers;
pub mod duration;
pub mod helm;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod osb;
pub mod policy;
pub mod redact;
pub mod releases;
pub mod reload;
pub mod runtime;
pub mod server;
pub mod store;
pub mod template;
pub mod tls;
pub mod ui;
pub mod upstream;

#[cfg(test)]
mod layers;
