//! One upstream call in progress: the operation's deadline, checkpoints,
//! retries with backoff and `Retry-After`, polling `last_operation`, and
//! orphan mitigation. The [`Backend`](crate::broker::ports::Backend) impl in
//! the parent module decides what to send; this is how it is sent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::reply::{
    LastOp, Target, describe, is_concurrency_error, last_operation, operation_of, rejected,
    status_error, timed_out, upstream_failed,
};
use crate::broker::model::HasOperations;
use crate::broker::ports::{BackendError, Checkpoint, InstanceCtx};
use crate::catalog::UpstreamPlan;
use crate::upstream::client::{Client, Endpoint, Identity, Reply, UpstreamError};
use crate::upstream::config::Backoff;
mod settle;
use settle::*;

/// Longest `Retry-After` honoured; a longer one is treated as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Deadline of work whose operation carries none (should not happen).
const FALLBACK_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Time kept before the operation's deadline to fail cleanly.
const FINAL_MARGIN: Duration = Duration::from_secs(1);

// === progress ===

/// What the backend checkpoints into the running operation. `step` names
/// the call that saved it, because a deprovision's checkpoint is also what
/// the unbinds it runs first see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub(super) enum Progress {
    /// The upstream answered 202; poll its `last_operation`.
    Polling {
        step: String,
        upstream: String,
        operation: Option<String>,
    },
    /// The request may have left something upstream; remove it.
    OrphanMitigation {
        step: String,
        upstream: String,
        reason: String,
    },
}

impl Progress {
    fn step(&self) -> &str {
        match self {
            Progress::Polling { step, .. } | Progress::OrphanMitigation { step, .. } => step,
        }
    }
}

/// How an upstream `last_operation` poll ended.
pub(super) enum Settled {
    /// `succeeded`, or 410 Gone while deleting.
    Succeeded,
    Failed(LastOp),
    /// Out of time; the last thing the upstream said.
    TimedOut(String),
}

/// How a create (PUT) answer is to be taken.
enum Created {
    /// 200/201: done; the body.
    Done(Map<String, Value>),
    /// 202: poll this operation.
    Accepted(Option<String>),
    /// Nothing was created upstream: fail with this.
    Rejected(String),
    /// Something may have been created upstream: mitigate, then fail.
    Orphan(String),
}

// === one running call ===

