//! The core rules of the broker: instance and binding lifecycles, idempotent
//! repeats, durable asynchronous operations and one operation per instance.
//!
//! # Layout
//! - [`ports`]: the traits the core drives (store, backends, secret sinks).
//! - [`model`]: the records kept in the store.
//! - [`requests`]: plain request and answer types for the edge.
//! - one file per OSB operation: [`provision`], [`update`], [`deprovision`],
//!   [`bind`], [`unbind`], [`fetch`] (GETs and `last_operation`); each reads
//!   validate → decide → commit → run, the commit through `cas`, the one
//!   compare-and-swap loop;
//! - [`worker`]: running operations (one finisher for instances and
//!   bindings) and recovering them after a restart, on one path for both;
//! - [`takeover`]: a dead replica's operations, found by its lease.
//!
//! The core imports no axum, kube, reqwest or redb; `runtime` wires adapters
//! to the ports.

mod authorize;
pub(crate) mod bind;
mod cas;
mod checks;
pub(crate) mod dependencies;
pub(crate) mod deprovision;
pub(crate) mod error;
pub(crate) mod fetch;
pub mod model;
pub(crate) mod namespaces;
pub(crate) mod overview;
mod pending;
pub mod ports;
pub(crate) mod provision;
mod record;
pub(crate) mod requests;
pub(crate) mod secrets;
pub(crate) mod summary;
pub(crate) mod takeover;
pub(crate) mod trust;
pub(crate) mod unbind;
pub(crate) mod update;
pub mod worker;

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::catalog::{Catalog, Plan, ServedBy, Service};
use checks::{context_object, parameters_object, required, valid_id};
pub(crate) use error::{BrokerError, Result};
use model::{Binding, Instance, OpKind, OpState};
#[cfg(test)]
use ports::Expect;
use ports::{Backend, SecretSink, Store, Table};

/// Settings of the core that are not in the catalog.
#[derive(Clone, Debug)]
pub(crate) struct BrokerConfig {
    /// Namespace for instances whose platform sent none.
    pub(crate) default_namespace: String,
    /// Deadline of an operation whose plan sets no `maximum_polling_duration`.
    pub(crate) default_operation_timeout: Duration,
    /// Deadline of an operation a request waits for (no
    /// `accepts_incomplete`): the platform's connection and a worker are
    /// held that long at most.
    pub(crate) sync_operation_timeout: Duration,
    /// How many broker processes may start the same operation before it is
    /// failed instead of resumed again (guards against crash loops).
    pub(crate) max_attempts: u32,
    /// Whether other broker processes share the store (replicas on the
    /// Kubernetes store). Then operations are leased: the owner renews a
    /// heartbeat, and others take over only when it lapses. With a store
    /// only this process can open, everything in progress at start is
    /// orphaned and resumed at once.
    pub(crate) shared_store: bool,
    /// How long an owner's heartbeat stays valid (shared store).
    pub(crate) lease: Duration,
    /// Which namespaces requests may target.
    pub(crate) namespaces: namespaces::NamespacePolicy,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            default_namespace: "default".into(),
            default_operation_timeout: Duration::from_secs(30 * 60),
            sync_operation_timeout: Duration::from_secs(60),
            max_attempts: 5,
            shared_store: false,
            lease: Duration::from_secs(30),
            namespaces: namespaces::NamespacePolicy::default(),
        }
    }
}

/// Called when an operation starts or finishes (for metrics).
pub(crate) type OperationObserver = Arc<dyn Fn(OpKind, OpState) + Send + Sync>;

/// The adapters the core drives.
pub(crate) struct Adapters {
    /// Where records live.
    pub(crate) store: Arc<dyn Store>,
    /// Backend for chart plans.
    pub(crate) chart: Arc<dyn Backend>,
    /// Backend for upstream plans, when configured.
    pub(crate) upstream: Option<Arc<dyn Backend>>,
    /// Where binding credentials are delivered.
    pub(crate) sink: Arc<dyn SecretSink>,
    /// Checks Kubernetes originating identities against target namespaces
    /// (helm engine); `None` trusts the platform's word (render engine, or
    /// SubjectAccessReview turned off by the operator).
    pub(crate) authorizer: Option<Arc<dyn ports::Authorizer>>,
    /// Reads Namespace labels for the operator's selector; `None` without
    /// a cluster.
    pub(crate) namespaces: Option<Arc<dyn ports::NamespaceLabels>>,
}

