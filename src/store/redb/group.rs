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
use crate::broker::ports::{Expect, Removal, StoreError, Table};
use crate::store::seal::Sealer;
use crate::store::summary_filters::Filters;

/// At most this many requests share one transaction, so one group's commit
/// (and the wait of its first request) stays bounded under a flood.
const MAX_GROUP: usize = 512;

/// One write, sealed by the caller: the store thread only does I/O.
pub(super) enum Write {
    /// Writes `sealed` (without its version prefix) if `expect` holds,
    /// and then removes each of `removals` still at its version.
    Put {
        table: Table,
        key: String,
        sealed: Vec<u8>,
        indexing: Indexing,
        expect: Expect,
        removals: Vec<Removal>,
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
            removals,
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
            for r in removals {
                // One that moved on since it was read is left as it is.
                remove(tx, keys, r.table, &r.key, r.version)?;
            }
            Ok(Ok(*next))
        }
        Write::Remove {
            table,
            key,
            version,
        } => Ok(if remove(tx, keys, *table, key, *version)? {
            Ok(0)
        } else {
            Err(StoreError::Conflict)
        }),
        Write::Import { table, rows } => import(tx, keys, *table, rows, next),
    }
}

/// Removes `key` if it is at `version`; false (nothing done) otherwise.
fn remove(
    tx: &WriteTransaction,
    keys: &Keys,
    table: Table,
    key: &str,
    version: u64,
) -> Result<bool, StoreError> {
    let mut t = tx.open_table(def(table)).map_err(backend)?;
    let current = version_in(&t, key)?;
    if current != Some(version) {
        return Ok(false);
    }
    t.remove(key).map_err(backend)?;
    tx.open_table(unsettled(table))
        .map_err(backend)?
        .remove(key)
        .map_err(backend)?;
    summaries::index_summary(tx, &keys.0, &keys.1, table, key, None)?;
    Ok(true)
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
pub(super) fn stored_version(raw: &[u8]) -> u64 {
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
mod tests;
