//! Synchronous deletes in one store write.
//!
//! An operation is normally written twice: accepted (in progress), then
//! finished. For a synchronous unbind or deprovision on a store this
//! process alone writes (not `shared_store`), the accepted record is held
//! here, in memory, instead of being committed: every read of the broker
//! sees it (so a concurrent request still meets the operation in progress
//! and gets the same answer as before), and the finish commits the record
//! once, against the version the delete was decided on.
//!
//! Why deletes only, and only synchronous ones: a crash before the finish
//! loses the held record, which leaves the record as it was before the
//! request: still bound, still provisioned. The platform got no answer and
//! sends the delete again (the spec's orphan mitigation for a delete is the
//! delete), and backend deletes are idempotent, so nothing is lost. A
//! create or update that crashed unrecorded would leave what it made (a
//! Secret, a release, a database user) with no record that could find it
//! again, so those keep their accept write; an asynchronous operation must
//! be durable before its 202. With a shared store another replica could
//! decide on the record meanwhile, so the accept is written there too.
//!
//! A held record has a version no store hands out (its high bit set), so
//! only a write decided on the held record itself can commit it; any other
//! write of that key conflicts and decides again on what it reads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

mod riders;

use super::ports::{Expect, StoreError, Table};
use super::record::Record;
use super::{Broker, Result};

/// Versions of held records: far above any a store reaches.
const HELD: u64 = 1 << 62;

type Key = (&'static str, String);

struct Held {
    /// The operation the record holds in progress.
    op: Option<String>,
    bytes: Vec<u8>,
    version: u64,
    /// The stored version the delete was decided on.
    base: Expect,
    /// Readers see it only once that version is known to be the stored
    /// one; until then it only keeps writers off the key.
    visible: bool,
}

/// Held records and the writes in flight, per key.
#[derive(Default)]
pub(super) struct Pending {
    state: Mutex<State>,
    next: AtomicU64,
    /// Removals waiting for an operation's settling write ([`riders`]).
    pub(super) riders: riders::Riders,
}

#[derive(Default)]
struct State {
    held: HashMap<Key, Held>,
    /// Writes of each key on their way to the store.
    writing: HashMap<Key, usize>,
}

/// What a write of a key must do, given what is held.
pub(super) enum Route<'a> {
    /// Write to the store against this version; the guard counts the
    /// write in flight (a hold waits for it) until dropped.
    Store(Expect, Writing<'a>),
    /// Nobody may write this key at this version.
    Conflict,
}

/// A write in flight; the finish of a held record keeps it held (so
/// readers see the operation in progress, not the record before it)
/// until its write is done, committed or not.
pub(super) struct Writing<'a> {
    pending: &'a Pending,
    key: Key,
    finishes_held: bool,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut s = self.pending.state.lock().expect("pending lock");
        if self.finishes_held {
            s.held.remove(&self.key);
        }
        if let Some(n) = s.writing.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                s.writing.remove(&self.key);
            }
        }
    }
}

fn key(table: Table, key: &str) -> Key {
    (table.name(), key.to_string())
}

impl Pending {
    /// The held record of `key`, if one is.
    pub(super) fn get(&self, table: Table, k: &str) -> Option<(Vec<u8>, u64)> {
        let s = self.state.lock().expect("pending lock");
        s.held
            .get(&key(table, k))
            .filter(|h| h.visible)
            .map(|h| (h.bytes.clone(), h.version))
    }

