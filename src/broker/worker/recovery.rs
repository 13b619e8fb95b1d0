//! Recovery: operations a previous process left in progress are resumed,
//! or failed once past their deadline or tried too often; with a shared
//! store, operations of a replica whose lease lapsed are taken over.
//! Instances and bindings go through one path.

use std::time::Duration;

use super::{AbortOnDrop, OpHome, Tracked};
use crate::broker::model::{Binding, HasOperations, Instance, Operation};
use crate::broker::ports::{BackendError, Expect, StoreError, Table};
use crate::broker::{Broker, Result, decode, now};

impl Broker {
    /// Settles every operation a previous process left in progress: resumes
    /// it, or fails it when its deadline passed or it was tried too often.
    /// Returns how many were resumed.
    pub(crate) async fn resume(&self) -> Result<usize> {
        let instances = self.store().list_unsettled(Table::Instances).await?;
        let bindings = self.store().list_unsettled(Table::Bindings).await?;
        self.settle_rows(instances, bindings).await
    }

    /// Settles the in-progress operations of these records (resumed, or
    /// failed when too late) and forgets expired tombstones among them.
    pub(in crate::broker) async fn settle_rows(
        &self,
        instances: Vec<(String, Vec<u8>, u64)>,
        bindings: Vec<(String, Vec<u8>, u64)>,
    ) -> Result<usize> {
        Ok(self.settle_table::<Instance>(instances).await?
            + self.settle_table::<Binding>(bindings).await?)
    }

    /// [`Broker::settle_rows`] for the records of one table.
    async fn settle_table<R: Tracked>(&self, rows: Vec<(String, Vec<u8>, u64)>) -> Result<usize> {
        let mut resumed = 0;
        for (key, bytes, version) in rows {
            let record: R = decode(&bytes)?;
            if record.is_tombstone() && expired(&record) {
                // Platforms stop polling long before this; forget it.
                self.store().remove(R::TABLE, &key, version).await.ok();
                continue;
            }
            if self.recover(&key, record, version).await? {
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Settles the operation `record` (at `version`) has in progress, if this
    /// process may take it: true when it was resumed.
    async fn recover<R: Tracked>(&self, key: &str, mut record: R, version: u64) -> Result<bool> {
        let Some(op) = record.current().cloned().filter(|o| self.takeable(o)) else {
            tracing::debug!(record = %key.replace('\0', "/"), "nothing to take over");
            return Ok(false);
        };
        if let Some(reason) = self.give_up_reason(&op) {
            self.finish_op(
                key,
                &op.id,
                Err(BackendError::new(reason)),
                |r: &mut R, kind, _| r.failed(kind),
            )
            .await?;
            return Ok(false);
        }
        if let Some(o) = record.op_mut(&op.id) {
            self.take_over(o);
        }
        match self.put_record(&record, Expect::Version(version)).await {
            Ok(_) => {
                tracing::info!(record = %key.replace('\0', "/"), operation = %op.id,
                    kind = op.kind.as_str(), "resuming operation left in progress");
                drop(record.spawn(self, op.id.clone()));
                Ok(true)
            }
            // Another replica took it.
            Err(StoreError::Conflict) => {
                tracing::debug!(record = %key.replace('\0', "/"), "another replica took it over");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether this process may take an in-progress operation over: not one
    /// it runs itself, and with a shared store only one whose owner's
    /// lease (or, for an owner without one, the operation's heartbeat) has
    /// lapsed.
    fn takeable(&self, op: &Operation) -> bool {
        if op.owner.as_deref() == Some(self.inner.replica.as_str()) {
            return false;
        }
        if !self.config().shared_store {
            return true;
        }
        if let Some(live) = op
            .owner
            .as_deref()
            .and_then(|o| self.replicas().and_then(|r| r.live(o)))
        {
            return !live;
        }
        op.heartbeat
            .is_none_or(|h| now().saturating_sub(h) > self.config().lease.as_secs())
    }

    fn take_over(&self, op: &mut Operation) {
        op.attempts += 1;
        op.owner = Some(self.inner.replica.clone());
        op.heartbeat = Some(now());
    }

    /// With a shared store: renews the heartbeat of an operation this
    /// process runs until the returned guard is dropped.
    pub(super) fn heartbeat(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        op_id: &str,
    ) -> Option<AbortOnDrop> {
        // Kept with replica leases too: replicas of an older broker, or
        // one that has not yet seen this replica's Lease, judge by it.
        if !self.config().shared_store {
            return None;
        }
        let weak = self.downgrade();
        let (home, oid) = (OpHome::new(instance_id, binding_id), op_id.to_string());
        let every = (self.config().lease / 3).max(Duration::from_secs(1));
        Some(AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(broker) = weak.upgrade() else { break };
                let replica = broker.inner.replica.clone();
                if let Err(e) = broker
                    .update_op_in(&home, &oid, |o| {
                        if o.owner.as_deref() == Some(replica.as_str()) {
                            o.heartbeat = Some(now());
                        }
                    })
                    .await
                {
                    tracing::warn!(operation = %oid, error = %e.message, "could not renew the operation's lease");
                }
            }
        })))
    }

    /// Periodically takes over operations whose owner stopped renewing its
    /// lease (a replica that died; shared store: by replica leases when
    /// set, else every half lease) and forgets expired tombstones (every
    /// hour otherwise). Operations this process runs are its own and never
    /// taken.
    pub(crate) fn spawn_sweeper(&self) -> AbortOnDrop {
        if let Some(replicas) = self.replicas() {
            return self.spawn_lease_sweeper(replicas.clone());
        }
        // A weak reference: the sweeper must not keep a dropped broker (and
        // its store, whose file lock a successor needs) alive.
        let weak = self.downgrade();
        let every = if self.config().shared_store {
            (self.config().lease / 2).max(Duration::from_secs(1))
        } else {
            Duration::from_secs(3600)
        };
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(broker) = weak.upgrade() else { break };
                match broker.resume().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        taken_over = n,
                        "took over operations whose owner's lease lapsed"
                    ),
                    Err(e) => tracing::warn!(error = %e, "sweeping for orphaned operations failed"),
                }
            }
        }))
    }

    fn give_up_reason(&self, op: &Operation) -> Option<String> {
        if now() >= op.deadline {
            Some(format!(
                "the broker restarted while this {} ran and its deadline has passed",
                op.kind.as_str()
            ))
        } else if op.attempts >= self.config().max_attempts {
            Some(format!(
                "gave up after the broker restarted {} times during this {}",
                op.attempts,
                op.kind.as_str()
            ))
        } else {
            None
        }
    }
}

/// How long a tombstone (a deleted instance or binding, kept so
/// `last_operation` can answer 410) outlives its last operation.
pub const TOMBSTONE_TTL_SECS: u64 = 7 * 24 * 3600;

/// Whether a tombstone's last operation finished over a week ago.
fn expired(record: &impl HasOperations) -> bool {
    record
        .last_op()
        .and_then(|o| o.finished_at)
        .is_some_and(|t| now().saturating_sub(t) > TOMBSTONE_TTL_SECS)
}
