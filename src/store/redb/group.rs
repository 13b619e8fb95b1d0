//! Group commit for the redb store: one thread owns every write. Callers
//! queue a request and wait for its reply; the thread takes every request
//! waiting in the queue, applies them in order inside ONE write transaction
//! (each with its own compare-and-swap, seeing the ones before it), commits
//! once — one fdatasync for the group — and only then replies to each.
//!
//! Durability is redb's default, [`redb::Durability::Immediate`]: "guaranteed
//! to be persistent as soon as `WriteTransaction::commit` returns" (redb docs,
//! `Durability`). Its commit writes the new commit slot, flips the primary
//! bit and calls `sync_data` once (redb 4.6 `PageManager::commit`); 2-phase
//! commit (`set_two_phase_commit`, off by default) adds a second flush per
//! commit against a crafted-checksum attack by someone who can also crash
//! the process at will — not this broker's threat (an attacker who can
//! write the file can already do worse), so it stays off: one fsync per
//! group. `Durability::None` is never used: nothing is acknowledged before a
//! durable commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use redb::{Database, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::{Indexing, Keys, META, VERSION_KEY, backend, def, index, summaries, unsettled};
use crate::broker::ports::{Expect, StoreError, Table};
use crate::store::seal::Sealer;
use crate::store::summary_filters::Filters;

/// At most this many requests share one transaction, so one group's commit
/// (and the wait of its first request) stays bounded under a flood.
const MAX_GROUP: usize = 512;

/// One write, sealed by the caller: the store thread only does I/O.
pub(super) enum Write {
    /// Writes `sealed` (without its version prefix) if `expect` holds.
    Put {
        table: Table,
        key: String,
        sealed: Vec<u8>,
        indexing: Indexing,
        expect: Expect,
    },
    /// Removes `key` if it is at `version`.
    Remove {
        table: Table,
        key: String,
        version: u64,
    },
    /// Writes every row, or none if any key exists (or repeats).
    Import {
        table: Table,
        rows: Vec<(String, Vec<u8>, Indexing)>,
    },
}

/// What a write answers: the new version (a put; an import's last), 0 for
/// a remove.
pub(super) type Answer = Result<u64, StoreError>;

struct Request {
    write: Write,
    reply: oneshot::Sender<Answer>,
}

/// How many commits and writes the store thread made (a group is one
/// commit).
#[derive(Default)]
pub(super) struct Counts {
    pub(super) commits: AtomicU64,
    pub(super) writes: AtomicU64,
    /// Requests handed to the thread, answered or not.
    pub(super) queued: AtomicU64,
}

/// The handle to the store thread; dropping it lets the thread finish what
/// is queued and waits for it, so the file lock is free afterwards.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    pub(super) counts: Arc<Counts>,
}

impl Writer {
    /// Starts the thread that owns `db`'s writes.
    pub(super) fn spawn(
        db: Arc<Database>,
        sealer: Arc<Sealer>,
        filters: Arc<Filters>,
    ) -> std::io::Result<Self> {
        let keys = Keys(sealer, filters);
        let (tx, rx) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let thread = std::thread::Builder::new()
            .name("chartbroker-store".into())
            .spawn(move || run(&db, &keys, &rx, &c))?;
        Ok(Writer {
            queue: Some(tx),
            thread: Some(thread),
            counts,
        })
    }

    /// Queues `write` and waits until the group holding it is durable.
    pub(super) async fn write(&self, write: Write) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.queue
            .as_ref()
            .expect("queue lives as long as the writer")
            .send(Request { write, reply })
            .map_err(|_| stopped())?;
        self.counts.queued.fetch_add(1, Ordering::Relaxed);
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Backend("the store's writer thread stopped".into())
}

fn run(db: &Database, keys: &Keys, queue: &mpsc::Receiver<Request>, counts: &Counts) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let n = group.len() as u64;
        // Counted before anyone is answered, so a caller that got its
        // answer also sees its commit counted.
        serve(group, |writes| {
            counts.commits.fetch_add(1, Ordering::Relaxed);
            counts.writes.fetch_add(n, Ordering::Relaxed);
            commit_group(db, keys, writes)
        });
    }
}

/// Commits one group with `commit` and answers each request after it
/// returned: every request gets its own answer when the commit succeeded,
/// and the commit's error when it failed.
fn serve(group: Vec<Request>, commit: impl FnOnce(&[Write]) -> Result<Vec<Answer>, String>) {
    let (writes, replies): (Vec<Write>, Vec<_>) =
        group.into_iter().map(|r| (r.write, r.reply)).unzip();
    match commit(&writes) {
        Ok(answers) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that went away just misses its answer.
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(StoreError::Backend(e.clone())));
            }
        }
    }
}

/// Applies `writes` in order in one transaction and commits it. The outer
/// error (I/O, corruption) aborts the whole group; a failed precondition is
/// that request's own answer.
fn commit_group(db: &Database, keys: &Keys, writes: &[Write]) -> Result<Vec<Answer>, String> {
    write_group(db, keys, writes).map_err(|e| match e {
        StoreError::Backend(m) => m,
        other => other.to_string(),
    })
}

