//! Runs operations to completion ([`running`]) and settles the ones a
//! previous process, or a replica that died, left in progress
//! ([`recovery`]). Instances and bindings go through the same paths: one
//! finisher records every outcome (with its metric and log line), one
//! recovery loop takes over or gives up.
//!
//! Every operation runs in its own task, even a synchronous one: the HTTP
//! handler only awaits it, so a platform that hangs up mid-request cannot
//! cancel work half-way.

mod cleanup;
mod recovery;
mod running;

use std::time::Duration;

use tokio::task::JoinHandle;

use super::cas::Decision;
use super::model::{
    Binding, BindingState, Instance, InstanceState, OpKind, OpState, Operation, UpdateTarget,
};
use super::ports::{BackendError, Checkpoint};
use super::record::Record;
use super::{Broker, BrokerError, Result, binding_key, now};

pub use recovery::TOMBSTONE_TTL_SECS;
pub(super) use running::Running;

/// A record operations run on: an instance or a binding.
trait Tracked: Record + Send + 'static {
    /// The record after its operation `kind` failed.
    fn failed(&mut self, kind: OpKind);
    /// Starts running its operation `op_id` in the background.
    fn spawn(&self, broker: &Broker, op_id: String) -> JoinHandle<Result<Operation>>;
}

impl Tracked for Instance {
    fn failed(&mut self, kind: OpKind) {
        if kind == OpKind::Provision {
            self.state = InstanceState::ProvisionFailed;
        }
    }
    fn spawn(&self, broker: &Broker, op_id: String) -> JoinHandle<Result<Operation>> {
        broker.spawn_instance_op(self.id.clone(), op_id)
    }
}

impl Tracked for Binding {
    fn failed(&mut self, kind: OpKind) {
        if kind == OpKind::Bind {
            self.state = BindingState::BindFailed;
        }
    }
    fn spawn(&self, broker: &Broker, op_id: String) -> JoinHandle<Result<Operation>> {
        broker.spawn_binding_op(self.instance_id.clone(), self.id.clone(), op_id)
    }
}

impl Broker {
    /// Records the end of operation `op_id` of record `key`: settles the
    /// operation with `result` and lets `apply` change the record (the new
    /// plan of an update, a binding's credentials). An operation already
    /// settled (by another replica) is returned as it is.
    async fn finish_op<R: Tracked>(
        &self,
        key: &str,
        op_id: &str,
        result: std::result::Result<(), BackendError>,
        apply: impl Fn(&mut R, OpKind, Option<UpdateTarget>),
    ) -> Result<Operation> {
        let (finished, wrote) = self
            .compare_and_swap(key, |record: Option<R>| {
                Box::pin(std::future::ready(settled(
                    record, key, op_id, &result, &apply,
                )))
            })
            .await?;
        // The end's log line is the operation span's (`running::spawn_op`).
        if wrote {
            self.observe(finished.kind, finished.state);
        }
        Ok(finished)
    }

    /// Changes one operation inside its record (compare-and-swap, retried).
    async fn update_op<R: Tracked>(
        &self,
        key: &str,
        op_id: &str,
        f: impl Fn(&mut Operation),
    ) -> std::result::Result<(), BackendError> {
        self.compare_and_swap(key, |record: Option<R>| {
            let decision = (|| {
                let mut record = record.ok_or_else(|| vanished("record", key))?;
                f(record
                    .op_mut(op_id)
                    .ok_or_else(|| vanished("operation", op_id))?);
                Ok(Decision::Commit(record, ()))
            })();
            Box::pin(std::future::ready(decision))
        })
        .await
        .map_err(|e| BackendError::new(format!("saving operation state: {e}")))
    }
}