/// The broker core. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    /// This process, as an operation owner.
    replica: String,
    catalog: RwLock<Arc<Catalog>>,
    adapters: Adapters,
    config: BrokerConfig,
    observer: Option<OperationObserver>,
    /// Operations this process runs now, by kind ([`worker`] keeps it).
    running: worker::Running,
    /// The replicas' leases, when the shared store keeps them.
    replicas: std::sync::OnceLock<Arc<dyn ports::Replicas>>,
    /// Synchronous deletes' records until they finish ([`pending`]).
    pending: pending::Pending,
}

/// A service and plan of a shared catalog, or the stand-in for a plan the
/// catalog no longer has ([`crate::catalog::Teardown`], deletes only).
enum PlanRef {
    Catalog {
        catalog: Arc<Catalog>,
        service: usize,
        plan: usize,
    },
    Retired(Box<Service>),
}

impl PlanRef {
    fn get(&self) -> (&Service, &Plan) {
        match self {
            PlanRef::Catalog {
                catalog,
                service,
                plan,
            } => {
                let s = &catalog.services()[*service];
                (s, &s.plans[*plan])
            }
            PlanRef::Retired(s) => (s, &s.plans[0]),
        }
    }
}

/// A [`Broker`] that does not keep it alive: background tasks hold this,
/// so dropping the last broker (and with it the store, whose file lock a
/// successor needs) ends them.
#[derive(Clone)]
pub(crate) struct WeakBroker(std::sync::Weak<Inner>);

impl WeakBroker {
    /// The broker, unless it was dropped.
    pub(crate) fn upgrade(&self) -> Option<Broker> {
        self.0.upgrade().map(|inner| Broker { inner })
    }
}

// === impl Broker ===

