//! The filters of the summary index ([`super::summaries`]): for each
//! instance, one entry per filterable field (namespace, service, state)
//! keyed `tag(field, value) | order key`, so the instances of one
//! namespace, service or state list in table order by one range read.
//!
//! A tag is an HMAC-SHA256 (first 16 bytes) under a random key of this
//! file, itself sealed like a record: the file shows which instances share
//! a namespace, not which namespace. A tag key that no longer opens (its
//! store key was dropped after a rotation) is replaced and the filters
//! rebuilt from the summaries, once, at open.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::seal::Sealer;
use crate::broker::ports::StoreError;
use crate::broker::summary::{InstanceSummary, SummaryQuery};

pub(super) const FILTERS: TableDefinition<&[u8], ()> =
    TableDefinition::new("instance_summary_filters");
const TAG_KEY: TableDefinition<&str, &[u8]> = TableDefinition::new("instance_summary_tag_key");
const TAG_KEY_RECORD: &str = "instance_summaries/tag-key";
/// Bytes of a tag, the prefix of every entry of [`FILTERS`].
const TAG_LEN: usize = 16;

type Tag = [u8; TAG_LEN];

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The tag key, and the tags it makes.
pub(super) struct Filters {
    key: hmac::Key,
}

impl Filters {
    /// Opens this file's tag key, or makes one; true when the filters must
    /// be (re)built because the key is new.
    pub(super) fn load(
        tx: &WriteTransaction,
        sealer: &Sealer,
    ) -> Result<(Filters, bool), StoreError> {
        let mut t = tx.open_table(TAG_KEY).map_err(backend)?;
        tx.open_table(FILTERS).map_err(backend)?;
        let held = t
            .get(TAG_KEY_RECORD)
            .map_err(backend)?
            .and_then(|v| sealer.open(TAG_KEY_RECORD, v.value()).ok());
        if let Some(bytes) = held {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
            return Ok((Filters { key }, false));
        }
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StoreError::Backend("the system RNG failed".into()))?;
        let sealed = sealer.seal(TAG_KEY_RECORD, &bytes);
        t.insert(TAG_KEY_RECORD, sealed.as_slice())
            .map_err(backend)?;
        tx.delete_table(FILTERS).map_err(backend)?;
        tx.open_table(FILTERS).map_err(backend)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        Ok((Filters { key }, true))
    }

    fn tag(&self, field: &str, value: &str) -> Tag {
        let mut msg = Vec::with_capacity(field.len() + 1 + value.len());
        msg.extend_from_slice(field.as_bytes());
        msg.push(0);
        msg.extend_from_slice(value.as_bytes());
        hmac::sign(&self.key, &msg).as_ref()[..TAG_LEN]
            .try_into()
            .expect("an HMAC-SHA256 is longer than a tag")
    }

    fn state_tag(&self, state: crate::broker::model::InstanceState) -> Tag {
        let name = serde_json::to_string(&state).expect("states serialize");
        self.tag("state", &name)
    }

    fn tags(&self, s: &InstanceSummary) -> [Tag; 3] {
        [
            self.tag("namespace", &s.namespace),
            self.tag("service", &s.service_id),
            self.state_tag(s.state),
        ]
    }

    /// The tag of the range a filtered query reads: its namespace, else its
    /// service, else its state.
    pub(super) fn range_of(&self, q: &SummaryQuery) -> Option<Tag> {
        if let Some(ns) = &q.namespace {
            return Some(self.tag("namespace", ns));
        }
        if let Some(svc) = &q.service_id {
            return Some(self.tag("service", svc));
        }
        q.state.map(|s| self.state_tag(s))
    }

    /// Adds (`add`) or removes the entries of `s`, listed under `order_key`.
    pub(super) fn update(
        &self,
        tx: &WriteTransaction,
        s: &InstanceSummary,
        order_key: &str,
        add: bool,
    ) -> Result<(), StoreError> {
        let mut t = tx.open_table(FILTERS).map_err(backend)?;
        for tag in self.tags(s) {
            let entry = [tag.as_slice(), order_key.as_bytes()].concat();
            if add {
                t.insert(entry.as_slice(), ()).map_err(backend)?;
            } else {
                t.remove(entry.as_slice()).map_err(backend)?;
            }
        }
        Ok(())
    }
}

/// Whether a query filters on more than the one field its range covers.
pub(super) fn filters_beyond_range(q: &SummaryQuery) -> bool {
    let set = [
        q.namespace.is_some(),
        q.service_id.is_some(),
        q.state.is_some(),
    ];
    set.iter().filter(|b| **b).count() > 1
}