fn write_group(db: &Database, keys: &Keys, writes: &[Write]) -> Result<Vec<Answer>, StoreError> {
    let tx = db.begin_write().map_err(backend)?;
    let answers = {
        let mut meta = tx.open_table(META).map_err(backend)?;
        let mut next = meta
            .get(VERSION_KEY)
            .map_err(backend)?
            .map(|v| v.value())
            .unwrap_or(0);
        let answers = writes
            .iter()
            .map(|w| apply(&tx, keys, w, &mut next))
            .collect::<Result<Vec<_>, _>>()?;
        meta.insert(VERSION_KEY, next).map_err(backend)?;
        answers
    };
    tx.commit().map_err(backend)?;
    Ok(answers)
}

/// One write inside the group's transaction. Versions come from `next`, the
/// group's view of the store-wide counter.
fn apply(
    tx: &WriteTransaction,
    keys: &Keys,
    w: &Write,
    next: &mut u64,
) -> Result<Answer, StoreError> {
    match w {
        Write::Put {
            table,
            key,
            sealed,
            indexing,
            expect,
        } => {
            let mut t = tx.open_table(def(*table)).map_err(backend)?;
            let current = version_in(&t, key)?;
            match (expect, current) {
                (Expect::Absent, None) => {}
                (Expect::Version(want), Some(have)) if *want == have => {}
                _ => return Ok(Err(StoreError::Conflict)),
            }
            *next += 1;
            insert(&mut t, key, *next, sealed)?;
            drop(t);
            index(tx, keys, *table, key, indexing)?;
            Ok(Ok(*next))
        }
        Write::Remove {
            table,
            key,
            version,
        } => {
            let mut t = tx.open_table(def(*table)).map_err(backend)?;
            let current = version_in(&t, key)?;
            if current != Some(*version) {
                return Ok(Err(StoreError::Conflict));
            }
            t.remove(key.as_str()).map_err(backend)?;
            tx.open_table(unsettled(*table))
                .map_err(backend)?
                .remove(key.as_str())
                .map_err(backend)?;
            summaries::index_summary(tx, &keys.0, &keys.1, *table, key, None)?;
            Ok(Ok(0))
        }
        Write::Import { table, rows } => import(tx, keys, *table, rows, next),
    }
}

fn import(
    tx: &WriteTransaction,
    keys: &Keys,
    table: Table,
    rows: &[(String, Vec<u8>, Indexing)],
    next: &mut u64,
) -> Result<Answer, StoreError> {
    let mut t = tx.open_table(def(table)).map_err(backend)?;
    // Checked before writing anything: a conflict leaves the group's other
    // writes, and this import, untouched.
    let mut seen = std::collections::HashSet::new();
    for (key, _, _) in rows {
        if !seen.insert(key.as_str()) || t.get(key.as_str()).map_err(backend)?.is_some() {
            return Ok(Err(StoreError::Conflict));
        }
    }
    for (key, sealed, indexing) in rows {
        *next += 1;
        insert(&mut t, key, *next, sealed)?;
        index(tx, keys, table, key, indexing)?;
    }
    Ok(Ok(*next))
}

fn insert(
    t: &mut redb::Table<&str, &[u8]>,
    key: &str,
    version: u64,
    sealed: &[u8],
) -> Result<(), StoreError> {
    let mut raw = Vec::with_capacity(8 + sealed.len());
    raw.extend_from_slice(&version.to_le_bytes());
    raw.extend_from_slice(sealed);
    t.insert(key, raw.as_slice()).map_err(backend)?;
    Ok(())
}

