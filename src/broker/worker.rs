//! Runs operations to completion and settles the ones a previous process
//! left in progress.
//!
//! Every operation runs in its own task, even a synchronous one: the HTTP
//! handler only awaits it, so a platform that hangs up mid-request cannot
//! cancel work half-way.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::model::{
    Binding, BindingState, HasOperations, Instance, InstanceState, OpKind, OpState, Operation,
    SecretRef, Secrets,
};
use super::ports::{BackendError, BindingCtx, Checkpoint, Expect, InstanceCtx, StoreError, Table};
use super::{Broker, BrokerError, Result, now};

/// How often finishing an operation retries a conflicting write.
const FINISH_RETRIES: usize = 20;

impl Broker {
    /// Starts an instance operation in the background.
    pub(super) fn spawn_instance_op(
        &self,
        instance_id: String,
        op_id: String,
    ) -> JoinHandle<Result<Operation>> {
        let broker = self.clone();
        tokio::spawn(async move {
            let r = broker.run_instance_op(&instance_id, &op_id).await;
            if let Err(e) = &r {
                tracing::error!(instance = %instance_id, operation = %op_id, error = %e,
                    "operation could not be recorded; it will be settled on restart");
            }
            r
        })
    }

    /// Starts a binding operation in the background.
    pub(super) fn spawn_binding_op(
        &self,
        instance_id: String,
        binding_id: String,
        op_id: String,
    ) -> JoinHandle<Result<Operation>> {
        let broker = self.clone();
        tokio::spawn(async move {
            let r = broker
                .run_binding_op(&instance_id, &binding_id, &op_id)
                .await;
            if let Err(e) = &r {
                tracing::error!(instance = %instance_id, binding = %binding_id, operation = %op_id,
                    error = %e, "operation could not be recorded; it will be settled on restart");
            }
            r
        })
    }

    /// Runs an operation the store just accepted: in the background when
    /// `run_async` (202 with its token), else to the end, answering `done` on
    /// success and the backend's failure otherwise (with `instance_usable`
    /// and `update_repeatable` for updates and deprovisions). `binding_id`
    /// picks a binding operation.
    pub(super) async fn run_accepted(
        &self,
        kind: OpKind,
        instance_id: &str,
        binding_id: Option<&str>,
        op_id: String,
        run_async: bool,
        done: super::requests::Outcome,
    ) -> Result<super::requests::Outcome> {
        self.observe(kind, OpState::InProgress);
        let task = match binding_id {
            None => self.spawn_instance_op(instance_id.to_string(), op_id.clone()),
            Some(b) => self.spawn_binding_op(instance_id.to_string(), b.to_string(), op_id.clone()),
        };
        if run_async {
            return Ok(super::requests::Outcome::Accepted { operation: op_id });
        }
        let op = self.join(task).await?;
        match op.state {
            OpState::Succeeded => Ok(done),
            _ => Err(super::provision::failed(
                op,
                matches!(kind, OpKind::Update | OpKind::Deprovision),
            )),
        }
    }

    /// Waits for an operation task.
    pub(super) async fn join(&self, task: JoinHandle<Result<Operation>>) -> Result<Operation> {
        task.await
            .map_err(|e| BrokerError::Internal(format!("operation task failed: {e}")))?
    }

