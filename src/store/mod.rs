//! Adapters for the [`Store`](crate::broker::ports::Store) port.
//!
//! # Layout
//! - [`redb`]: the embedded single-file store (the default; one replica);
//!   `redb::group`: its store thread, committing concurrent writes together.
//! - [`kubernetes`]: Secrets in the broker's own namespace, shared by several
//!   replicas (compare-and-swap by resourceVersion; HA rides on etcd).
//! - [`memory`]: an in-memory twin for tests and benchmarks.
//! - [`lease`]: a Lease per replica of the Kubernetes store, watched by the
//!   others to take a dead replica's operations over.
//! - [`seal`]: AES-256-GCM encryption of every stored value; [`compact`]:
//!   the compressed form the embedded store seals.
//! - [`summaries`]: redb's index of instance summaries (the dashboard's table).
//! - [`health`]: records this broker cannot open (readiness, metrics).

pub(crate) mod compact;
pub mod health;
pub mod kubernetes;
pub(crate) mod lease;
pub mod memory;
pub mod redb;
pub mod seal;
mod summaries;
mod summary_filters;
