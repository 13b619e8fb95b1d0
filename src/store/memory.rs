//! An in-memory store: the test twin of the redb store, with the same
//! compare-and-swap semantics and no persistence.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::broker::ports::{Expect, Store, StoreError, Table, WriteResult};

/// Entries per table: key -> (value, version).
type Entries = BTreeMap<(&'static str, String), (Vec<u8>, u64)>;

/// An in-memory [`Store`].
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
    next_version: Mutex<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, table: Table, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let entries = self.entries.lock().expect("store lock");
        Ok(entries.get(&(table.name(), key.to_string())).cloned())
    }

    async fn put(&self, table: Table, key: &str, value: Vec<u8>, expect: Expect) -> WriteResult {
        let mut entries = self.entries.lock().expect("store lock");
        let slot = (table.name(), key.to_string());
        let current = entries.get(&slot).map(|(_, v)| *v);
        match (expect, current) {
            (Expect::Absent, None) => {}
            (Expect::Version(want), Some(have)) if want == have => {}
            _ => return Err(StoreError::Conflict),
        }
        let mut next = self.next_version.lock().expect("version lock");
        *next += 1;
        entries.insert(slot, (value, *next));
        Ok(*next)
    }

    async fn remove(&self, table: Table, key: &str, version: u64) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().expect("store lock");
        let slot = (table.name(), key.to_string());
        match entries.get(&slot) {
            Some((_, v)) if *v == version => {
                entries.remove(&slot);
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn list(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>, u64)>, StoreError> {
        let entries = self.entries.lock().expect("store lock");
        Ok(entries
            .iter()
            .filter(|((t, k), _)| *t == table.name() && k.starts_with(prefix))
            .map(|((_, k), (v, ver))| (k.clone(), v.clone(), *ver))
            .collect())
    }
}