    /// Runs one instance operation and records its outcome.
    async fn run_instance_op(&self, instance_id: &str, op_id: &str) -> Result<Operation> {
        let (inst, _) = self
            .load_instance(instance_id)
            .await?
            .ok_or_else(|| BrokerError::Internal(format!("instance {instance_id} vanished")))?;
        let op = inst
            .find_op(op_id)
            .cloned()
            .ok_or_else(|| BrokerError::Internal(format!("operation {op_id} vanished")))?;
        if op.state != OpState::InProgress {
            return Ok(op);
        }
        let _lease = self.heartbeat(instance_id, None, op_id);
        // The operation acts on the instance as it will be (for updates).
        let mut effective = inst.clone();
        if let Some(t) = &op.target {
            effective.plan_id = t.plan_id.clone();
            effective.parameters = t.parameters.clone();
            effective.context = t.context.clone();
            effective.maintenance_version = t.maintenance_version.clone();
        }
        let outcome = match self.plan(&effective.service_id, &effective.plan_id) {
            None => Err(BackendError::new(format!(
                "plan {} is no longer in the catalog",
                effective.plan_id
            ))),
            Some((_, service, plan)) => {
                let checkpoint = OpCheckpoint {
                    broker: self.clone(),
                    instance_id: instance_id.to_string(),
                    binding_id: None,
                    op_id: op_id.to_string(),
                };
                let ctx = InstanceCtx {
                    instance: &effective,
                    service: &service,
                    plan: &plan,
                    progress: op.progress.as_ref(),
                    checkpoint: &checkpoint,
                    originating_identity: op.originating_identity.as_ref(),
                    request_identity: op.request_identity.as_deref(),
                };
                let work = async {
                    let backend = self
                        .backend(&plan)
                        .map_err(|e| BackendError::new(e.to_string()))?;
                    match op.kind {
                        OpKind::Provision => {
                            self.bind_dependencies(&effective, op.originating_identity.as_ref())
                                .await?;
                            backend.provision(ctx).await
                        }
                        OpKind::Update => backend.update(ctx).await,
                        OpKind::Deprovision => {
                            self.remove_bindings(&effective, ctx.clone()).await?;
                            backend.deprovision(ctx.clone()).await?;
                            // The app is gone; now its credentials may go.
                            self.unbind_dependencies(&effective, op.originating_identity.as_ref())
                                .await
                        }
                        OpKind::Bind | OpKind::Unbind => {
                            Err(BackendError::new("not an instance operation"))
                        }
                    }
                };
                with_deadline(op.deadline, work).await
            }
        };
        if let Err(e) = &outcome {
            tracing::warn!(instance = %instance_id, operation = %op_id, kind = op.kind.as_str(),
                error = %e.message, "operation failed");
        }
        self.finish_instance_op(instance_id, op_id, outcome).await
    }

