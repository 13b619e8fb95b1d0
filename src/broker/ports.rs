//! The ports the core drives: where records live, what provisions, and where
//! binding credentials are delivered. Adapters implement these; the core never
//! sees axum, kube, reqwest or redb types.

use async_trait::async_trait;
use serde_json::Value;

use super::model::{Binding, Instance, OriginatingIdentity, SecretRef, Secrets};
use super::summary::{SummaryPage, SummaryQuery};
use crate::catalog::{Plan, Service};

// === Store ===

/// The tables of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Instances, keyed by instance id.
    Instances,
    /// Bindings, keyed by `instance_id/binding_id`.
    Bindings,
}

impl Table {
    /// Stable name (also the AEAD associated data prefix).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Instances => "instances",
            Table::Bindings => "bindings",
        }
    }
}

/// The precondition of a write: the optimistic-concurrency half of
/// compare-and-swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must exist at exactly this version.
    Version(u64),
}

/// What a write returns: the record's new version, or why it was refused.
pub type WriteResult = Result<u64, StoreError>;

/// A write of [`Store::put`]'s parts, for the writes that carry more
/// ([`Store::put_tagged`], [`Store::put_removing`]): `value` to `key` of
/// `table` if `expect` holds.
pub struct Put<'a> {
    pub table: Table,
    pub key: &'a str,
    pub value: Vec<u8>,
    pub expect: Expect,
}

impl<'a> Put<'a> {
    pub fn new(table: Table, key: &'a str, value: Vec<u8>, expect: Expect) -> Self {
        Put {
            table,
            key,
            value,
            expect,
        }
    }
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The precondition did not hold: someone else wrote first.
    #[error("the record changed concurrently")]
    Conflict,
    /// The store itself failed (I/O, corruption).
    #[error("store failure: {0}")]
    Backend(String),
    /// A record exists but this broker cannot open it: sealed with a store
    /// key it was not given, or tampered with. The message names the record
    /// and the reason, never key material or plaintext.
    #[error("{0}")]
    Unreadable(String),
}

/// A key-value store with per-key versions and compare-and-swap writes.
/// Values are opaque bytes; adapters encrypt them at rest.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads a value and its version.
    async fn get(&self, table: Table, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError>;
    /// Writes a value if `expect` holds; returns the new version.
    async fn put(&self, table: Table, key: &str, value: Vec<u8>, expect: Expect) -> WriteResult;
    /// Removes a key if it is at the expected version.
    async fn remove(&self, table: Table, key: &str, version: u64) -> Result<(), StoreError>;
    /// Every entry whose key starts with `prefix`.
    async fn list(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>, u64)>, StoreError>;
    /// Writes like [`Store::put`], tagging the record so [`Store::tagged`]
    /// finds it without reading the others. Stores without an index of
    /// their own keep no tags (the default).
    async fn put_tagged(&self, put: Put<'_>, _tags: &Tags) -> WriteResult {
        self.put(put.table, put.key, put.value, put.expect).await
    }
    /// Writes like [`Store::put_tagged`] and removes each of `removals`
    /// that is still at its version (one that moved on is left), in one
    /// durable write where the store can (the redb store: one transaction,
    /// and nothing removed when the put conflicts). The default removes
    /// them one by one, then puts. Either way a caller whose put conflicts
    /// decides again and sends the removals again with its next put: a
    /// removal done already then finds nothing at its version.
    async fn put_removing(&self, put: Put<'_>, tags: &Tags, removals: &[Removal]) -> WriteResult {
        for r in removals {
            match self.remove(r.table, &r.key, r.version).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        self.put_tagged(put, tags).await
    }
    /// The records written with `tag`, or `None` when this store keeps no
    /// tags (callers then [`Store::list`] everything).
    async fn tagged(
        &self,
        _table: Table,
        _tag: Tag<'_>,
    ) -> Result<Option<Vec<(String, Vec<u8>, u64)>>, StoreError> {
        Ok(None)
    }
    /// At least every entry the start-up sweep must see
    /// ([`super::model::needs_sweep`]); a store that keeps an index of them
    /// answers without reading the others.
    async fn list_unsettled(
        &self,
        table: Table,
    ) -> Result<Vec<(String, Vec<u8>, u64)>, StoreError> {
        self.list(table, "").await
    }
    /// A page of instance summaries (the dashboard's table), or `None` when
    /// this store keeps no summary index (callers then summarize
    /// [`Store::list`]). A store that keeps one updates it in the write
    /// that changes the record, so a page costs the page, not the table.
    async fn instance_summaries(
        &self,
        _query: &SummaryQuery,
    ) -> Result<Option<SummaryPage>, StoreError> {
        Ok(None)
    }
}

/// A record [`Store::put_removing`] removes with its write, if the record
/// is still at `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// Its table.
    pub table: Table,
    /// Its key.
    pub key: String,
    /// The version it was read at.
    pub version: u64,
}