/// The version prefix of a stored value (0 for one too short to hold it).
fn stored_version(raw: &[u8]) -> u64 {
    raw.get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

/// The version `key` is stored at in `t`, if it is there.
fn version_in(t: &redb::Table<&str, &[u8]>, key: &str) -> Result<Option<u64>, StoreError> {
    Ok(t.get(key)
        .map_err(backend)?
        .map(|v| stored_version(v.value())))
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::super::{INSTANCES, UNSETTLED_INSTANCES};
    use super::*;

    fn db(dir: &std::path::Path) -> (Database, Keys) {
        let db = Database::create(dir.join("db.redb")).unwrap();
        let (sealer, _) = Sealer::load_or_create(&dir.join("store.key")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(INSTANCES).unwrap();
        tx.open_table(META).unwrap();
        tx.open_table(UNSETTLED_INSTANCES).unwrap();
        let (filters, _) = Filters::load(&tx, &sealer).unwrap();
        tx.commit().unwrap();
        (db, Keys(Arc::new(sealer), Arc::new(filters)))
    }

    fn put(key: &str, value: &str, expect: Expect) -> Write {
        Write::Put {
            table: Table::Instances,
            key: key.into(),
            sealed: value.as_bytes().to_vec(),
            indexing: Indexing::of(
                Table::Instances,
                key,
                br#"{"state":"provisioning","operations":[{"state":"in progress"}]}"#,
            ),
            expect,
        }
    }

    fn remove(key: &str, version: u64) -> Write {
        Write::Remove {
            table: Table::Instances,
            key: key.into(),
            version,
        }
    }

    const SETTLED: &[u8] = br#"{"state":"ready","operations":[{"state":"succeeded"}]}"#;

    fn import(keys: &[&str]) -> Write {
        Write::Import {
            table: Table::Instances,
            rows: keys
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        b"imported".to_vec(),
                        Indexing::of(Table::Instances, k, SETTLED),
                    )
                })
                .collect(),
        }
    }

    /// Every key with its version and value, and the version counter.
    fn contents(db: &Database) -> (Vec<(String, u64, String)>, u64) {
        let tx = db.begin_write().unwrap();
        let t = tx.open_table(INSTANCES).unwrap();
        let all = t
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                let raw = v.value();
                let value = String::from_utf8(raw[8..].to_vec()).unwrap();
                (k.value().to_string(), stored_version(raw), value)
            })
            .collect();
        let meta = tx.open_table(META).unwrap();
        let counter = meta.get(VERSION_KEY).unwrap().unwrap().value();
        (all, counter)
    }

    fn outcome(a: &Answer) -> Result<u64, &'static str> {
        match a {
            Ok(v) => Ok(*v),
            Err(StoreError::Conflict) => Err("conflict"),
            Err(_) => Err("other"),
        }
    }

    #[test]
    fn each_request_of_a_group_sees_the_ones_before_it_and_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (db, keys) = db(dir.path());
        let group = [
            put("a", "one", Expect::Absent),
            put("a", "lost", Expect::Absent),
            put("a", "two", Expect::Version(1)),
            remove("a", 1),
            put("b", "never", Expect::Version(7)),
            remove("a", 2),
            put("a", "three", Expect::Absent),
            put("c", "c", Expect::Absent),
        ];
        let answers = commit_group(&db, &keys, &group).unwrap();
        let got: Vec<_> = answers.iter().map(outcome).collect();
        assert_eq!(
            got,
            [
                Ok(1),
                Err("conflict"),
                Ok(2),
                Err("conflict"),
                Err("conflict"),
                Ok(0),
                Ok(3),
                Ok(4)
            ]
        );
        let (all, counter) = contents(&db);
        assert_eq!(
            all,
            [
                ("a".to_string(), 3, "three".to_string()),
                ("c".to_string(), 4, "c".to_string())
            ]
        );
        assert_eq!(counter, 4);
        // A later group continues the counter: no version is ever reused.
        let answers = commit_group(&db, &keys, &[put("a", "four", Expect::Version(3))]).unwrap();
        assert_eq!(outcome(&answers[0]), Ok(5));
    }

    #[test]
    fn an_import_writes_all_its_rows_or_none_inside_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let (db, keys) = db(dir.path());
        let group = [
            put("c", "put", Expect::Absent),
            // Conflicts with the put just before it in the same group.
            import(&["d", "c"]),
            // Repeats a key of its own.
            import(&["e", "e"]),
            import(&["f", "g"]),
        ];
        let answers = commit_group(&db, &keys, &group).unwrap();
        let got: Vec<_> = answers.iter().map(outcome).collect();
        assert_eq!(got, [Ok(1), Err("conflict"), Err("conflict"), Ok(3)]);
        let keys: Vec<_> = contents(&db)
            .0
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect();
        assert_eq!(
            keys,
            [
                ("c".to_string(), 1),
                ("f".to_string(), 2),
                ("g".to_string(), 3)
            ]
        );
        // The sweep index followed each write: the put's record is in
        // progress, the imported ones are not.
        let tx = db.begin_read().unwrap();
        let idx = tx.open_table(UNSETTLED_INSTANCES).unwrap();
        let indexed: Vec<_> = idx
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().to_string())
            .collect();
        assert_eq!(indexed, ["c"]);
    }

    fn requests(n: usize) -> (Vec<Request>, Vec<oneshot::Receiver<Answer>>) {
        (0..n)
            .map(|i| {
                let (reply, rx) = oneshot::channel();
                let write = put(&format!("k{i}"), "v", Expect::Absent);
                (Request { write, reply }, rx)
            })
            .unzip()
    }

    #[test]
    fn a_failed_commit_answers_every_request_of_its_group_with_the_error() {
        let (group, mut answers) = requests(3);
        serve(group, |writes| {
            assert_eq!(writes.len(), 3);
            Err("disk full".into())
        });
        for a in &mut answers {
            match a.try_recv().expect("answered") {
                Err(StoreError::Backend(m)) => assert_eq!(m, "disk full"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_committed_group_answers_each_request_its_own_outcome() {
        let (group, mut answers) = requests(3);
        let mut committed = false;
        serve(group, |_| {
            committed = true;
            Ok(vec![Ok(7), Err(StoreError::Conflict), Ok(9)])
        });
        assert!(committed);
        let got: Vec<_> = answers
            .iter_mut()
            .map(|a| outcome(&a.try_recv().unwrap()))
            .collect();
        assert_eq!(got, [Ok(7), Err("conflict"), Ok(9)]);
    }
}