    /// Records the end of an instance operation (compare-and-swap, retried).
    async fn finish_instance_op(
        &self,
        instance_id: &str,
        op_id: &str,
        outcome: std::result::Result<(), BackendError>,
    ) -> Result<Operation> {
        for _ in 0..FINISH_RETRIES {
            let (mut inst, version) = self
                .load_instance(instance_id)
                .await?
                .ok_or_else(|| BrokerError::Internal(format!("instance {instance_id} vanished")))?;
            let Some(op) = inst.op_mut(op_id) else {
                return Err(BrokerError::Internal(format!("operation {op_id} vanished")));
            };
            if op.state != OpState::InProgress {
                return Ok(op.clone());
            }
            let kind = op.kind;
            let target = op.target.clone();
            settle(op, kind, &outcome);
            let finished = op.clone();
            match (kind, outcome.is_ok()) {
                (OpKind::Provision, true) => inst.state = InstanceState::Ready,
                (OpKind::Provision, false) => inst.state = InstanceState::ProvisionFailed,
                (OpKind::Update, true) => {
                    if let Some(t) = target {
                        inst.plan_id = t.plan_id;
                        inst.parameters = t.parameters;
                        inst.context = t.context;
                        inst.maintenance_version = t.maintenance_version;
                    }
                }
                (OpKind::Deprovision, true) => {
                    // The tombstone keeps the history for `last_operation`
                    // and nothing secret.
                    inst.state = InstanceState::Deleted;
                    inst.secrets = Secrets::default();
                }
                _ => {}
            }
            match self.write_instance(&inst, Expect::Version(version)).await {
                Ok(_) => {
                    self.observe(kind, finished.state);
                    tracing::info!(instance = %instance_id, operation = %op_id, kind = kind.as_str(),
                        state = finished.state.as_str(), "operation finished");
                    return Ok(finished);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BrokerError::Internal(format!(
            "could not record the end of operation {op_id}: too many concurrent writes"
        )))
    }

    /// Unbinds every binding the platform left on an instance being
    /// deprovisioned, and forgets them.
    async fn remove_bindings(
        &self,
        inst: &Instance,
        ctx: InstanceCtx<'_>,
    ) -> std::result::Result<(), BackendError> {
        let internal = |e: BrokerError| BackendError::new(e.to_string());
        let bindings = self.bindings_of(&inst.id).await.map_err(internal)?;
        let backend = self.backend(ctx.plan).map_err(internal)?;
        for (b, version) in bindings {
            if b.state != BindingState::Deleted {
                let bctx = BindingCtx {
                    instance: ctx.clone(),
                    binding: &b,
                };
                if let Some(secret) = &b.secret_ref {
                    self.sink().delete(bctx.clone(), secret).await?;
                }
                backend.unbind(bctx).await?;
            }
            let key = super::binding_key(&b.instance_id, &b.id);
            match self.store().remove(Table::Bindings, &key, version).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(BackendError::new(e.to_string())),
            }
        }
        Ok(())
    }

    /// Runs one binding operation and records its outcome.
    async fn run_binding_op(
        &self,
        instance_id: &str,
        binding_id: &str,
        op_id: &str,
    ) -> Result<Operation> {
        let (binding, _) = self
            .load_binding(instance_id, binding_id)
            .await?
            .ok_or_else(|| BrokerError::Internal(format!("binding {binding_id} vanished")))?;
        let op = binding
            .find_op(op_id)
            .cloned()
            .ok_or_else(|| BrokerError::Internal(format!("operation {op_id} vanished")))?;
        if op.state != OpState::InProgress {
            return Ok(op);
        }
        let _lease = self.heartbeat(instance_id, Some(binding_id), op_id);
        let inst = self.load_instance(instance_id).await?.map(|(i, _)| i);
        let outcome: std::result::Result<BindOutput, BackendError> = match inst
            .as_ref()
            .and_then(|i| self.plan(&i.service_id, &i.plan_id).map(|p| (i, p)))
        {
            None => Err(BackendError::new(
                "the service instance or its plan no longer exists",
            )),
            Some((inst, (_, service, plan))) => {
                let checkpoint = OpCheckpoint {
                    broker: self.clone(),
                    instance_id: instance_id.to_string(),
                    binding_id: Some(binding_id.to_string()),
                    op_id: op_id.to_string(),
                };
                let ctx = BindingCtx {
                    instance: InstanceCtx {
                        instance: inst,
                        service: &service,
                        plan: &plan,
                        progress: op.progress.as_ref(),
                        checkpoint: &checkpoint,
                        originating_identity: op.originating_identity.as_ref(),
                        request_identity: op.request_identity.as_deref(),
                    },
                    binding: &binding,
                };
                let work = async {
                    let backend = self
                        .backend(&plan)
                        .map_err(|e| BackendError::new(e.to_string()))?;
                    match op.kind {
                        OpKind::Bind => {
                            let creds = backend.bind(ctx.clone()).await?;
                            let secret = self.sink().put(ctx, &creds).await?;
                            Ok(Some((creds, secret)))
                        }
                        _ => {
                            if let Some(secret) = &binding.secret_ref {
                                self.sink().delete(ctx.clone(), secret).await?;
                            }
                            backend.unbind(ctx).await?;
                            Ok(None)
                        }
                    }
                };
                with_deadline(op.deadline, work).await
            }
        };
        if let Err(e) = &outcome {
            tracing::warn!(instance = %instance_id, binding = %binding_id, operation = %op_id,
                kind = op.kind.as_str(), error = %e.message, "operation failed");
        }
        for _ in 0..FINISH_RETRIES {
            let (mut b, version) = self
                .load_binding(instance_id, binding_id)
                .await?
                .ok_or_else(|| BrokerError::Internal(format!("binding {binding_id} vanished")))?;
            let Some(op) = b.op_mut(op_id) else {
                return Err(BrokerError::Internal(format!("operation {op_id} vanished")));
            };
            if op.state != OpState::InProgress {
                return Ok(op.clone());
            }
            let kind = op.kind;
            let result = outcome.as_ref().map(|_| ()).map_err(Clone::clone);
            settle(op, kind, &result);
            let finished = op.clone();
            apply_binding_outcome(&mut b, kind, &outcome);
            match self.write_binding(&b, Expect::Version(version)).await {
                Ok(_) => {
                    self.observe(kind, finished.state);
                    return Ok(finished);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BrokerError::Internal(format!(
            "could not record the end of operation {op_id}: too many concurrent writes"
        )))
    }

    /// Settles every operation a previous process left in progress: resumes
    /// it, or fails it when its deadline passed or it was tried too often.
    /// Returns how many were resumed.
    pub async fn resume(&self) -> Result<usize> {
        let mut resumed = 0;
        for (key, bytes, version) in self.store().list_unsettled(Table::Instances).await? {
            let mut inst: Instance = super::decode(&bytes)?;
            if inst.state == InstanceState::Deleted && expired(&inst) {
                // Platforms stop polling long before this; forget it.
                self.store()
                    .remove(Table::Instances, &key, version)
                    .await
                    .ok();
                continue;
            }
            let Some(op) = inst.current().cloned().filter(|o| self.takeable(o)) else {
                continue;
            };
            match self.give_up_reason(&op) {
                Some(reason) => {
                    self.finish_instance_op(&inst.id, &op.id, Err(BackendError::new(reason)))
                        .await?;
                }
                None => {
                    if let Some(o) = inst.op_mut(&op.id) {
                        self.take_over(o);
                    }
                    match self.write_instance(&inst, Expect::Version(version)).await {
                        Ok(_) => {
                            tracing::info!(instance = %inst.id, operation = %op.id, kind = op.kind.as_str(),
                                "resuming operation after restart");
                            drop(self.spawn_instance_op(inst.id.clone(), op.id.clone()));
                            resumed += 1;
                        }
                        // Another replica took it.
                        Err(StoreError::Conflict) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        for (key, bytes, version) in self.store().list_unsettled(Table::Bindings).await? {
            let mut b: Binding = super::decode(&bytes)?;
            if b.state == BindingState::Deleted && expired(&b) {
                self.store()
                    .remove(Table::Bindings, &key, version)
                    .await
                    .ok();
                continue;
            }
            let Some(op) = b.current().cloned().filter(|o| self.takeable(o)) else {
                continue;
            };
            match self.give_up_reason(&op) {
                Some(reason) => {
                    let o = b.op_mut(&op.id).expect("current op exists");
                    settle(o, op.kind, &Err(BackendError::new(reason.clone())));
                    apply_binding_outcome(&mut b, op.kind, &Err(BackendError::new(reason)));
                    self.write_binding(&b, Expect::Version(version)).await.ok();
                }
                None => {
                    if let Some(o) = b.op_mut(&op.id) {
                        self.take_over(o);
                    }
                    if self
                        .write_binding(&b, Expect::Version(version))
                        .await
                        .is_ok()
                    {
                        drop(self.spawn_binding_op(
                            b.instance_id.clone(),
                            b.id.clone(),
                            op.id.clone(),
                        ));
                        resumed += 1;
                    }
                }
            }
        }
        Ok(resumed)
    }

    /// Whether this process may take an in-progress operation over: not one
    /// it runs itself, and with a shared store only one whose owner's
    /// heartbeat has lapsed.
    fn takeable(&self, op: &Operation) -> bool {
        if op.owner.as_deref() == Some(self.inner.replica.as_str()) {
            return false;
        }
        if !self.config().shared_store {
            return true;
        }
        op.heartbeat
            .is_none_or(|h| now().saturating_sub(h) > self.config().lease.as_secs())
    }

    fn take_over(&self, op: &mut Operation) {
        op.attempts += 1;
        op.owner = Some(self.inner.replica.clone());
        op.heartbeat = Some(now());
    }

    /// With a shared store: renews the heartbeat of an operation this
    /// process runs until the returned guard is dropped.
    fn heartbeat(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        op_id: &str,
    ) -> Option<AbortOnDrop> {
        if !self.config().shared_store {
            return None;
        }
        let weak = Arc::downgrade(&self.inner);
        let (iid, bid, oid) = (
            instance_id.to_string(),
            binding_id.map(str::to_string),
            op_id.to_string(),
        );
        let every = (self.config().lease / 3).max(Duration::from_secs(1));
        Some(AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { break };
                let broker = Broker { inner };
                let replica = broker.inner.replica.clone();
                if let Err(e) = broker
                    .update_op(&iid, bid.as_deref(), &oid, |o| {
                        if o.owner.as_deref() == Some(replica.as_str()) {
                            o.heartbeat = Some(now());
                        }
                    })
                    .await
                {
                    tracing::warn!(operation = %oid, error = %e.message, "could not renew the operation's lease");
                }
            }
        })))
    }

    /// Periodically takes over operations whose owner stopped renewing its
    /// lease (a replica that died; shared store, every half lease) and
    /// forgets expired tombstones (every hour otherwise). Operations this
    /// process runs are its own and never taken.
    pub fn spawn_sweeper(&self) -> AbortOnDrop {
        // A weak reference: the sweeper must not keep a dropped broker (and
        // its store, whose file lock a successor needs) alive.
        let weak = Arc::downgrade(&self.inner);
        let every = if self.config().shared_store {
            (self.config().lease / 2).max(Duration::from_secs(1))
        } else {
            Duration::from_secs(3600)
        };
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { break };
                match (Broker { inner }).resume().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        taken_over = n,
                        "took over operations whose owner's lease lapsed"
                    ),
                    Err(e) => tracing::warn!(error = %e, "sweeping for orphaned operations failed"),
                }
            }
        }))
    }

    fn give_up_reason(&self, op: &Operation) -> Option<String> {
        if now() >= op.deadline {
            Some(format!(
                "the broker restarted while this {} ran and its deadline has passed",
                op.kind.as_str()
            ))
        } else if op.attempts >= self.config().max_attempts {
            Some(format!(
                "gave up after the broker restarted {} times during this {}",
                op.attempts,
                op.kind.as_str()
            ))
        } else {
            None
        }
    }
}