    /// Routes a write of `k` at `expect`: the finish of a held record goes
    /// to the store against the version it was decided on, any other
    /// write of a held key conflicts.
    pub(super) fn route(&self, table: Table, k: &str, expect: Expect) -> Route<'_> {
        let k = key(table, k);
        let mut s = self.state.lock().expect("pending lock");
        let (expect, finishes_held) = match s.held.get(&k) {
            Some(h) if expect == Expect::Version(h.version) => (h.base, true),
            Some(_) => return Route::Conflict,
            None => (expect, false),
        };
        *s.writing.entry(k.clone()).or_default() += 1;
        Route::Store(
            expect,
            Writing {
                pending: self,
                key: k,
                finishes_held,
            },
        )
    }

    /// Holds `bytes` as record `k`, decided on stored version `base`;
    /// false when the key is held already or being written (decide again).
    fn try_hold(
        &self,
        table: Table,
        k: &str,
        (op, bytes): (Option<String>, Vec<u8>),
        base: Expect,
    ) -> Option<u64> {
        let k = key(table, k);
        let mut s = self.state.lock().expect("pending lock");
        if s.held.contains_key(&k) || s.writing.contains_key(&k) {
            return None;
        }
        let version = HELD | self.next.fetch_add(1, Ordering::Relaxed);
        s.held.insert(
            k,
            Held {
                op,
                bytes,
                version,
                base,
                visible: false,
            },
        );
        Some(version)
    }

    /// Lets readers see the record held for `k`.
    fn publish(&self, table: Table, k: &str) {
        let mut s = self.state.lock().expect("pending lock");
        if let Some(h) = s.held.get_mut(&key(table, k)) {
            h.visible = true;
        }
    }

    /// Forgets what is held for `k`: everything, or (`op`) only a record
    /// holding that operation, and the removals riding on it (it ended, or
    /// never will).
    pub(super) fn release(&self, table: Table, k: &str, op: Option<&str>) {
        if let Some(op) = op {
            self.riders.done(table, k, op);
        }
        let mut s = self.state.lock().expect("pending lock");
        let k = key(table, k);
        if op.is_none() || s.held.get(&k).is_some_and(|h| h.op.as_deref() == op) {
            s.held.remove(&k);
        }
    }

    /// `rows` as the broker sees them: held records in place of stored ones.
    pub(super) fn overlay(
        &self,
        table: Table,
        mut rows: Vec<(String, Vec<u8>, u64)>,
    ) -> Vec<(String, Vec<u8>, u64)> {
        let s = self.state.lock().expect("pending lock");
        if s.held.is_empty() {
            return rows;
        }
        for (k, bytes, version) in &mut rows {
            if let Some(h) = s.held.get(&(table.name(), k.clone())).filter(|h| h.visible) {
                *bytes = h.bytes.clone();
                *version = h.version;
            }
        }
        rows
    }
}

impl Broker {
    /// Holds `record` (decided on stored version `base`) instead of
    /// writing it; false when that can't be done now and the decision must
    /// be taken again (a write of the key in flight, or the store moved on).
    pub(super) async fn hold<R: Record>(&self, record: &R, base: Expect) -> Result<bool> {
        let k = record.key();
        let bytes = serde_json::to_vec(record).expect("records serialize");
        let op = record.current().map(|o| o.id.clone());
        if self
            .inner
            .pending
            .try_hold(R::TABLE, &k, (op, bytes), base)
            .is_none()
        {
            return Ok(false);
        }
        // A write that finished between the read and the hold: the decision
        // was taken on a stale record.
        let now = match self.store().get(R::TABLE, &k).await {
            Ok(found) => found.map(|(_, v)| v),
            Err(e) => {
                self.inner.pending.release(R::TABLE, &k, None);
                return Err(e.into());
            }
        };
        let same = match base {
            Expect::Absent => now.is_none(),
            Expect::Version(v) => now == Some(v),
        };
        if same {
            self.inner.pending.publish(R::TABLE, &k);
        } else {
            self.inner.pending.release(R::TABLE, &k, None);
        }
        Ok(same)
    }

    /// Forgets the record of an instance, or of one of its bindings, held
    /// for operation `op_id` (its task ended, whether or not it recorded
    /// the outcome).
    pub(in crate::broker) fn release_held(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        op_id: &str,
    ) {
        let pending = &self.inner.pending;
        match binding_id {
            None => pending.release(Table::Instances, instance_id, Some(op_id)),
            Some(b) => pending.release(
                Table::Bindings,
                &super::binding_key(instance_id, b),
                Some(op_id),
            ),
        }
    }

    /// Reads record `k` as the broker sees it (a held record first).
    pub(super) async fn read_record(
        &self,
        table: Table,
        k: &str,
    ) -> std::result::Result<Option<(Vec<u8>, u64)>, StoreError> {
        if let Some(held) = self.inner.pending.get(table, k) {
            return Ok(Some(held));
        }
        self.store().get(table, k).await
    }
}