/// One backend call: the upstream, the operation's deadline and where to
/// checkpoint.
pub(super) struct Run<'a> {
    pub(super) client: &'a Client,
    pub(super) up: &'a UpstreamPlan,
    pub(super) identity: Identity<'a>,
    pub(super) checkpoint: &'a dyn Checkpoint,
    pub(super) progress: Option<Progress>,
    pub(super) step: String,
    pub(super) started: Duration,
    pub(super) deadline: Duration,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl<'a> Run<'a> {
    pub(super) fn new(
        client: &'a Client,
        up: &'a UpstreamPlan,
        ctx: &InstanceCtx<'a>,
        own: Option<&'a crate::broker::model::Operation>,
        step: String,
    ) -> Self {
        let op = own.or_else(|| ctx.instance.current());
        let (started, deadline) = match op {
            Some(op) => (
                Duration::from_secs(op.started_at),
                Duration::from_secs(op.deadline),
            ),
            None => (now(), now() + FALLBACK_DEADLINE),
        };
        let progress = ctx
            .progress
            .and_then(|p| serde_json::from_value::<Progress>(p.clone()).ok())
            .filter(|p| p.step() == step);
        Run {
            client,
            up,
            identity: Identity {
                originating: ctx.originating_identity,
                request: ctx.request_identity,
            },
            checkpoint: ctx.checkpoint,
            progress,
            step,
            started,
            deadline,
        }
    }

    /// The run of a binding's `verb` ("bind", "unbind") under the binding's
    /// own operation.
    pub(super) fn for_binding(
        client: &'a Client,
        up: &'a UpstreamPlan,
        ctx: &crate::broker::ports::BindingCtx<'a>,
        verb: &str,
    ) -> Self {
        let b = ctx.binding;
        Run::new(
            client,
            up,
            &ctx.instance,
            b.current(),
            format!("{verb} binding {}", b.id),
        )
    }

    pub(super) fn broker(&self) -> &str {
        self.client.name()
    }

    fn backoff(&self) -> Backoff {
        self.client.config().poll
    }

    /// When polling a create must stop, leaving time to mitigate an orphan:
    /// a quarter of the operation's time, at most two timeouts and 10 s, at
    /// least 2 s.
    fn create_poll_until(&self) -> Duration {
        let total = self.deadline.saturating_sub(self.started);
        let reserve = (total / 4)
            .min(self.client.config().timeout * 2 + Duration::from_secs(10))
            .max(FINAL_MARGIN * 2);
        self.deadline.saturating_sub(reserve)
    }

    pub(super) fn end(&self) -> Duration {
        self.deadline.saturating_sub(FINAL_MARGIN)
    }

    pub(super) async fn save(&self, progress: Progress) {
        let value = serde_json::to_value(&progress).expect("progress serializes");
        if let Err(e) = self.checkpoint.save(value).await {
            // Losing the checkpoint only means a restart repeats the request,
            // which the upstream answers idempotently.
            tracing::warn!(upstream = %self.broker(), step = %self.step, error = %e.message,
                "could not checkpoint upstream progress");
        }
    }

    pub(super) fn polling(&self, operation: Option<String>) -> Progress {
        Progress::Polling {
            step: self.step.clone(),
            upstream: self.broker().to_owned(),
            operation,
        }
    }

    /// Sleeps `d`, but not past `until`; false when no time is left.
    async fn pause(&self, d: Duration, until: Duration) -> bool {
        let left = until.saturating_sub(now());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(d.min(left)).await;
        true
    }

    async fn send(
        &self,
        method: Method,
        endpoint: Endpoint<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, UpstreamError> {
        self.client
            .send(method, endpoint, query, body, self.identity)
            .await
    }

    /// Sends a request whose repetition is harmless (update, delete, fetch),
    /// again after transient failures, at most `retries` more times.
    /// Statuses in `ok` are final; other 2xx, 5xx, 408, 429 and 422
    /// ConcurrencyError are transient.
    pub(super) async fn send_retrying(
        &self,
        method: Method,
        endpoint: Endpoint<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Reply, UpstreamError> {
        let mut delay = Delay::new(self.backoff());
        let mut attempt = 0;
        loop {
            let res = self.send(method.clone(), endpoint, query, body).await;
            let (transient, retry_after) = match &res {
                Err(e) => (e.is_transient(), None),
                Ok(r) if ok.contains(&r.status) => (false, None),
                Ok(r) => (
                    (200..300).contains(&r.status)
                        || r.status >= 500
                        || r.status == 408
                        || r.status == 429
                        || is_concurrency_error(r),
                    r.retry_after,
                ),
            };
            if !transient || attempt >= self.client.config().retries {
                return res;
            }
            attempt += 1;
            tracing::info!(upstream = %self.broker(), step = %self.step, attempt,
                outcome = %describe(&res, self.broker()), "retrying upstream request");
            if !self.pause(delay.next(retry_after), self.end()).await {
                return res;
            }
        }
    }

    /// Polls `last_operation` until the upstream settles it or `until`.
    pub(super) async fn poll(
        &self,
        target: Target<'_>,
        operation: Option<&str>,
        plan_id: bool,
        deleting: bool,
        until: Duration,
    ) -> Settled {
        let mut query = vec![("service_id", self.up.service_id.as_str())];
        if plan_id {
            query.push(("plan_id", self.up.plan_id.as_str()));
        }
        if let Some(op) = operation.filter(|o| !o.is_empty()) {
            query.push(("operation", op));
        }
        let mut delay = Delay::new(self.backoff());
        loop {
            let last;
            let res = self
                .send(Method::GET, target.last_operation(), &query, None)
                .await;
            let mut retry_after = None;
            match res {
                Ok(r) if r.status == 200 => {
                    retry_after = r.retry_after;
                    match last_operation(&r) {
                        Ok((state, lo)) => match state.as_str() {
                            "succeeded" => return Settled::Succeeded,
                            "failed" => return Settled::Failed(lo),
                            "in progress" => {
                                last = lo
                                    .description
                                    .map(|d| format!("in progress: {d}"))
                                    .unwrap_or_else(|| "in progress".into())
                            }
                            other => {
                                last = format!("last_operation reported unknown state {other:?}")
                            }
                        },
                        Err(why) => {
                            last = format!(
                                "upstream broker {} answered last_operation with a malformed body: {why}",
                                self.broker()
                            )
                        }
                    }
                }
                Ok(r) if r.status == 410 && deleting => return Settled::Succeeded,
                Ok(r) => {
                    retry_after = r.retry_after;
                    last = status_error(&r, self.broker()).to_string();
                }
                Err(e) => last = e.to_string(),
            }
            if !self.pause(delay.next(retry_after), until).await {
                return Settled::TimedOut(last);
            }
        }
    }

    /// Removes what a failed create may have left upstream, retrying until
    /// the upstream confirms or the operation's deadline; returns the
    /// operation's failure, naming both the cause and the mitigation.
    pub(super) async fn mitigate(&self, target: Target<'_>, reason: String) -> BackendError {
        tracing::warn!(upstream = %self.broker(), step = %self.step, reason = %reason,
            "starting orphan mitigation upstream");
        self.save(Progress::OrphanMitigation {
            step: self.step.clone(),
            upstream: self.broker().to_owned(),
            reason: reason.clone(),
        })
        .await;
        let query = [
            ("service_id", self.up.service_id.as_str()),
            ("plan_id", self.up.plan_id.as_str()),
            ("accepts_incomplete", "true"),
        ];
        let mut delay = Delay::new(self.backoff());
        let mut attempts = 0u32;
        let last = loop {
            attempts += 1;
            let res = self
                .send(Method::DELETE, target.endpoint(), &query, None)
                .await;
            let mut retry_after = None;
            let last = match res {
                Ok(r) if r.status == 200 || r.status == 410 => break None,
                Ok(r) if r.status == 202 => {
                    let op = operation_of(&r);
                    match self
                        .poll(target, op.as_deref(), true, true, self.end())
                        .await
                    {
                        Settled::Succeeded => break None,
                        Settled::Failed(lo) => format!(
                            "the upstream {} failed: {}",
                            target.remove_verb(),
                            lo.description.unwrap_or_else(|| "no description".into())
                        ),
                        Settled::TimedOut(last) => break Some(last),
                    }
                }
                Ok(r) => {
                    retry_after = r.retry_after;
                    status_error(&r, self.broker()).to_string()
                }
                Err(e) => e.to_string(),
            };
            tracing::warn!(upstream = %self.broker(), step = %self.step, attempts, last = %last,
                "orphan mitigation not confirmed yet; retrying");
            if !self.pause(delay.next(retry_after), self.end()).await {
                break Some(last);
            }
        };
        match last {
            None => {
                tracing::warn!(upstream = %self.broker(), step = %self.step, attempts,
                    "orphan mitigation confirmed by the upstream broker");
                BackendError::new(format!(
                    "{reason}; the broker then ran {} upstream to remove what may have been created (orphan mitigation), and upstream broker {} confirmed it",
                    target.remove_verb(),
                    self.broker()
                ))
            }
            Some(last) => {
                tracing::error!(upstream = %self.broker(), step = %self.step, attempts, last = %last,
                    "orphan mitigation could not be confirmed before the deadline");
                BackendError::new(format!(
                    "{reason}; orphan mitigation ({} upstream) was not confirmed by upstream broker {} before the operation's deadline after {attempts} attempt(s) (last answer: {last}); {} this {} to retry",
                    target.remove_verb(),
                    self.broker(),
                    target.remove_verb(),
                    target.noun()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        let mut d = Delay::new(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(300),
        });
        assert_eq!(d.next(None), Duration::from_millis(100));
        assert_eq!(d.next(None), Duration::from_millis(200));
        assert_eq!(d.next(Some(Duration::from_secs(5))), Duration::from_secs(5));
        assert_eq!(d.next(Some(Duration::ZERO)), Duration::from_millis(300));
        assert_eq!(d.next(None), Duration::from_millis(300));
        assert_eq!(d.next(Some(Duration::from_secs(3600))), MAX_RETRY_AFTER);
    }

    #[test]
    fn progress_round_trips_with_its_step() {
        let p = Progress::Polling {
            step: "provision instance".into(),
            upstream: "cloud".into(),
            operation: Some("op-1".into()),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["phase"], "polling");
        assert_eq!(serde_json::from_value::<Progress>(v).unwrap(), p);
        let o = serde_json::to_value(Progress::OrphanMitigation {
            step: "bind binding b".into(),
            upstream: "cloud".into(),
            reason: "r".into(),
        })
        .unwrap();
        assert_eq!(o["phase"], "orphan-mitigation");
    }
}
