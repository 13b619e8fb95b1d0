//! Sending a create or a remove and settling its outcome: polled, retried,
//! or mitigated where it may have left something upstream.

use super::*;

impl Run<'_> {
    /// Provision and bind: sends the create unless a checkpoint says it was
    /// sent, polls an accepted one, and mitigates whatever a create that did
    /// not succeed may have left upstream. `Some(body)` when the upstream
    /// answered synchronously; `None` once an accepted create succeeded.
    pub(crate) async fn create_settled(
        &self,
        target: Target<'_>,
        what: &str,
        body: impl FnOnce() -> Value,
    ) -> Result<Option<Map<String, Value>>, BackendError> {
        let operation = match self.progress.clone() {
            Some(Progress::OrphanMitigation { reason, .. }) => {
                return Err(self.mitigate(target, reason).await);
            }
            Some(Progress::Polling { operation, .. }) => operation,
            None => match self.create(target, &body()).await {
                Created::Done(m) => return Ok(Some(m)),
                Created::Rejected(msg) => return Err(BackendError::new(msg)),
                Created::Orphan(reason) => return Err(self.mitigate(target, reason).await),
                Created::Accepted(operation) => {
                    self.save(self.polling(operation.clone())).await;
                    operation
                }
            },
        };
        let until = self.create_poll_until();
        let failure = match self
            .poll(target, operation.as_deref(), true, false, until)
            .await
        {
            Settled::Succeeded => return Ok(None),
            Settled::Failed(lo) => upstream_failed(self.broker(), what, &lo),
            Settled::TimedOut(last) => timed_out(self.broker(), what, &last),
        };
        Err(self.mitigate(target, failure).await)
    }

    /// Sends a create (provision or bind PUT) and classifies the answer per
    /// the orphan mitigation table.
    pub(super) async fn create(&self, target: Target<'_>, body: &Value) -> Created {
        let res = self
            .send(
                Method::PUT,
                target.endpoint(),
                &[("accepts_incomplete", "true")],
                Some(body),
            )
            .await;
        let broker = self.broker();
        let r = match res {
            Err(e) if e.may_have_acted() => return Created::Orphan(e.to_string()),
            Err(e) => {
                return Created::Rejected(format!("{e}; nothing was created upstream"));
            }
            Ok(r) => r,
        };
        let malformed = |why: String| UpstreamError::InvalidJson {
            broker: broker.to_owned(),
            status: r.status,
            detail: why,
        };
        match r.status {
            200 => match r.object() {
                Ok(m) => Created::Done(m.clone()),
                Err(why) => Created::Rejected(malformed(why).to_string()),
            },
            201 => match r.object() {
                Ok(m) => Created::Done(m.clone()),
                Err(why) => Created::Orphan(malformed(why).to_string()),
            },
            202 => match r.object() {
                Ok(_) => Created::Accepted(operation_of(&r)),
                Err(why) => Created::Orphan(malformed(why).to_string()),
            },
            400..=499 => Created::Rejected(rejected(&r, broker, target)),
            _ => Created::Orphan(status_error(&r, broker).to_string()),
        }
    }
}

/// Exponential backoff, overridden by `Retry-After`.
pub(super) struct Delay {
    pub(super) next: Duration,
    pub(super) max: Duration,
}

impl Delay {
    pub(crate) fn new(b: Backoff) -> Self {
        Delay {
            next: b.initial,
            max: b.max,
        }
    }

    /// The next wait: the backoff step, or longer when the upstream's
    /// `Retry-After` asks for it (never sooner than it asked).
    pub(crate) fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let d = match retry_after {
            Some(r) => self.next.max(r.min(MAX_RETRY_AFTER)),
            None => self.next,
        };
        self.next = (self.next * 2).min(self.max);
        d
    }
}

impl Run<'_> {
    /// Deprovision or unbind: 200 and 410 are success (410: the upstream has
    /// already forgotten it), 202 is polled, transient failures retried.
    pub(crate) async fn remove(&self, target: Target<'_>) -> Result<(), BackendError> {
        let broker = self.broker().to_owned();
        let operation = match self.progress.clone() {
            Some(Progress::Polling { operation, .. }) => operation,
            _ => {
                let query = [
                    ("service_id", self.up.service_id.as_str()),
                    ("plan_id", self.up.plan_id.as_str()),
                    ("accepts_incomplete", "true"),
                ];
                let res = self
                    .send_retrying(
                        Method::DELETE,
                        target.endpoint(),
                        &query,
                        None,
                        &[200, 202, 410],
                    )
                    .await;
                match res {
                    // A DELETE's 200 means gone, whatever the body says.
                    Ok(r) if r.status == 200 => return Ok(()),
                    Ok(r) if r.status == 410 => {
                        tracing::info!(upstream = %broker, step = %self.step,
                            "the upstream broker had already forgotten it (410)");
                        return Ok(());
                    }
                    Ok(r) if r.status == 202 => {
                        let operation = operation_of(&r);
                        self.save(self.polling(operation.clone())).await;
                        operation
                    }
                    Ok(r) if (400..500).contains(&r.status) => {
                        return Err(BackendError::new(rejected(&r, &broker, target)));
                    }
                    Ok(r) => {
                        return Err(BackendError::new(format!(
                            "{}; the {} may still exist upstream, {} again to retry",
                            status_error(&r, &broker),
                            target.noun(),
                            target.remove_verb()
                        )));
                    }
                    Err(e) => {
                        return Err(BackendError::new(format!(
                            "{e}; the {} may still exist upstream, {} again to retry",
                            target.noun(),
                            target.remove_verb()
                        )));
                    }
                }
            }
        };
        match self
            .poll(target, operation.as_deref(), true, true, self.end())
            .await
        {
            Settled::Succeeded => Ok(()),
            Settled::Failed(lo) => Err(BackendError {
                message: upstream_failed(&broker, target.remove_verb(), &lo),
                instance_usable: lo.instance_usable,
                update_repeatable: None,
                left_nothing: false,
            }),
            Settled::TimedOut(last) => Err(BackendError::new(timed_out(
                &broker,
                target.remove_verb(),
                &last,
            ))),
        }
    }
}
