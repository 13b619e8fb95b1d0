//! Adapters behind the core's [`Backend`](crate::broker::ports::Backend) and
//! [`SecretSink`](crate::broker::ports::SecretSink) ports.
//!
//! # Layout
//! - [`chart`]: plans backed by a Helm chart; renders values and credentials
//!   from the catalog's templates and hands releases to a [`chart::ReleaseEngine`].
//! - [`render`]: the embedded release engine: `helm template` into a folder per
//!   instance, plus binding Secret manifests, for `kubectl apply` or GitOps.
//! - [`helm_engine`]: real Helm releases in a cluster, and binding Secrets
//!   applied into the app's namespace.
//! - [`claims`]: who owns each namespace and name in the render tree.
//! - [`pipeline`]: `render_checked`, the one values → `helm template` →
//!   read → policy step both engines and `chartbroker render` run.
//! - [`preview`]: what `chartbroker render` shows for a plan.

mod atomic;
pub mod chart;
pub mod claims;
pub mod helm_engine;
pub mod pipeline;
pub mod postrender;
pub mod preview;
mod recorded;
pub mod render;
