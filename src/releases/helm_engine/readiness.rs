//! What a release waits for: while `helm --wait` runs, the release's
//! workloads are read every few seconds and what is not ready is shown as
//! the operation's progress, and named in the error if helm gives up.

use super::HelmEngine;
use crate::broker::ports::{BackendError, Checkpoint};
use crate::helm::HelmError;
use crate::releases::chart::Release;

/// How often the release's workloads are read while helm waits for them.
const READINESS_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// Workloads named in one description before "and N more".
const MAX_UNREADY_NAMED: usize = 5;

/// `waiting for deployment/x: 0 of 1 replicas ready; …`.
fn waiting_for(unready: &[String]) -> String {
    let mut named: Vec<&str> = unready
        .iter()
        .take(MAX_UNREADY_NAMED)
        .map(String::as_str)
        .collect();
    let more = unready.len().saturating_sub(MAX_UNREADY_NAMED);
    let tail = format!("and {more} more");
    if more > 0 {
        named.push(&tail);
    }
    format!("waiting for {}", named.join("; "))
}

impl HelmEngine {
    /// Runs `helm` (an upgrade with `--wait`) while reading the release's
    /// workloads every few seconds, telling `progress` what is not ready
    /// whenever that changes; returns helm's outcome and, if it failed,
    /// what was not ready then. Reading is best effort: a failed read only
    /// leaves the description as it was.
    pub(super) async fn watch_readiness<F>(
        &self,
        r: &Release,
        helm: F,
        progress: &dyn Checkpoint,
    ) -> (Result<String, HelmError>, Option<String>)
    where
        F: std::future::Future<Output = Result<String, HelmError>>,
    {
        tokio::pin!(helm);
        let mut shown: Option<String> = None;
        let mut tick = tokio::time::interval(READINESS_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once, before helm has created anything.
        tick.tick().await;
        let outcome = loop {
            tokio::select! {
                out = &mut helm => break out,
                _ = tick.tick() => {
                    let note = match self.kube.unready_workloads(&r.namespace, &r.name).await {
                        Ok(u) if u.is_empty() => continue,
                        Ok(u) => waiting_for(&u),
                        Err(e) => {
                            tracing::debug!(release = %r.name, error = %e, "reading readiness");
                            continue;
                        }
                    };
                    if shown.as_ref() != Some(&note) {
                        if let Err(e) = progress.note(&note).await {
                            tracing::debug!(release = %r.name, error = %e.message, "saving progress");
                        }
                        shown = Some(note);
                    }
                }
            }
        };
        if outcome.is_ok() {
            return (outcome, None);
        }
        // Read once more: helm gave up just now, that is the state to name.
        let unready = match self.kube.unready_workloads(&r.namespace, &r.name).await {
            Ok(u) if u.is_empty() => None,
            Ok(u) => Some(waiting_for(&u)),
            Err(_) => shown,
        };
        (outcome, unready)
    }

    /// A helm failure, plus what it was still waiting for (Helm 3 says only
    /// "context deadline exceeded").
    pub(super) fn fail_waiting(r: &Release, e: HelmError, unready: Option<String>) -> BackendError {
        let mut err = Self::fail(r, e);
        if let Some(u) = unready {
            err.message = format!("{} (gave up {u})", err.message);
        }
        err
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn waiting_names_five_workloads_then_counts() {
        let one = vec!["deployment/a: 0 of 1 replicas ready".to_owned()];
        assert_eq!(
            super::waiting_for(&one),
            "waiting for deployment/a: 0 of 1 replicas ready"
        );
        let seven: Vec<String> = (0..7)
            .map(|i| format!("statefulset/s{i}: 0 of 1 replicas ready"))
            .collect();
        let d = super::waiting_for(&seven);
        assert!(
            d.starts_with("waiting for statefulset/s0: 0 of 1 replicas ready; statefulset/s1"),
            "{d}"
        );
        assert!(
            d.ends_with("statefulset/s4: 0 of 1 replicas ready; and 2 more"),
            "{d}"
        );
    }
}
