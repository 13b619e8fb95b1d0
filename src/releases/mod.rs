//! Adapters behind the core's [`Backend`](crate::broker::ports::Backend) and
//! [`SecretSink`](crate::broker::ports::SecretSink) ports.
//!
//! # Layout
//! - [`chart`]: plans backed by a Helm chart; renders values and credentials
//!   from the catalog's templates and hands releases to a [`chart::ReleaseEngine`].
//! - [`render`]: the embedded release engine: `helm template` into a folder per
//!   instance, plus binding Secret manifests, for `kubectl apply` or GitOps.
//! - [`helm_engine`]: real Helm releases in a cluster.
//! - [`secret_sink`]: binding Secrets applied into the app's namespace.
//! - [`claims`]: who owns each namespace and name in the render tree.
//! - [`pipeline`]: `render_checked`, the one values → `helm template` →
//!   read → policy step both engines and `chartbroker render` run.
//! - [`inspect`]: what the dashboard reads of a release (revisions,
//!   applied manifests).
//! - [`preview`]: what `chartbroker render` shows for a plan.

mod atomic;
pub(crate) mod chart;
pub(crate) mod claims;
pub(crate) mod helm_engine;
pub(crate) mod inspect;
pub mod pipeline;
pub mod postrender;
pub mod preview;
mod recorded;
pub(crate) mod render;
pub(crate) mod secret_sink;
