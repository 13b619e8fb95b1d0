//! Taking a dead replica's operations over by its lease (shared store with
//! [`Replicas`]): instead of reading every record every half lease, wait for
//! a replica's lease to lapse, then read only the records tagged with it as
//! their in-flight operation's owner.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ports::{Replicas, Table, Tag};
use super::worker::AbortOnDrop;
use super::{Broker, Result};

/// How often tombstones are looked for (tagged, so the cost is theirs only).
const TOMBSTONE_SWEEP: Duration = Duration::from_secs(3600);

impl Broker {
    /// Takes over the operations of every replica whose lease lapses, and
    /// forgets expired tombstones hourly.
    pub(super) fn spawn_lease_sweeper(&self, replicas: Arc<dyn Replicas>) -> AbortOnDrop {
        // A weak reference: the sweeper must not keep a dropped broker alive.
        let weak = self.downgrade();
        AbortOnDrop(tokio::spawn(async move {
            let mut tombstones_due = Instant::now() + TOMBSTONE_SWEEP;
            loop {
                replicas.changed().await;
                let Some(broker) = weak.upgrade() else { break };
                for owner in replicas.lapsed() {
                    match broker.take_over_from(&owner).await {
                        Ok(n) => {
                            tracing::info!(replica = %owner, taken_over = n,
                                "a replica's lease lapsed; took its operations over");
                            replicas.release(&owner).await;
                        }
                        Err(e) => tracing::warn!(replica = %owner, error = %e,
                            "taking a lapsed replica's operations over failed; retrying"),
                    }
                }
                if Instant::now() >= tombstones_due {
                    tombstones_due = Instant::now() + TOMBSTONE_SWEEP;
                    if let Err(e) = broker.forget_tombstones().await {
                        tracing::warn!(error = %e, "forgetting expired tombstones failed");
                    }
                }
            }
        }))
    }

    /// Settles the in-flight operations `owner` left (resumed here, or
    /// failed when too late); returns how many were resumed.
    pub(crate) async fn take_over_from(&self, owner: &str) -> Result<usize> {
        let store = self.store();
        let instances = store.tagged(Table::Instances, Tag::Owner(owner)).await?;
        let bindings = store.tagged(Table::Bindings, Tag::Owner(owner)).await?;
        tracing::debug!(replica = %owner, instances = ?instances.as_ref().map(Vec::len),
            bindings = ?bindings.as_ref().map(Vec::len), "records tagged with a lapsed replica");
        match (instances, bindings) {
            (Some(i), Some(b)) => self.settle_rows(i, b).await,
            // A store without tags: every record it is.
            _ => self.resume().await,
        }
    }

    async fn forget_tombstones(&self) -> Result<usize> {
        let store = self.store();
        let instances = store.tagged(Table::Instances, Tag::Tombstone).await?;
        let bindings = store.tagged(Table::Bindings, Tag::Tombstone).await?;
        match (instances, bindings) {
            (Some(i), Some(b)) => self.settle_rows(i, b).await,
            _ => self.resume().await,
        }
    }
}
