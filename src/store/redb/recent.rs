//! The plaintext of the records read lately, remembered with the exact
//! bytes they were stored as. Opening a record (AES-GCM, then inflating
//! it) is a function of its table, key and stored bytes alone, and the
//! sealer's keys never change while the store is open; so when the bytes a
//! read finds are the bytes remembered, the plaintext is the one
//! remembered, whatever was written in between. Nothing here can be stale:
//! there is no version to trust and nothing to invalidate.
//!
//! Why: a platform polls `last_operation` every few seconds and the broker
//! reads each record several times an operation, almost always unchanged
//! (callgrind: 40,000 of a poll's 140,000 instructions were opening the
//! instance record, most of it rebuilding zlib's Huffman tables).
//!
//! Bounded: at most [`CAPACITY`] records, forgotten all at once when full
//! (the records of the operations in flight come back at their next read).
//! It holds plaintext, as every decoded record in the broker does, only in
//! this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::broker::ports::Table;

/// Records remembered at most: the operations in flight and the records
/// read around them, not a cache of the store.
const CAPACITY: usize = 256;

#[derive(Default)]
pub(super) struct Recent(Mutex<HashMap<Box<str>, Opened>>);

struct Opened {
    table: Table,
    stored: Box<[u8]>,
    plain: Box<[u8]>,
}

impl Recent {
    /// The plaintext of `stored` if it is what `table`/`key` was last
    /// opened from.
    pub(super) fn get(&self, table: Table, key: &str, stored: &[u8]) -> Option<Vec<u8>> {
        let all = self.0.lock().expect("recent lock");
        let o = all.get(key)?;
        (o.table == table && *o.stored == *stored).then(|| o.plain.to_vec())
    }

    /// Remembers that `stored` opened to `plain`.
    pub(super) fn put(&self, table: Table, key: &str, stored: &[u8], plain: &[u8]) {
        let mut all = self.0.lock().expect("recent lock");
        if all.len() >= CAPACITY && !all.contains_key(key) {
            all.clear();
        }
        all.insert(
            key.into(),
            Opened {
                table,
                stored: stored.into(),
                plain: plain.into(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_bytes_of_the_same_record_are_remembered() {
        let r = Recent::default();
        r.put(Table::Instances, "a", b"sealed-1", b"plain-1");
        assert_eq!(
            r.get(Table::Instances, "a", b"sealed-1").as_deref(),
            Some(&b"plain-1"[..])
        );
        assert_eq!(r.get(Table::Instances, "a", b"sealed-2"), None);
        assert_eq!(r.get(Table::Bindings, "a", b"sealed-1"), None);
        assert_eq!(r.get(Table::Instances, "b", b"sealed-1"), None);
        r.put(Table::Instances, "a", b"sealed-2", b"plain-2");
        assert_eq!(r.get(Table::Instances, "a", b"sealed-1"), None);
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let r = Recent::default();
        for n in 0..CAPACITY * 3 + 7 {
            r.put(Table::Bindings, &n.to_string(), b"s", b"p");
            assert!(r.0.lock().unwrap().len() <= CAPACITY);
        }
        let last = (CAPACITY * 3 + 6).to_string();
        assert!(r.get(Table::Bindings, &last, b"s").is_some());
    }
}
