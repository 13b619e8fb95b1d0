//! Core tests over the in-memory store and a scripted backend: the rules that
//! need control over timing (concurrency, restarts, deadlines).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::sync::Semaphore;

use super::model::{HasOperations, OpState, SecretRef, Secrets};
use super::ports::{Backend, BackendError, BindingCtx, InstanceCtx, SecretSink};
use super::requests::*;
use super::*;
use crate::store::memory::MemoryStore;

const CATALOG: &str = r#"
services:
  - id: svc
    name: svc
    description: test
    bindable: true
    plan_updateable: true
    plans:
      - id: plan
        name: plan
        description: test
        maximum_polling_duration: 60
        chart:
          path: tiny
          values: {message: "{{parameters.message}}"}
          secrets: {password: {length: 16}}
          credentials: {password: "{{secrets.password}}"}
"#;

fn catalog() -> Catalog {
    let charts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charts");
    Catalog::from_yaml(Path::new("test.yaml"), CATALOG, &charts).expect("test catalog")
}

/// A backend whose operations wait for a permit, so tests decide when they
/// finish; it records every call.
#[derive(Default)]
struct Scripted {
    gate: Option<Semaphore>,
    fail: AtomicBool,
    calls: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Scripted {
    fn gated() -> Self {
        Scripted {
            gate: Some(Semaphore::new(0)),
            ..Default::default()
        }
    }

    async fn step(&self, what: &str, id: &str) -> Result<(), BackendError> {
        self.calls.lock().unwrap().push(format!("{what} {id}"));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        if let Some(g) = &self.gate {
            g.acquire().await.unwrap().forget();
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            Err(BackendError::new(format!("{what} failed on purpose")))
        } else {
            Ok(())
        }
    }

    fn release(&self, n: usize) {
        self.gate.as_ref().unwrap().add_permits(n);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Backend for std::sync::Arc<Scripted> {
    fn synchronous(&self, _plan: &crate::catalog::Plan, _kind: model::OpKind) -> bool {
        true
    }
    async fn provision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        self.step("provision", &ctx.instance.id).await
    }
    async fn update(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        self.step("update", &ctx.instance.id).await
    }
    async fn deprovision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        self.step("deprovision", &ctx.instance.id).await
    }
    async fn bind(&self, ctx: BindingCtx<'_>) -> Result<Secrets, BackendError> {
        self.step("bind", &ctx.binding.id).await?;
        Ok(Secrets::from_value(
            json!({"password": ctx.instance.instance.secrets.0["password"]}),
        ))
    }
    async fn unbind(&self, ctx: BindingCtx<'_>) -> Result<(), BackendError> {
        self.step("unbind", &ctx.binding.id).await
    }
}

struct NullSink;

#[async_trait]
impl SecretSink for NullSink {
    async fn put(&self, ctx: BindingCtx<'_>, _c: &Secrets) -> Result<SecretRef, BackendError> {
        Ok(SecretRef {
            namespace: ctx.instance.instance.namespace.clone(),
            name: ctx.binding.id.clone(),
        })
    }
    async fn delete(&self, _ctx: BindingCtx<'_>, _s: &SecretRef) -> Result<(), BackendError> {
        Ok(())
    }
}

fn broker(store: Arc<dyn Store>, backend: Arc<Scripted>) -> Broker {
    broker_with(store, backend, BrokerConfig::default())
}

fn broker_with(store: Arc<dyn Store>, backend: Arc<Scripted>, config: BrokerConfig) -> Broker {
    let adapters = Adapters {
        store,
        chart: Arc::new(backend),
        upstream: None,
        sink: Arc::new(NullSink),
        authorizer: None,
        namespaces: None,
    };
    Broker::new(catalog(), adapters, config, None)
}

fn provision_req(id: &str, message: &str) -> ProvisionRequest {
    ProvisionRequest {
        instance_id: id.into(),
        service_id: "svc".into(),
        plan_id: "plan".into(),
        parameters: Some(json!({"message": message})),
        ..Default::default()
    }
}

/// An update of instance `i` setting `message`.
fn update_req(message: &str) -> UpdateRequest {
    let parameters = Some(json!({ "message": message }));
    UpdateRequest {
        instance_id: "i".into(),
        service_id: "svc".into(),
        parameters,
        ..Default::default()
    }
}

fn deprovision_req(id: &str) -> DeprovisionRequest {
    DeprovisionRequest {
        instance_id: id.into(),
        service_id: "svc".into(),
        plan_id: "plan".into(),
    }
}

fn async_meta() -> RequestMeta {
    RequestMeta {
        accepts_incomplete: true,
        ..Default::default()
    }
}

async fn wait_state(b: &Broker, id: &str) -> LastOperation {
    for _ in 0..500 {
        let op = b.instance_last_operation(id, None).await.unwrap();
        if op.state != OpState::InProgress {
            return op;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("operation on {id} never finished");
}

#[tokio::test]
async fn concurrent_provisions_start_exactly_one_operation() {
    let backend = Arc::new(Scripted::gated());
    let b = broker(Arc::new(MemoryStore::new()), backend.clone());
    let mut tasks = Vec::new();
    for i in 0..32 {
        let b = b.clone();
        // Half repeat the same request, half conflict with it.
        let msg = if i % 2 == 0 { "same" } else { "other" };
        tasks.push(tokio::spawn(async move {
            b.provision(provision_req("i", msg), async_meta()).await
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ops: std::collections::BTreeSet<String> = results
        .iter()
        .filter_map(|r| match r {
            Ok(InstanceOutcome {
                outcome: Outcome::Accepted { operation },
                ..
            }) => Some(operation.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ops.len(), 1, "every 202 carries the one operation: {ops:?}");
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(BrokerError::Conflict(_))))
        .count();
    assert_eq!(conflicts + results.iter().filter(|r| r.is_ok()).count(), 32);
    assert_eq!(conflicts, 16, "the other half differ in attributes: 409");
    backend.release(1);
    assert_eq!(wait_state(&b, "i").await.state, OpState::Succeeded);
    assert_eq!(backend.calls(), vec!["provision i"]);
}

#[tokio::test]
async fn concurrent_mutations_on_one_instance_run_one_at_a_time() {
    let backend = Arc::new(Scripted::gated());
    let b = broker(Arc::new(MemoryStore::new()), backend.clone());
    let r = b
        .provision(provision_req("i", "a"), async_meta())
        .await
        .unwrap();
    assert!(matches!(r.outcome, Outcome::Accepted { .. }));
    backend.release(1);
    wait_state(&b, "i").await;

    let mut tasks = Vec::new();
    for n in 0..24 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            match n % 3 {
                0 => b
                    .update(update_req(&format!("m{n}")), async_meta())
                    .await
                    .map(|o| o.outcome),
                1 => b.deprovision(deprovision_req("i"), async_meta()).await,
                _ => b
                    .provision(provision_req("i", "a"), async_meta())
                    .await
                    .map(|o| o.outcome),
            }
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let accepted: std::collections::BTreeSet<_> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Outcome::Accepted { operation }) => Some(operation.clone()),
            _ => None,
        })
        .collect();
    assert!(
        accepted.len() <= 1,
        "at most one new operation: {accepted:?}"
    );
    for r in &results {
        match r {
            Ok(Outcome::Accepted { .. }) | Ok(Outcome::Done) => {}
            Err(BrokerError::Concurrency(_)) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        backend.max_running.load(Ordering::SeqCst),
        1,
        "never two backend calls at once"
    );
    backend.release(1);
    let last = wait_state(&b, "i").await;
    assert_eq!(last.state, OpState::Succeeded);
}

#[tokio::test]
async fn failed_update_keeps_plan_and_parameters_and_secrets() {
    let backend = Arc::new(Scripted::default());
    let b = broker(Arc::new(MemoryStore::new()), backend.clone());
    b.provision(provision_req("i", "before"), RequestMeta::default())
        .await
        .unwrap();
    let (before, _) = b.load_instance("i").await.unwrap().unwrap();
    backend.fail.store(true, Ordering::SeqCst);
    let e = b
        .update(update_req("after"), RequestMeta::default())
        .await
        .unwrap_err();
    match e {
        BrokerError::OperationFailed { error, with_flags } => {
            assert!(with_flags);
            assert_eq!(error.instance_usable, Some(true));
            assert_eq!(error.update_repeatable, Some(true));
            assert_eq!(error.message, "update failed on purpose");
        }
        other => panic!("{other:?}"),
    }
    let (after, _) = b.load_instance("i").await.unwrap().unwrap();
    assert_eq!(after.parameters, before.parameters);
    assert_eq!(after.secrets, before.secrets);
    backend.fail.store(false, Ordering::SeqCst);
    b.update(update_req("after"), RequestMeta::default())
        .await
        .unwrap();
    let (after, _) = b.load_instance("i").await.unwrap().unwrap();
    assert_eq!(after.parameters["message"], "after");
    assert_eq!(
        after.secrets, before.secrets,
        "an update never rotates a generated secret"
    );
}

#[tokio::test]
async fn deprovision_unbinds_leftover_bindings() {
    let backend = Arc::new(Scripted::default());
    let b = broker(Arc::new(MemoryStore::new()), backend.clone());
    b.provision(provision_req("i", "a"), RequestMeta::default())
        .await
        .unwrap();
    let bind = BindRequest {
        instance_id: "i".into(),
        binding_id: "b".into(),
        service_id: "svc".into(),
        plan_id: "plan".into(),
        ..Default::default()
    };
    let out = b.bind(bind, RequestMeta::default()).await.unwrap();
    assert_eq!(out.outcome, Outcome::Created);
    b.deprovision(deprovision_req("i"), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(
        backend.calls(),
        vec!["provision i", "bind b", "unbind b", "deprovision i"]
    );
    assert!(b.bindings_of("i").await.unwrap().is_empty());
    // While the tombstone lives, the delete is polled as succeeded.
    let last = b.instance_last_operation("i", None).await.unwrap();
    assert_eq!(last.state, OpState::Succeeded);
    let (tomb, _) = b.load_instance("i").await.unwrap().unwrap();
    assert!(tomb.secrets.0.is_empty(), "tombstones keep no secrets");
}

#[test]
fn debug_output_never_shows_secrets() {
    let s = Secrets::from_value(json!({"password": "hunter2hunter2"}));
    let text = format!("{s:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("password"));
}

#[tokio::test]
async fn tombstones_are_forgotten_a_week_after_their_last_operation() {
    let store = Arc::new(MemoryStore::new());
    let b = broker(store.clone(), Arc::new(Scripted::default()));
    for id in ["old", "recent"] {
        b.provision(provision_req(id, "a"), RequestMeta::default())
            .await
            .unwrap();
        b.deprovision(deprovision_req(id), RequestMeta::default())
            .await
            .unwrap();
    }
    let (mut old, v) = b.load_instance("old").await.unwrap().unwrap();
    let last = old.operations.len() - 1;
    old.operations[last].finished_at = Some(now() - worker::TOMBSTONE_TTL_SECS - 1);
    b.write_instance(&old, Expect::Version(v)).await.unwrap();
    b.resume().await.unwrap();
    assert!(matches!(
        b.instance_last_operation("old", None).await,
        Err(BrokerError::NotFound(_))
    ));
    // A platform still polling the forgotten delete hears it is gone.
    assert!(matches!(
        b.instance_last_operation("old", Some("deprovision-1234"))
            .await,
        Err(BrokerError::Gone(_))
    ));
    assert_eq!(
        b.instance_last_operation("recent", None)
            .await
            .unwrap()
            .state,
        OpState::Succeeded
    );
}

/// The redb store's start-up index decides with `needs_sweep` on the stored
/// bytes: it must read the records as the broker writes them.
#[tokio::test]
async fn needs_sweep_reads_the_records_the_broker_writes() {
    use super::model::needs_sweep;
    let store = Arc::new(MemoryStore::new());
    let b = broker(store.clone(), Arc::new(Scripted::default()));
    b.provision(provision_req("i", "a"), RequestMeta::default())
        .await
        .unwrap();
    let raw = |store: Arc<MemoryStore>| async move {
        store.get(Table::Instances, "i").await.unwrap().unwrap().0
    };
    assert!(!needs_sweep(&raw(store.clone()).await), "settled and ready");
    let (mut inst, v) = b.load_instance("i").await.unwrap().unwrap();
    let last = inst.operations.len() - 1;
    inst.operations[last].state = OpState::InProgress;
    b.write_instance(&inst, Expect::Version(v)).await.unwrap();
    assert!(needs_sweep(&raw(store.clone()).await), "in progress");
    inst.operations[last].state = OpState::Succeeded;
    inst.state = super::model::InstanceState::Deleted;
    let v = b.load_instance("i").await.unwrap().unwrap().1;
    b.write_instance(&inst, Expect::Version(v)).await.unwrap();
    assert!(needs_sweep(&raw(store.clone()).await), "tombstone");
}

#[tokio::test]
async fn a_plan_removed_from_the_catalog_blocks_no_delete() {
    let backend = Arc::new(Scripted::default());
    let b = broker(Arc::new(MemoryStore::new()), backend.clone());
    for id in ["kept", "legacy"] {
        b.provision(provision_req(id, "a"), RequestMeta::default())
            .await
            .unwrap();
    }
    // An instance recorded before instances kept their teardown.
    let (mut legacy, v) = b.load_instance("legacy").await.unwrap().unwrap();
    assert!(legacy.teardown.is_some());
    legacy.teardown = None;
    b.write_instance(&legacy, Expect::Version(v)).await.unwrap();
    let charts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charts");
    let without = CATALOG.replace(
        "- id: plan\n        name: plan",
        "- id: other\n        name: other",
    );
    b.set_catalog(Catalog::from_yaml(Path::new("t.yaml"), &without, &charts).unwrap());
    let out = b
        .deprovision(deprovision_req("kept"), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(out, Outcome::Done);
    assert!(backend.calls().contains(&"deprovision kept".to_string()));
    match b
        .deprovision(deprovision_req("legacy"), RequestMeta::default())
        .await
    {
        Err(BrokerError::Unprocessable(m)) => {
            assert!(m.contains("no longer in the broker's catalog"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // Nothing new on the removed plan.
    let r = b
        .provision(provision_req("new", "a"), RequestMeta::default())
        .await;
    assert!(matches!(r, Err(BrokerError::BadRequest(_))), "{r:?}");
}

/// Store writes per operation kind (one file of its own).
#[path = "writes_tests.rs"]
mod writes;

/// Restarts and replicas (one file of its own).
#[path = "restart_tests.rs"]
mod restart;

/// Commits on the embedded store (in a `tests` folder: it uses the store).
#[path = "tests/redb_commits.rs"]
mod redb_commits;
