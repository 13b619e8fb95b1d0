//! Read-only views of every record, for the operator's dashboard: no
//! rule of the lifecycle is applied, and nothing is written.

use super::model::{Binding, Instance, InstanceState};
use super::ports::Table;
use super::summary::{InstanceSummary, SummaryPage, SummaryQuery, page_of};
use super::{Broker, Result};

impl Broker {
    /// A page of the instances table, and the offset it starts at: from
    /// the store's summary index, or summarized from every record when the
    /// store keeps none. A page past the end is the last page.
    pub async fn instance_page(&self, q: &SummaryQuery) -> Result<(SummaryPage, usize)> {
        let page = self.summaries(q).await?;
        match page.total {
            Some(total) if page.rows.is_empty() && q.offset > 0 && total > 0 => {
                let offset = (total - 1) / q.limit.max(1) * q.limit;
                let last = SummaryQuery {
                    offset,
                    ..q.clone()
                };
                Ok((self.summaries(&last).await?, offset))
            }
            _ => Ok((page, q.offset)),
        }
    }

    /// How many instances are in each state: counted from the store's
    /// summary index (keys only, no record opened) where it keeps one, else
    /// from one listing.
    pub async fn count_by_state(&self) -> Result<Vec<(InstanceState, usize)>> {
        const STATES: [InstanceState; 4] = [
            InstanceState::Provisioning,
            InstanceState::ProvisionFailed,
            InstanceState::Ready,
            InstanceState::Deleted,
        ];
        let mut counts = Vec::with_capacity(STATES.len());
        for state in STATES {
            let q = SummaryQuery {
                state: Some(state),
                limit: 0,
                ..SummaryQuery::default()
            };
            match self.store().instance_summaries(&q).await? {
                Some(page) => counts.push((state, page.total.unwrap_or(0))),
                None => {
                    let every = SummaryQuery {
                        limit: usize::MAX,
                        ..SummaryQuery::default()
                    };
                    let rows = self.summaries(&every).await?.rows;
                    return Ok(STATES
                        .iter()
                        .map(|st| (*st, rows.iter().filter(|r| r.state == *st).count()))
                        .collect());
                }
            }
        }
        Ok(counts)
    }

    async fn summaries(&self, q: &SummaryQuery) -> Result<SummaryPage> {
        if let Some(page) = self.store().instance_summaries(q).await? {
            return Ok(page);
        }
        let rows = self.store().list(Table::Instances, "").await?;
        let mut skipped = 0;
        let mut all = Vec::with_capacity(rows.len());
        for (_, bytes, _) in rows {
            match InstanceSummary::of_record(&bytes) {
                Some(s) => all.push(s),
                None => skipped += 1,
            }
        }
        Ok(page_of(all, q, skipped))
    }

    /// One instance record, whatever its state.
    pub(crate) async fn instance_record(&self, id: &str) -> Result<Option<Instance>> {
        Ok(self.load_instance(id).await?.map(|(i, _)| i))
    }

    /// The binding records of one instance, whatever their state.
    pub(crate) async fn instance_bindings(&self, id: &str) -> Result<Vec<Binding>> {
        Ok(self
            .bindings_of(id)
            .await?
            .into_iter()
            .map(|(b, _)| b)
            .collect())
    }
}

impl Broker {
    /// The replicas' leases as this replica sees them; `None` when the
    /// store is not shared (one replica, no leases).
    pub fn replica_leases(&self) -> Option<Vec<super::ports::LeaseView>> {
        self.replicas().map(|r| r.leases())
    }

    /// Whether operations are leased among replicas sharing the store.
    pub fn shares_store(&self) -> bool {
        self.inner.config.shared_store
    }
}