/// How long a tombstone (a deleted instance or binding, kept so
/// `last_operation` can answer 410) outlives its last operation.
pub const TOMBSTONE_TTL_SECS: u64 = 7 * 24 * 3600;

/// Whether a tombstone's last operation finished over a week ago.
fn expired(record: &impl HasOperations) -> bool {
    record
        .last_op()
        .and_then(|o| o.finished_at)
        .is_some_and(|t| now().saturating_sub(t) > TOMBSTONE_TTL_SECS)
}

/// Marks an operation finished with the OSB fields its kind allows.
fn settle(op: &mut Operation, kind: OpKind, outcome: &std::result::Result<(), BackendError>) {
    op.finished_at = Some(now());
    match outcome {
        Ok(()) => {
            op.state = OpState::Succeeded;
            op.description = Some(match kind {
                OpKind::Provision => "Provisioned".into(),
                OpKind::Update => "Updated".into(),
                OpKind::Deprovision => "Deprovisioned".into(),
                OpKind::Bind => "Bound".into(),
                OpKind::Unbind => "Unbound".into(),
            });
        }
        Err(e) => {
            op.state = OpState::Failed;
            op.description = Some(if e.message.trim().is_empty() {
                format!("{} failed", kind.as_str())
            } else {
                e.message.clone()
            });
            // The spec allows these flags only on failed updates and
            // deprovisions; both default to true.
            if matches!(kind, OpKind::Update | OpKind::Deprovision) {
                op.instance_usable = Some(e.instance_usable.unwrap_or(true));
            }
            if kind == OpKind::Update {
                op.update_repeatable = Some(e.update_repeatable.unwrap_or(true));
            }
        }
    }
}

