//! chartbroker: an Open Service Broker API v2.17 server.
//!
//! The layout, by floors (`docs/architecture.md` walks a provision through
//! them; `layers.rs` is the test that holds every file to its floor):
//!
//! - **edge**: `osb` (the OSB HTTP API: routers, headers, auth, errors),
//!   `server` (listeners, TLS), `reload`, `runtime` (wires adapters to the
//!   core's ports, in named steps), `ui` (the read-only dashboard).
//! - **adapters**, one per outside system: `releases` (chart plans, the one
//!   render pipeline, the render and helm engines, the post-renderer),
//!   `helm` (the helm process), `charts` (remote chart sources), `upstream`
//!   (other OSB brokers), `store` (redb, Kubernetes Secrets), `cluster`
//!   (the Kubernetes API), `dbusers` (per-binding database users),
//!   `metrics`, `tls`.
//! - **core**: `broker` (validate → decide → commit → run, the ports in
//!   `broker::ports` that the adapters implement).
//! - **catalog**: `catalog` (services and plans as data, their loader,
//!   lint and schemas).
//! - **ground**: `credentials`, `names`, `template`, `manifest` (the strict
//!   YAML reader and the emitter of judged trees), `policy` (pure checks on
//!   those trees), `redact`, `duration`, `api_version`.
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
