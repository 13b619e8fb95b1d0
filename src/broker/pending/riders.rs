//! Removals that ride on the write that settles an operation.
//!
//! A deprovision removes the bindings the platform left on its instance.
//! Removed one by one, each is a durable write of its own (an fsync each)
//! before the instance's tombstone is written. Instead, each removal is
//! noted here against the instance and its operation, and the write that
//! settles the operation carries them ([`crate::broker::ports::Store::put_removing`]):
//! on the redb store, one transaction and one fsync for the tombstone and
//! every removal.
//!
//! Nothing is lost by waiting: a removal only forgets a binding whose
//! credentials the deprovision has already revoked. A crash before the
//! settling write leaves those records; the deprovision is then run again
//! (resumed, or sent again by the platform after a synchronous one), and it
//! revokes them again (idempotent) and removes them with its own settling
//! write.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::broker::ports::{Removal, Table};

type Key = (&'static str, String);

/// The removals noted for each record, with the operation whose settling
/// write carries them.
#[derive(Default)]
pub(in crate::broker) struct Riders(Mutex<HashMap<Key, (String, Vec<Removal>)>>);

impl Riders {
    /// Notes `removal` to ride on the write that settles operation `op` of
    /// record `key`.
    pub(in crate::broker) fn add(&self, table: Table, key: &str, op: &str, removal: Removal) {
        let mut m = self.0.lock().expect("riders lock");
        let entry = m
            .entry((table.name(), key.to_string()))
            .or_insert_with(|| (op.to_string(), Vec::new()));
        if entry.0 != op {
            // Left by an operation that ended without settling: not ours.
            *entry = (op.to_string(), Vec::new());
        }
        entry.1.push(removal);
    }

    /// The operation and removals to carry with a write of record `key`,
    /// when the write settles the operation they ride with (`settles(op)`).
    pub(in crate::broker) fn for_write(
        &self,
        table: Table,
        key: &str,
        settles: impl Fn(&str) -> bool,
    ) -> Option<(String, Vec<Removal>)> {
        let m = self.0.lock().expect("riders lock");
        // Every record write asks; almost always nothing rides.
        if m.is_empty() {
            return None;
        }
        m.get(&(table.name(), key.to_string()))
            .filter(|(op, _)| settles(op))
            .cloned()
    }

    /// Forgets the removals of operation `op` of record `key`: they were
    /// written, or the operation ended without its settling write.
    pub(in crate::broker) fn done(&self, table: Table, key: &str, op: &str) {
        let mut m = self.0.lock().expect("riders lock");
        let k = (table.name(), key.to_string());
        if m.get(&k).is_some_and(|(o, _)| o == op) {
            m.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removal(key: &str) -> Removal {
        Removal {
            table: Table::Bindings,
            key: key.into(),
            version: 3,
        }
    }

    #[test]
    fn removals_ride_only_on_the_write_that_settles_their_operation() {
        let r = Riders::default();
        r.add(Table::Instances, "i", "deprovision-1", removal("i\0a"));
        r.add(Table::Instances, "i", "deprovision-1", removal("i\0b"));
        // A write that leaves the operation in progress carries nothing.
        assert_eq!(r.for_write(Table::Instances, "i", |_| false), None);
        // Nor does a write of another record.
        assert_eq!(r.for_write(Table::Instances, "j", |_| true), None);
        let (op, removals) = r
            .for_write(Table::Instances, "i", |op| op == "deprovision-1")
            .unwrap();
        assert_eq!(op, "deprovision-1");
        assert_eq!(removals, [removal("i\0a"), removal("i\0b")]);
        // Another operation's end leaves them; their own forgets them.
        r.done(Table::Instances, "i", "deprovision-0");
        assert!(r.for_write(Table::Instances, "i", |_| true).is_some());
        r.done(Table::Instances, "i", "deprovision-1");
        assert_eq!(r.for_write(Table::Instances, "i", |_| true), None);
    }

    #[test]
    fn an_operation_that_ended_unsettled_leaves_nothing_to_the_next() {
        let r = Riders::default();
        r.add(Table::Instances, "i", "deprovision-1", removal("i\0a"));
        r.add(Table::Instances, "i", "deprovision-2", removal("i\0b"));
        let (op, removals) = r.for_write(Table::Instances, "i", |_| true).unwrap();
        assert_eq!(
            (op.as_str(), removals),
            ("deprovision-2", vec![removal("i\0b")])
        );
    }
}