/// What a record is tagged with when written, so the records a replica must
/// act on are found without reading every record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// The replica running the record's in-flight operation, if one is.
    pub owner: Option<String>,
    /// The record is a tombstone (forgotten after a week).
    pub tombstone: bool,
}

/// One tag to look records up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag<'a> {
    /// Records whose in-flight operation this replica runs.
    Owner(&'a str),
    /// Tombstones.
    Tombstone,
}

// === Replicas ===

/// The liveness of the replicas sharing a store, each known by a lease of
/// its own, so finding a dead replica's work reads no record while every
/// replica lives (operations still renew their own heartbeats, for owners
/// without a lease).
#[async_trait]
pub(crate) trait Replicas: Send + Sync + 'static {
    /// Whether `owner` holds a live lease; `None` when it holds none this
    /// replica knows of (a replica of an older broker, or one whose lease
    /// was already released), and the operation's own heartbeat decides.
    fn live(&self, owner: &str) -> Option<bool>;
    /// Replicas (never this one) whose lease lapsed: their in-flight
    /// operations are up for takeover.
    fn lapsed(&self) -> Vec<String>;
    /// Waits until a lease may have lapsed or changed (or a while passed).
    async fn changed(&self);
    /// Drops a lapsed replica's lease once its operations are taken over,
    /// unless it was renewed meanwhile.
    async fn release(&self, owner: &str);
    /// Every lease this replica knows of, for the dashboard.
    fn leases(&self) -> Vec<LeaseView> {
        Vec::new()
    }
}

/// One replica's lease as this replica sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseView {
    /// The replica holding it.
    pub holder: String,
    /// The lease object's name.
    pub name: String,
    /// Its last renewal, as the lease says.
    pub renewed: Option<String>,
    /// How long a renewal holds, in seconds.
    pub duration_secs: u64,
    /// Seconds since this replica saw it renewed.
    pub seen_secs_ago: u64,
    /// Renewed within its duration.
    pub live: bool,
    /// It is this replica's own.
    pub own: bool,
}

// === Backends ===

/// Saves a backend's progress into the running operation, so a restarted
/// broker resumes from it (e.g. an upstream broker's operation token).
#[async_trait]
pub(crate) trait Checkpoint: Send + Sync {
    /// Persists `progress`; the next attempt sees it as `InstanceCtx::progress`.
    async fn save(&self, progress: Value) -> Result<(), BackendError>;
    /// Says what the running operation waits for; `last_operation` shows it
    /// as the description until the operation ends.
    async fn note(&self, _description: &str) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A checkpoint that keeps nothing (previews and tests).
pub(crate) struct NoCheckpoint;

#[async_trait]
impl Checkpoint for NoCheckpoint {
    async fn save(&self, _progress: Value) -> Result<(), BackendError> {
        Ok(())
    }
}

/// What a backend needs to act on an instance.
#[derive(Clone)]
pub(crate) struct InstanceCtx<'a> {
    /// The instance, with the plan and parameters the operation targets.
    pub(crate) instance: &'a Instance,
    /// Its service.
    pub(crate) service: &'a Service,
    /// The plan the operation targets.
    pub(crate) plan: &'a Plan,
    /// Backend progress saved by an earlier attempt.
    pub(crate) progress: Option<&'a Value>,
    /// Where to save progress during this attempt.
    pub(crate) checkpoint: &'a dyn Checkpoint,
    /// Who asked for the operation, to pass on (upstream brokers) or check.
    pub(crate) originating_identity: Option<&'a OriginatingIdentity>,
    /// The platform's request identity, to pass on.
    pub(crate) request_identity: Option<&'a str>,
}