/// The decision of [`Broker::finish_op`] on the record as read.
fn settled<R: Tracked>(
    record: Option<R>,
    key: &str,
    op_id: &str,
    result: &std::result::Result<(), BackendError>,
    apply: &impl Fn(&mut R, OpKind, Option<UpdateTarget>),
) -> Result<Decision<R, (Operation, bool)>> {
    let mut record = record.ok_or_else(|| vanished("record", key))?;
    let op = record
        .op_mut(op_id)
        .ok_or_else(|| vanished("operation", op_id))?;
    if op.state != OpState::InProgress {
        return Ok(Decision::Answer((op.clone(), false)));
    }
    let kind = op.kind;
    let target = op.target.clone();
    settle(op, kind, result);
    let finished = op.clone();
    apply(&mut record, kind, target);
    Ok(Decision::Commit(record, (finished, true)))
}

fn vanished(what: &str, id: &str) -> BrokerError {
    BrokerError::Internal(format!("{what} {:?} vanished", id.replace('\0', "/")))
}

/// Marks an operation finished with the OSB fields its kind allows.
fn settle(op: &mut Operation, kind: OpKind, outcome: &std::result::Result<(), BackendError>) {
    op.finished_at = Some(now());
    match outcome {
        Ok(()) => {
            op.state = OpState::Succeeded;
            op.description = Some(match kind {
                OpKind::Provision => "Provisioned".into(),
                OpKind::Update => "Updated".into(),
                OpKind::Deprovision => "Deprovisioned".into(),
                OpKind::Bind => "Bound".into(),
                OpKind::Unbind => "Unbound".into(),
            });
        }
        Err(e) => {
            op.state = OpState::Failed;
            op.description = Some(if e.message.trim().is_empty() {
                format!("{} failed", kind.as_str())
            } else {
                e.message.clone()
            });
            // The spec allows these flags only on failed updates and
            // deprovisions; both default to true.
            if matches!(kind, OpKind::Update | OpKind::Deprovision) {
                op.instance_usable = Some(e.instance_usable.unwrap_or(true));
            }
            if kind == OpKind::Update {
                op.update_repeatable = Some(e.update_repeatable.unwrap_or(true));
            }
        }
    }
}

/// Runs `work` until the operation's deadline.
async fn with_deadline<T>(
    deadline: u64,
    work: impl std::future::Future<Output = std::result::Result<T, BackendError>>,
) -> std::result::Result<T, BackendError> {
    let left = Duration::from_secs(deadline.saturating_sub(now()));
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::new(
            "the operation did not finish before its deadline (the plan's maximum_polling_duration; for a synchronous request, --sync-timeout)",
        )),
    }
}

/// Where an operation lives: its instance, or one of its bindings.
#[derive(Clone)]
enum OpHome {
    Instance(String),
    Binding(String, String),
}

impl OpHome {
    fn new(instance_id: &str, binding_id: Option<&str>) -> Self {
        match binding_id {
            None => OpHome::Instance(instance_id.to_string()),
            Some(b) => OpHome::Binding(instance_id.to_string(), b.to_string()),
        }
    }
}

impl Broker {
    /// [`Broker::update_op`] on whichever record holds the operation.
    async fn update_op_in(
        &self,
        home: &OpHome,
        op_id: &str,
        f: impl Fn(&mut Operation),
    ) -> std::result::Result<(), BackendError> {
        match home {
            OpHome::Instance(i) => self.update_op::<Instance>(i, op_id, f).await,
            OpHome::Binding(i, b) => {
                self.update_op::<Binding>(&binding_key(i, b), op_id, f)
                    .await
            }
        }
    }
}

/// Saves backend progress into the operation record (compare-and-swap).
struct OpCheckpoint {
    broker: Broker,
    home: OpHome,
    op_id: String,
}

#[async_trait::async_trait]
impl Checkpoint for OpCheckpoint {
    async fn save(&self, progress: serde_json::Value) -> std::result::Result<(), BackendError> {
        self.broker
            .update_op_in(&self.home, &self.op_id, |o| {
                o.progress = Some(progress.clone())
            })
            .await
    }

    async fn note(&self, description: &str) -> std::result::Result<(), BackendError> {
        self.broker
            .update_op_in(&self.home, &self.op_id, |o| {
                if o.state == OpState::InProgress {
                    o.description = Some(description.to_owned());
                }
            })
            .await
    }
}

/// Aborts a background task when dropped.
pub(crate) struct AbortOnDrop(pub(in crate::broker) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
