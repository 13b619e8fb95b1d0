//! Store writes per operation: an asynchronous operation is written when
//! accepted and when finished, a synchronous delete once, when finished,
//! while every reader still sees it in progress; a broker that dies during
//! a synchronous delete leaves the record as it was before the request.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::broker::model::{BindingState, InstanceState};
use crate::broker::ports::{Expect, Store, StoreError, Table, WriteResult};

/// The in-memory store, counting writes.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    writes: AtomicUsize,
}

impl Counting {
    fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, table: Table, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        self.inner.get(table, key).await
    }
    async fn put(&self, table: Table, key: &str, value: Vec<u8>, expect: Expect) -> WriteResult {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.put(table, key, value, expect).await
    }
    async fn remove(&self, table: Table, key: &str, version: u64) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.remove(table, key, version).await
    }
    async fn list(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>, u64)>, StoreError> {
        self.inner.list(table, prefix).await
    }
}

fn bind_req() -> BindRequest {
    BindRequest {
        instance_id: "i".into(),
        binding_id: "b".into(),
        service_id: "svc".into(),
        plan_id: "plan".into(),
        ..Default::default()
    }
}

fn unbind_req() -> UnbindRequest {
    UnbindRequest {
        instance_id: "i".into(),
        binding_id: "b".into(),
        service_id: "svc".into(),
        plan_id: "plan".into(),
    }
}

/// A broker with instance `i` provisioned and binding `b` bound, and the
/// writes that took (asynchronous provision, synchronous bind).
async fn bound(store: &Arc<Counting>, backend: &Arc<Scripted>) -> (Broker, usize, usize) {
    let b = broker(store.clone(), backend.clone());
    let before = store.writes();
    b.provision(provision_req("i", "hi"), async_meta())
        .await
        .unwrap();
    assert_eq!(wait_state(&b, "i").await.state, OpState::Succeeded);
    let provision = store.writes() - before;
    let before = store.writes();
    let out = b.bind(bind_req(), RequestMeta::default()).await.unwrap();
    assert_eq!(out.outcome, Outcome::Created);
    (b, provision, store.writes() - before)
}