impl Broker {
    /// A broker over a loaded catalog and its adapters.
    pub(crate) fn new(
        catalog: Catalog,
        adapters: Adapters,
        config: BrokerConfig,
        observer: Option<OperationObserver>,
    ) -> Self {
        Broker {
            inner: Arc::new(Inner {
                replica: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()),
                catalog: RwLock::new(Arc::new(catalog)),
                adapters,
                config,
                observer,
                running: worker::Running::default(),
                pending: pending::Pending::default(),
                replicas: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A handle for background tasks that must not keep the broker alive.
    pub(crate) fn downgrade(&self) -> WeakBroker {
        WeakBroker(Arc::downgrade(&self.inner))
    }

    /// The current catalog.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.read().expect("catalog lock").clone()
    }

    /// Replaces the catalog (e.g. after refreshing upstream catalogs).
    pub(crate) fn set_catalog(&self, catalog: Catalog) {
        *self.inner.catalog.write().expect("catalog lock") = Arc::new(catalog);
    }

    /// This process, as an operation owner.
    pub(crate) fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// Judges other replicas by their leases (shared store), and finds a
    /// dead one's operations by them instead of sweeping every record each
    /// half lease. Set once, before [`Broker::resume`] and
    /// [`Broker::spawn_sweeper`]; later calls are ignored.
    pub(crate) fn set_replicas(&self, replicas: Arc<dyn ports::Replicas>) {
        let _ = self.inner.replicas.set(replicas);
    }

    fn replicas(&self) -> Option<&Arc<dyn ports::Replicas>> {
        self.inner.replicas.get()
    }

    fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    fn store(&self) -> &dyn Store {
        self.inner.adapters.store.as_ref()
    }

    fn sink(&self) -> &dyn SecretSink {
        self.inner.adapters.sink.as_ref()
    }

    fn observe(&self, kind: OpKind, state: OpState) {
        if let Some(o) = &self.inner.observer {
            o(kind, state);
        }
    }

    /// The backend that serves a plan.
    fn backend(&self, plan: &Plan) -> Result<Arc<dyn Backend>> {
        match &plan.served_by {
            ServedBy::Chart(_) => Ok(self.inner.adapters.chart.clone()),
            ServedBy::Upstream(u) => self.inner.adapters.upstream.clone().ok_or_else(|| {
                BrokerError::Unprocessable(format!(
                    "plan {} is served by upstream broker {:?}, which is not configured",
                    plan.name, u.broker
                ))
            }),
        }
    }

    /// Looks up a service and plan in the current catalog, for use across
    /// awaits: the catalog is shared, not copied, and an operation keeps the
    /// definition it started with even when the catalog is swapped.
    fn plan(&self, service_id: &str, plan_id: &str) -> Option<PlanRef> {
        let catalog = self.catalog();
        let (service, s) = catalog
            .services()
            .iter()
            .enumerate()
            .find(|(_, s)| s.id == service_id)?;
        let plan = s.plans.iter().position(|p| p.id == plan_id)?;
        Some(PlanRef::Catalog {
            catalog,
            service,
            plan,
        })
    }

    /// The plan to delete an instance (or one of its bindings) with: its
    /// plan in the catalog, else the stand-in its [`Instance::teardown`]
    /// describes, so a plan removed from the catalog blocks no delete.
    fn plan_to_delete(&self, inst: &Instance, plan_id: &str) -> Option<PlanRef> {
        self.plan(&inst.service_id, plan_id).or_else(|| {
            inst.teardown.as_ref().map(|t| {
                tracing::info!(instance = %inst.id, plan = %plan_id,
                    "the plan is no longer in the catalog: deleting with what the instance recorded of it");
                PlanRef::Retired(Box::new(t.stand_in(&inst.service_id, plan_id)))
            })
        })
    }

    /// Deadline, in unix seconds, of an operation on this plan starting now.
    fn deadline(&self, plan: &Plan) -> u64 {
        let secs = plan
            .maximum_polling_duration
            .unwrap_or(self.config().default_operation_timeout.as_secs());
        now() + secs
    }

    /// 403 unless the operator lets the broker act in `namespace`: its name
    /// (`--namespaces`, system namespaces) and, when `labelled` and a
    /// selector is set, its labels. `what` says where the name came from.
    async fn check_namespace(&self, namespace: &str, what: &str, labelled: bool) -> Result<()> {
        let policy = &self.config().namespaces;
        policy
            .check_name(namespace)
            .map_err(|e| BrokerError::Forbidden(format!("{what}: {e}")))?;
        let Some(selector) = policy.selector().filter(|_| labelled) else {
            return Ok(());
        };
        let Some(lookup) = &self.inner.adapters.namespaces else {
            return Err(BrokerError::Internal(
                "a namespace selector is set but no cluster is configured".into(),
            ));
        };
        let labels = lookup.labels(namespace).await.map_err(|e| {
            BrokerError::Internal(format!("reading Namespace {namespace:?}: {}", e.message))
        })?;
        match labels {
            Some(l) if selector.matches(&l) => Ok(()),
            Some(_) => Err(BrokerError::Forbidden(format!(
                "{what}: the broker may not act in namespace {namespace:?}: its labels do not match the operator's selector {:?}",
                selector.as_str()
            ))),
            None => Err(BrokerError::Forbidden(format!(
                "{what}: the broker may not act in namespace {namespace:?}: it does not exist, so it can't match the operator's selector {:?}",
                selector.as_str()
            ))),
        }
    }

    /// A new operation of `kind` on `plan`, in progress, recording who asked.
    fn start_op(
        &self,
        kind: OpKind,
        plan: &Plan,
        fingerprint: String,
        meta: &requests::RequestMeta,
    ) -> model::Operation {
        let description = match kind {
            OpKind::Provision => "Provisioning",
            OpKind::Update => "Updating",
            OpKind::Deprovision => "Deprovisioning",
            OpKind::Bind => "Binding",
            OpKind::Unbind => "Unbinding",
        };
        model::Operation {
            id: new_operation_id(kind),
            kind,
            state: OpState::InProgress,
            description: Some(description.into()),
            instance_usable: None,
            update_repeatable: None,
            started_at: now(),
            finished_at: None,
            // Every synchronous request runs its operation (see must_run_async).
            deadline: if meta.accepts_incomplete {
                self.deadline(plan)
            } else {
                self.deadline(plan)
                    .min(now() + self.config().sync_operation_timeout.as_secs())
            },
            attempts: 1,
            fingerprint,
            target: None,
            originating_identity: meta.originating_identity.clone(),
            request_identity: meta.request_identity.clone(),
            progress: None,
            owner: Some(self.inner.replica.clone()),
            heartbeat: Some(now()),
        }
    }

    /// Whether a request must run asynchronously, or be refused.
    fn must_run_async(&self, plan: &Plan, kind: OpKind, accepts_incomplete: bool) -> Result<bool> {
        let sync_ok = !plan.async_required && self.backend(plan)?.synchronous(plan, kind);
        match (accepts_incomplete, sync_ok) {
            (true, _) => Ok(true),
            (false, true) => Ok(false),
            (false, false) => Err(BrokerError::AsyncRequired),
        }
    }

    /// Whether a request without `accepts_incomplete=true` names a catalog
    /// plan that only serves `kind` asynchronously. Used when the instance or
    /// binding is already gone, where the spec's 410 and 422 both apply:
    /// osb-checker-kotlin follows a refused synchronous create with a
    /// synchronous delete and expects 422 AsyncRequired again.
    fn refuses_sync(&self, service_id: &str, plan_id: &str, kind: OpKind, accepts: bool) -> bool {
        !accepts
            && self.plan(service_id, plan_id).is_some_and(|found| {
                let (_, plan) = found.get();
                matches!(
                    self.must_run_async(plan, kind, false),
                    Err(BrokerError::AsyncRequired)
                )
            })
    }

    // === records ===

    async fn load_instance(&self, id: &str) -> Result<Option<(Instance, u64)>> {
        match self.read_record(Table::Instances, id).await? {
            Some((bytes, v)) => Ok(Some((decode(&bytes)?, v))),
            None => Ok(None),
        }
    }

    /// Writes an instance record as a test arranges it.
    #[cfg(test)]
    async fn write_instance(
        &self,
        inst: &Instance,
        expect: Expect,
    ) -> std::result::Result<u64, ports::StoreError> {
        self.put_record(inst, expect).await
    }

    async fn load_binding(&self, instance_id: &str, id: &str) -> Result<Option<(Binding, u64)>> {
        match self
            .read_record(Table::Bindings, &binding_key(instance_id, id))
            .await?
        {
            Some((bytes, v)) => Ok(Some((decode(&bytes)?, v))),
            None => Ok(None),
        }
    }

    async fn bindings_of(&self, instance_id: &str) -> Result<Vec<(Binding, u64)>> {
        let prefix = binding_key(instance_id, "");
        let rows = self.store().list(Table::Bindings, &prefix).await?;
        let rows = self.inner.pending.overlay(Table::Bindings, rows);
        rows.into_iter()
            .map(|(_, bytes, v)| Ok((decode(&bytes)?, v)))
            .collect()
    }
}

/// Bindings are keyed under their instance, NUL between the two. Ids with
/// NUL (or any control character) are refused at the edge and by
/// [`crate::names::check_id`] before a record is written, so `"<instance>\0"` is
/// a prefix of exactly that instance's binding keys: the encoding stays
/// the one existing stores hold, and can't alias.
fn binding_key(instance_id: &str, binding_id: &str) -> String {
    format!("{instance_id}\0{binding_id}")
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| BrokerError::Internal(format!("corrupt record: {e}")))
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new operation token.
fn new_operation_id(kind: OpKind) -> String {
    format!("{}-{}", kind.as_str(), uuid::Uuid::new_v4())
}

/// A delete of something whose plan the operator removed from the catalog,
/// on an instance recorded before instances kept their
/// [`Instance::teardown`]: the broker needs the plan (chart, upstream) to
/// remove what it made, so it says what to do rather than fail inside.
fn plan_gone(plan_id: &str, what: &str, id: &str) -> BrokerError {
    BrokerError::Unprocessable(format!(
        "plan {plan_id} of {what} {id} is no longer in the broker's catalog, and removing \
         what it made needs the plan's definition: ask the broker's operator to put the plan \
         back (it may be hidden from new provisions), then retry"
    ))
}

#[cfg(test)]
mod tests;