/// What a binding operation produced: credentials and where they went.
type BindOutput = Option<(Secrets, SecretRef)>;

fn apply_binding_outcome(
    b: &mut Binding,
    kind: OpKind,
    outcome: &std::result::Result<BindOutput, BackendError>,
) {
    match (kind, outcome) {
        (OpKind::Bind, Ok(Some((creds, secret)))) => {
            b.state = BindingState::Bound;
            b.credentials = creds.clone();
            b.secret_ref = Some(secret.clone());
        }
        (OpKind::Bind, _) => b.state = BindingState::BindFailed,
        (_, Ok(_)) => {
            b.state = BindingState::Deleted;
            b.credentials = Secrets::default();
            b.secret_ref = None;
        }
        _ => {}
    }
}

/// Runs `work` until the operation's deadline.
async fn with_deadline<T>(
    deadline: u64,
    work: impl std::future::Future<Output = std::result::Result<T, BackendError>>,
) -> std::result::Result<T, BackendError> {
    let left = Duration::from_secs(deadline.saturating_sub(now()));
    match tokio::time::timeout(left, work).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::new(
            "the operation did not finish before its deadline (the plan's maximum_polling_duration; for a synchronous request, --sync-timeout)",
        )),
    }
}

/// Saves backend progress into the operation record (compare-and-swap).
struct OpCheckpoint {
    broker: Broker,
    instance_id: String,
    binding_id: Option<String>,
    op_id: String,
}

#[async_trait::async_trait]
impl Checkpoint for OpCheckpoint {
    async fn save(&self, progress: serde_json::Value) -> std::result::Result<(), BackendError> {
        self.broker
            .update_op(
                &self.instance_id,
                self.binding_id.as_deref(),
                &self.op_id,
                |o| o.progress = Some(progress.clone()),
            )
            .await
    }
}

impl Broker {
    /// Changes one operation inside its record (compare-and-swap, retried).
    async fn update_op(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        op_id: &str,
        f: impl Fn(&mut Operation),
    ) -> std::result::Result<(), BackendError> {
        let fail = |e: String| BackendError::new(format!("saving operation state: {e}"));
        for _ in 0..FINISH_RETRIES {
            let written = match binding_id {
                None => {
                    let (mut inst, v) = self
                        .load_instance(instance_id)
                        .await
                        .map_err(|e| fail(e.to_string()))?
                        .ok_or_else(|| fail("instance vanished".into()))?;
                    f(inst
                        .op_mut(op_id)
                        .ok_or_else(|| fail("operation vanished".into()))?);
                    self.write_instance(&inst, Expect::Version(v)).await
                }
                Some(bid) => {
                    let (mut b, v) = self
                        .load_binding(instance_id, bid)
                        .await
                        .map_err(|e| fail(e.to_string()))?
                        .ok_or_else(|| fail("binding vanished".into()))?;
                    f(b.op_mut(op_id)
                        .ok_or_else(|| fail("operation vanished".into()))?);
                    self.write_binding(&b, Expect::Version(v)).await
                }
            };
            match written {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        Err(fail("too many concurrent writes".into()))
    }
}

/// Aborts a background task when dropped.
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
