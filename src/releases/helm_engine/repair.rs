//! Repair and rollback: a release a killed helm left `pending-*` is brought
//! back to a state helm accepts, and a failed upgrade is rolled back to the
//! last good revision.

use std::ffi::OsString;

use serde_json::Value;

use super::HelmEngine;
use crate::broker::ports::BackendError;
use crate::helm::{Capture, HelmError};
use crate::releases::chart::Release;

impl HelmEngine {
    /// `helm status -o json`: the release's status, or None if there is none.
    async fn status(&self, r: &Release) -> Result<Option<String>, BackendError> {
        let mut args: Vec<OsString> = vec!["status".into()];
        args.extend(Self::ns_args(r));
        args.extend(["-o".into(), "json".into()]);
        // The status holds the rendered manifest, which the plan may allow
        // to be larger than the default cap.
        let cap = 2 * r
            .max_manifest_bytes
            .max(crate::helm::DEFAULT_MAX_MANIFEST_BYTES);
        let release = self.as_release(r).await?;
        match release
            .helm
            .run_with("status", &args, None, Capture::Upto(cap))
            .await
        {
            Ok(out) => {
                let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
                Ok(v["info"]["status"].as_str().map(str::to_string))
            }
            Err(HelmError::Failed { stderr, .. }) if stderr.contains("not found") => Ok(None),
            Err(e) => Err(Self::fail(r, e)),
        }
    }

    /// The newest revision whose status shows it was deployed successfully.
    pub(super) async fn last_good_revision(
        &self,
        r: &Release,
    ) -> Result<Option<u64>, BackendError> {
        let mut args: Vec<OsString> = vec!["history".into()];
        args.extend(Self::ns_args(r));
        args.extend(["-o".into(), "json".into(), "--max".into(), "64".into()]);
        let out = self
            .as_release(r)
            .await?
            .helm
            .run("history", &args, None)
            .await
            .map_err(|e| Self::fail(r, e))?;
        let revisions: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
        Ok(revisions
            .iter()
            .filter(|h| matches!(h["status"].as_str(), Some("deployed" | "superseded")))
            .filter_map(|h| h["revision"].as_u64())
            .max())
    }

    pub(super) async fn rollback_to(&self, r: &Release, revision: u64) -> Result<(), BackendError> {
        let mut args: Vec<OsString> = vec!["rollback".into()];
        args.extend(Self::ns_args(r));
        args.push(revision.to_string().into());
        args.extend(self.no_hooks());
        self.as_release(r)
            .await?
            .helm
            .run("rollback", &args, None)
            .await
            .map(|_| ())
            .map_err(|e| Self::fail(r, e))
    }

    /// Brings a release a killed helm left `pending-*` back to a state helm
    /// accepts: a pending first install is removed, a pending upgrade or
    /// rollback is rolled back to the last good revision.
    pub(super) async fn repair(&self, r: &Release) -> Result<(), BackendError> {
        match self.status(r).await?.as_deref() {
            Some("pending-install") | Some("failed")
                if self.last_good_revision(r).await?.is_none() =>
            {
                tracing::warn!(release = %r.name, namespace = %r.namespace,
                    "removing a release that never installed before installing again");
                self.uninstall_release(r).await
            }
            Some("pending-upgrade") | Some("pending-rollback") => {
                if let Some(rev) = self.last_good_revision(r).await? {
                    tracing::warn!(release = %r.name, revision = rev,
                        "rolling back a release an interrupted helm left pending");
                    self.rollback_to(r, rev).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
