//! The one render pipeline every path to manifests goes through: values →
//! local chart → `helm template` → [`crate::manifest::read`] → policy →
//! judged documents. The render engine writes them (emitted, never helm's
//! bytes), the helm engine checks them before helm applies anything, and
//! `chartbroker render` previews them: one verdict everywhere.

use std::fmt;

use super::chart::Release;
use crate::broker::ports::BackendError;
use crate::helm::{Helm, HelmError, redact};
use crate::manifest::{self, Doc};
use crate::policy::{self, Violations};

/// Why a release has no judged documents.
#[derive(Debug)]
pub enum RenderError {
    /// The chart could not be made local (a remote source).
    Chart(String),
    /// `helm template` failed.
    Helm(HelmError),
    /// The policy (or the manifest reader) refused what helm rendered,
    /// which is kept for a preview to show.
    Refused {
        /// Helm's output as it was.
        manifests: String,
        /// Every reason.
        violations: Violations,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Chart(e) => f.write_str(e),
            RenderError::Helm(e) => e.fmt(f),
            RenderError::Refused { violations, .. } => {
                write!(f, "policy rejected the chart: {violations}")
            }
        }
    }
}

impl std::error::Error for RenderError {}

impl RenderError {
    /// The failure as an operation reports it, generated secrets redacted.
    pub(crate) fn backend(&self, r: &Release) -> BackendError {
        BackendError::new(redact(&self.to_string(), &r.redact))
    }
}

/// Reads `manifests` and judges them for a release in `namespace`.
pub(crate) fn judge(
    manifests: String,
    namespace: &str,
    policy: &policy::Policy,
) -> Result<Vec<Doc>, RenderError> {
    let checked = manifest::read(&manifests)
        .map_err(|e| Violations(vec![policy::unreadable(&e, namespace)]))
        .and_then(|docs| policy::check_docs(&docs, namespace, policy).map(|()| docs));
    checked.map_err(|violations| RenderError::Refused {
        manifests,
        violations,
    })
}

/// Renders `r` (its chart already local) with `helm template` and judges
/// the result with the plan's policy.
pub(crate) async fn render_checked(helm: &Helm, r: &Release) -> Result<Vec<Doc>, RenderError> {
    let manifests = helm
        .template(
            &r.name,
            &r.chart,
            &r.namespace,
            &r.values,
            r.max_manifest_bytes,
        )
        .await
        .map_err(RenderError::Helm)?;
    judge(manifests, &r.namespace, &r.policy)
}
