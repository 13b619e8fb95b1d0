//! The embedded store: one redb file in the data directory. redb serialises
//! write transactions, so a read-compare-write inside one transaction is an
//! atomic compare-and-swap. Values are sealed before they touch the disk.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::seal::Sealer;
use crate::broker::ports::{Expect, Store, StoreError, Table};

const INSTANCES: TableDefinition<&str, &[u8]> = TableDefinition::new("instances");
const BINDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("bindings");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Versions come from one counter so a deleted-then-recreated key never
/// reuses a version a stale writer might still hold.
const VERSION_KEY: &str = "version";

fn def(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    match table {
        Table::Instances => INSTANCES,
        Table::Bindings => BINDINGS,
    }
}

fn aad(table: Table, key: &str) -> String {
    format!("{}/{key}", table.name())
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The redb-backed [`Store`].
pub struct RedbStore {
    db: Arc<Database>,
    sealer: Arc<Sealer>,
}

impl RedbStore {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path, sealer: Sealer) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(backend)?;
        let tx = db.begin_write().map_err(backend)?;
        {
            // Create the tables up front so readers never see "no such table".
            tx.open_table(INSTANCES).map_err(backend)?;
            tx.open_table(BINDINGS).map_err(backend)?;
            tx.open_table(META).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(RedbStore {
            db: Arc::new(db),
            sealer: Arc::new(sealer),
        })
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, &Sealer) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        let sealer = self.sealer.clone();
        tokio::task::spawn_blocking(move || f(&db, &sealer))
            .await
            .map_err(backend)?
    }
}

fn decode(
    sealer: &Sealer,
    table: Table,
    key: &str,
    raw: &[u8],
) -> Result<(Vec<u8>, u64), StoreError> {
    if raw.len() < 8 {
        return Err(StoreError::Backend(format!(
            "corrupt record {}",
            aad(table, key)
        )));
    }
    let version = u64::from_le_bytes(raw[..8].try_into().expect("8 bytes"));
    let plain = sealer.open(&aad(table, key), &raw[8..]).map_err(backend)?;
    Ok((plain, version))
}

fn stored_version(raw: &[u8]) -> u64 {
    raw.get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, table: Table, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let key = key.to_string();
        self.blocking(move |db, sealer| {
            let tx = db.begin_read().map_err(backend)?;
            let t = tx.open_table(def(table)).map_err(backend)?;
            match t.get(key.as_str()).map_err(backend)? {
                Some(v) => decode(sealer, table, &key, v.value()).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn put(
        &self,
        table: Table,
        key: &str,
        value: Vec<u8>,
        expect: Expect,
    ) -> Result<u64, StoreError> {
        let key = key.to_string();
        self.blocking(move |db, sealer| {
            let tx = db.begin_write().map_err(backend)?;
            let version = {
                let mut t = tx.open_table(def(table)).map_err(backend)?;
                let current = t
                    .get(key.as_str())
                    .map_err(backend)?
                    .map(|v| stored_version(v.value()));
                match (expect, current) {
                    (Expect::Absent, None) => {}
                    (Expect::Version(want), Some(have)) if want == have => {}
                    _ => return Err(StoreError::Conflict),
                }
                let mut meta = tx.open_table(META).map_err(backend)?;
                let next = meta
                    .get(VERSION_KEY)
                    .map_err(backend)?
                    .map(|v| v.value())
                    .unwrap_or(0)
                    + 1;
                meta.insert(VERSION_KEY, next).map_err(backend)?;
                let mut raw = next.to_le_bytes().to_vec();
                raw.extend_from_slice(&sealer.seal(&aad(table, &key), &value));
                t.insert(key.as_str(), raw.as_slice()).map_err(backend)?;
                next
            };
            tx.commit().map_err(backend)?;
            Ok(version)
        })
        .await
    }

    async fn remove(&self, table: Table, key: &str, version: u64) -> Result<(), StoreError> {
        let key = key.to_string();
        self.blocking(move |db, _| {
            let tx = db.begin_write().map_err(backend)?;
            {
                let mut t = tx.open_table(def(table)).map_err(backend)?;
                let current = t
                    .get(key.as_str())
                    .map_err(backend)?
                    .map(|v| stored_version(v.value()));
                if current != Some(version) {
                    return Err(StoreError::Conflict);
                }
                t.remove(key.as_str()).map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>, u64)>, StoreError> {
        let prefix = prefix.to_string();
        self.blocking(move |db, sealer| {
            let tx = db.begin_read().map_err(backend)?;
            let t = tx.open_table(def(table)).map_err(backend)?;
            let mut out = Vec::new();
            for entry in t.range::<&str>(prefix.as_str()..).map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let key = k.value().to_string();
                if !key.starts_with(&prefix) {
                    break;
                }
                let (plain, version) = decode(sealer, table, &key, v.value())?;
                out.push((key, plain, version));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> RedbStore {
        let (sealer, _) = Sealer::load_or_create(&dir.join("key")).unwrap();
        RedbStore::open(&dir.join("db.redb"), sealer).unwrap()
    }

    #[tokio::test]
    async fn compare_and_swap_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let v1 = s
            .put(Table::Instances, "a", b"one".to_vec(), Expect::Absent)
            .await
            .unwrap();
        assert!(matches!(
            s.put(Table::Instances, "a", b"x".to_vec(), Expect::Absent)
                .await,
            Err(StoreError::Conflict)
        ));
        let v2 = s
            .put(Table::Instances, "a", b"two".to_vec(), Expect::Version(v1))
            .await
            .unwrap();
        assert!(v2 > v1);
        assert!(matches!(
            s.put(Table::Instances, "a", b"x".to_vec(), Expect::Version(v1))
                .await,
            Err(StoreError::Conflict)
        ));
        s.put(Table::Bindings, "a/1", b"b".to_vec(), Expect::Absent)
            .await
            .unwrap();
        s.put(Table::Bindings, "ab/1", b"c".to_vec(), Expect::Absent)
            .await
            .unwrap();
        drop(s);
        let s = store(dir.path());
        assert_eq!(
            s.get(Table::Instances, "a").await.unwrap(),
            Some((b"two".to_vec(), v2))
        );
        let listed = s.list(Table::Bindings, "a/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, "a/1");
        // Plain text never reaches the file.
        let raw = std::fs::read(dir.path().join("db.redb")).unwrap();
        assert!(!raw.windows(3).any(|w| w == b"two"));
    }

    #[tokio::test]
    async fn remove_checks_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let v = s
            .put(Table::Instances, "k", b"v".to_vec(), Expect::Absent)
            .await
            .unwrap();
        assert!(s.remove(Table::Instances, "k", v + 1).await.is_err());
        s.remove(Table::Instances, "k", v).await.unwrap();
        assert_eq!(s.get(Table::Instances, "k").await.unwrap(), None);
        // A recreated key gets a fresh version, never an old one.
        let v2 = s
            .put(Table::Instances, "k", b"v".to_vec(), Expect::Absent)
            .await
            .unwrap();
        assert!(v2 > v);
    }
}