impl std::fmt::Debug for InstanceCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceCtx")
            .field("instance", &self.instance)
            .field("plan", &self.plan.name)
            .finish_non_exhaustive()
    }
}

/// What a backend needs to act on a binding.
#[derive(Clone, Debug)]
pub(crate) struct BindingCtx<'a> {
    /// The instance bound to.
    pub(crate) instance: InstanceCtx<'a>,
    /// The binding.
    pub(crate) binding: &'a Binding,
}

/// A failure a backend reports; its message is shown to the platform user,
/// so backends redact secrets before building one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// User-facing message (helm's own words, redacted).
    pub(crate) message: String,
    /// For failed updates/deprovisions: is the instance still usable?
    pub(crate) instance_usable: Option<bool>,
    /// For failed updates: may the same update succeed later?
    pub(crate) update_repeatable: Option<bool>,
    /// For failed binds: the backend made sure nothing of the binding exists
    /// (no user, no credentials anywhere), so there is nothing to unbind.
    pub(crate) left_nothing: bool,
}

impl BackendError {
    /// A failure with only a message.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        BackendError {
            message: message.into(),
            instance_usable: None,
            update_repeatable: None,
            left_nothing: false,
        }
    }

    /// The same failure, saying that nothing of the binding was left.
    pub(crate) fn leaving_nothing(mut self) -> Self {
        self.left_nothing = true;
        self
    }
}

/// Provisions, updates and deprovisions instances and creates credentials.
/// Every method must be idempotent: after a crash the broker runs it again.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Whether this backend can finish an operation of `kind` within one
    /// HTTP request; if not, the core answers 422 AsyncRequired to requests
    /// without `accepts_incomplete=true`.
    fn synchronous(&self, plan: &Plan, kind: super::model::OpKind) -> bool;
    /// Creates the instance's resources.
    async fn provision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError>;
    /// Applies a plan or parameter change (the ctx carries the target).
    async fn update(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError>;
    /// Removes the instance's resources; succeeds if they are already gone.
    async fn deprovision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError>;
    /// Creates credentials for a binding.
    async fn bind(&self, ctx: BindingCtx<'_>) -> Result<Secrets, BackendError>;
    /// Revokes a binding's credentials; succeeds if already gone.
    async fn unbind(&self, ctx: BindingCtx<'_>) -> Result<(), BackendError>;
    /// Revokes a binding's credentials because its instance is deprovisioned
    /// right after: credentials that die with the instance need no revoking
    /// when that can't be done now. `Some` is a note for the operation's
    /// description (what was skipped and why).
    async fn unbind_with_instance(
        &self,
        ctx: BindingCtx<'_>,
    ) -> Result<Option<String>, BackendError> {
        self.unbind(ctx).await.map(|()| None)
    }
}

/// Delivers binding credentials where apps read them (a Kubernetes Secret,
/// or a Secret manifest on disk).
#[async_trait]
pub(crate) trait SecretSink: Send + Sync + 'static {
    /// Writes (or overwrites) the binding's Secret; returns where it went.
    async fn put(
        &self,
        ctx: BindingCtx<'_>,
        credentials: &Secrets,
    ) -> Result<SecretRef, BackendError>;
    /// Removes the Secret; succeeds if already gone.
    async fn delete(&self, ctx: BindingCtx<'_>, secret: &SecretRef) -> Result<(), BackendError>;
}

// === Authorization ===

/// Checks that the platform user behind a request may act in a namespace,
/// so the broker never uses its own rights on someone's behalf (the confused
/// deputy).
#[async_trait]
pub(crate) trait Authorizer: Send + Sync + 'static {
    /// Whether `identity` may put workloads and Secrets in `namespace`.
    /// `Err` when the question could not be answered.
    async fn may_act_in(
        &self,
        identity: &OriginatingIdentity,
        namespace: &str,
    ) -> Result<bool, BackendError>;
}

/// Reads Namespaces, for the operator's `--namespace-selector`.
#[async_trait]
pub(crate) trait NamespaceLabels: Send + Sync + 'static {
    /// The labels of `namespace`; `None` when it does not exist.
    async fn labels(
        &self,
        namespace: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, BackendError>;
}
