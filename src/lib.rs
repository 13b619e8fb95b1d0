//! chartbroker: an Open Service Broker API v2.17 server.
pub mod backends;
pub mod broker;
pub mod catalog;
pub mod charts;
pub mod dbusers;
pub mod helm;
pub mod kube;
pub mod metrics;
pub mod osb;
pub mod policy;
pub mod postrender;
pub mod runtime;
pub mod server;
pub mod store;
pub mod template;
pub mod tls;
pub mod upstream;