#[tokio::test]
async fn an_async_operation_is_written_twice_and_a_sync_unbind_once() {
    let store = Arc::new(Counting::default());
    let backend = Arc::new(Scripted::default());
    let (b, provision, bind) = bound(&store, &backend).await;
    assert_eq!(provision, 2, "accepted (before the 202), then finished");
    assert_eq!(bind, 2, "a create keeps its accept: see broker/pending.rs");
    let before = store.writes();
    let out = b
        .unbind(unbind_req(), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(out, Outcome::Done);
    assert_eq!(
        store.writes() - before,
        1,
        "a synchronous unbind: one write"
    );
    let (stored, _) = b.load_binding("i", "b").await.unwrap().unwrap();
    assert_eq!(stored.state, BindingState::Deleted);
    assert!(stored.current().is_none());
    let last = stored.operations.last().unwrap();
    assert_eq!(
        (last.kind, last.state),
        (OpKind::Unbind, OpState::Succeeded)
    );
    // A synchronous deprovision, likewise: one write for the instance.
    let before = store.writes();
    let out = b
        .deprovision(deprovision_req("i"), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(out, Outcome::Done);
    let (inst, _) = b.load_instance("i").await.unwrap().unwrap();
    assert_eq!(inst.state, InstanceState::Deleted);
    // The instance's one write, and the binding's tombstone removed.
    assert_eq!(store.writes() - before, 2);
}

#[tokio::test]
async fn a_running_sync_unbind_is_seen_in_progress_but_not_written() {
    let store = Arc::new(Counting::default());
    let backend = Arc::new(Scripted::default());
    let _ = bound(&store, &backend).await;
    let stored_before = store.inner.get(Table::Bindings, "i\0b").await.unwrap();
    let gated = Arc::new(Scripted::gated());
    let b = broker(store.clone(), gated.clone());
    let before = store.writes();
    let running = tokio::spawn({
        let b = b.clone();
        async move { b.unbind(unbind_req(), RequestMeta::default()).await }
    });
    while gated.calls().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Readers see the unbind in progress, as when it was written.
    let (seen, _) = b.load_binding("i", "b").await.unwrap().unwrap();
    assert_eq!(seen.current().map(|o| o.kind), Some(OpKind::Unbind));
    let again = b.unbind(unbind_req(), RequestMeta::default()).await;
    assert!(
        matches!(again, Err(BrokerError::Concurrency(_))),
        "{again:?}"
    );
    let polled = b
        .unbind(
            unbind_req(),
            RequestMeta {
                accepts_incomplete: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let Outcome::Accepted { operation } = polled else {
        panic!("{polled:?}")
    };
    assert_eq!(
        Some(operation.as_str()),
        seen.current().map(|o| o.id.as_str())
    );
    // Nothing was written meanwhile: the store holds the bound record.
    assert_eq!(store.writes(), before);
    assert_eq!(
        store.inner.get(Table::Bindings, "i\0b").await.unwrap(),
        stored_before
    );
    gated.release(1);
    assert_eq!(running.await.unwrap().unwrap(), Outcome::Done);
    assert_eq!(store.writes() - before, 1);
    let (done, _) = b.load_binding("i", "b").await.unwrap().unwrap();
    assert_eq!(done.state, BindingState::Deleted);
}

#[tokio::test]
async fn a_sync_unbind_cut_short_leaves_the_binding_as_it_was() {
    let store = Arc::new(Counting::default());
    let backend = Arc::new(Scripted::default());
    let (_, _, _) = bound(&store, &backend).await;
    let stored_before = store.inner.get(Table::Bindings, "i\0b").await.unwrap();
    // A broker that dies inside the unbind: its task never finishes.
    let gated = Arc::new(Scripted::gated());
    let dying = broker(store.clone(), gated.clone());
    let before = store.writes();
    let running = tokio::spawn({
        let b = dying.clone();
        async move { b.unbind(unbind_req(), RequestMeta::default()).await }
    });
    while gated.calls().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.abort();
    drop(dying);
    assert_eq!(store.writes(), before, "nothing of the unbind was written");
    assert_eq!(
        store.inner.get(Table::Bindings, "i\0b").await.unwrap(),
        stored_before
    );
    // The next broker on the store: the binding is bound, with nothing to
    // resume, and the platform's repeated unbind does it.
    let next = broker(store.clone(), backend.clone());
    assert_eq!(next.resume().await.unwrap(), 0);
    let (b, _) = next.load_binding("i", "b").await.unwrap().unwrap();
    assert_eq!(b.state, BindingState::Bound);
    assert!(b.current().is_none());
    let out = next
        .unbind(unbind_req(), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(out, Outcome::Done);
    assert_eq!(
        backend
            .calls()
            .iter()
            .filter(|c| c.starts_with("unbind"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_failed_sync_unbind_is_recorded_in_one_write() {
    let store = Arc::new(Counting::default());
    let backend = Arc::new(Scripted::default());
    let (b, _, _) = bound(&store, &backend).await;
    backend.fail.store(true, Ordering::SeqCst);
    let before = store.writes();
    let out = b.unbind(unbind_req(), RequestMeta::default()).await;
    assert!(
        matches!(out, Err(BrokerError::OperationFailed { .. })),
        "{out:?}"
    );
    assert_eq!(store.writes() - before, 1);
    let (stored, _) = b.load_binding("i", "b").await.unwrap().unwrap();
    assert_eq!(stored.state, BindingState::Bound);
    let last = stored.operations.last().unwrap();
    assert_eq!((last.kind, last.state), (OpKind::Unbind, OpState::Failed));
    // Nothing is left held: the next unbind runs.
    backend.fail.store(false, Ordering::SeqCst);
    let out = b
        .unbind(unbind_req(), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(out, Outcome::Done);
}
