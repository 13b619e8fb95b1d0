//! "Load the record, decide, write it back only if nobody wrote in between,
//! else decide again": the one compare-and-swap loop every operation uses.
//!
//! The store keeps a version per record and refuses a write whose expected
//! version is stale ([`StoreError::Conflict`]). Each request decides on the
//! record as it found it; a conflict means another request or replica got
//! there first, so the decision is taken again on what that one wrote (a
//! racing identical provision then answers as a repeat).

use futures::future::BoxFuture;

use super::model::{HasOperations, OpKind, OpState};
use super::pending::Route;
use super::ports::{Expect, Put, StoreError};
pub(super) use super::record::Record;
use super::{Broker, BrokerError, Result, decode};

/// How many times a decision is taken again before giving up: each retry
/// means another writer won, so this only runs out under a write storm.
const ATTEMPTS: usize = 20;

/// What a decision makes of the record it was shown.
pub(super) enum Decision<R, T> {
    /// Write the record (against the version that was read), then answer.
    Commit(R, T),
    /// Answer without writing.
    Answer(T),
    /// A synchronous delete's accepted record: held in memory until its
    /// finish commits it ([`super::pending`]), written like
    /// [`Decision::Commit`] on a shared store.
    Hold(R, T),
}

impl Broker {
    /// Writes `record` under its key and tags, if the stored version is
    /// still `expect`: the one way a record reaches the store.
    pub(super) async fn put_record<R: Record>(
        &self,
        record: &R,
        expect: Expect,
    ) -> std::result::Result<u64, StoreError> {
        let key = record.key();
        let (expect, _writing) = match self.inner.pending.route(R::TABLE, &key, expect) {
            Route::Store(expect, writing) => (expect, writing),
            Route::Conflict => return Err(StoreError::Conflict),
        };
        let bytes = serde_json::to_vec(record).expect("records serialize");
        // Removals riding on the operation this write settles ([`super::pending`]).
        let settles = |op: &str| {
            record
                .find_op(op)
                .is_some_and(|o| o.state != OpState::InProgress)
        };
        let Some((op, removals)) = self.inner.pending.riders.for_write(R::TABLE, &key, settles)
        else {
            return self
                .store()
                .put_tagged(Put::new(R::TABLE, &key, bytes, expect), &record.tags())
                .await;
        };
        let version = self
            .store()
            .put_removing(
                Put::new(R::TABLE, &key, bytes, expect),
                &record.tags(),
                &removals,
            )
            .await?;
        self.inner.pending.riders.done(R::TABLE, &key, &op);
        Ok(version)
    }

    /// Reads record `key` of `R`'s table (`None`: there is none), lets
    /// `decide` choose, and commits its choice by compare-and-swap; on a
    /// conflict it reads again and `decide` runs again.
    ///
    /// `decide` returns a boxed future: an async closure's future can't be
    /// proven `Send` for every lifetime it borrows ("Send is not general enough"),
    /// and operations run on a multi-threaded runtime.
    pub(super) async fn compare_and_swap<'f, R: Record, T>(
        &self,
        key: &str,
        mut decide: impl FnMut(Option<R>) -> BoxFuture<'f, Result<Decision<R, T>>>,
    ) -> Result<T> {
        for attempt in 0..ATTEMPTS {
            let (current, expect) = match self.read_record(R::TABLE, key).await? {
                Some((bytes, version)) => (Some(decode::<R>(&bytes)?), Expect::Version(version)),
                None => (None, Expect::Absent),
            };
            match decide(current).await? {
                Decision::Answer(answer) => return Ok(answer),
                Decision::Hold(record, answer) if !self.config().shared_store => {
                    if self.hold(&record, expect).await? {
                        return Ok(answer);
                    }
                    // A write of this key is on its way: read it when done.
                    let wait = 1 << attempt.min(4);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                Decision::Commit(record, answer) | Decision::Hold(record, answer) => {
                    match self.put_record(&record, expect).await {
                        Ok(_) => return Ok(answer),
                        // A held key refuses writes until its hold is
                        // settled: after a few quick retries, wait a little.
                        Err(StoreError::Conflict) if attempt >= 3 => {
                            let wait = 1 << (attempt - 3).min(4);
                            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                        }
                        Err(StoreError::Conflict) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Err(BrokerError::Internal(format!(
            "could not write record {key:?}: too many concurrent writes"
        )))
    }
}

/// What a request's decision leads to.
pub(super) enum Next<A> {
    /// Run the operation just committed.
    Run {
        /// Its id.
        op_id: String,
        /// Whether the platform gets 202 at once.
        run_async: bool,
    },
    /// Answer without running anything (a repeat, an identical resource).
    Reply(A),
}

/// A decision to answer `a` without writing.
pub(super) fn reply<R, A>(a: A) -> Result<Decision<R, Next<A>>> {
    Ok(Decision::Answer(Next::Reply(a)))
}

/// A decision to commit `record`, then run its operation `op_id`: a
/// synchronous delete is held instead, and committed once when it ends
/// ([`super::pending`] says why that is safe for deletes only).
pub(super) fn start<R: HasOperations, A>(
    record: R,
    op_id: String,
    run_async: bool,
) -> Decision<R, Next<A>> {
    let delete = record
        .find_op(&op_id)
        .is_some_and(|o| matches!(o.kind, OpKind::Unbind | OpKind::Deprovision));
    let next = Next::Run { op_id, run_async };
    if delete && !run_async {
        Decision::Hold(record, next)
    } else {
        Decision::Commit(record, next)
    }
}
