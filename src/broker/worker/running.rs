//! Running an operation: its backend work under the deadline and the lease,
//! then one finisher records the outcome.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::{OpCheckpoint, OpHome, with_deadline};
use crate::broker::model::{
    Binding, BindingState, HasOperations, Instance, InstanceState, OpKind, OpState, Operation,
    SecretRef, Secrets, UpdateTarget,
};
use crate::broker::ports::{BackendError, BindingCtx, InstanceCtx};
use crate::broker::{Broker, BrokerError, Result, binding_key};
use crate::catalog::{Plan, Service};

/// The kind of an operation from its id, which begins with it
/// ([`crate::broker::new_operation_id`]).
fn kind_of(op_id: &str) -> Option<OpKind> {
    KINDS.into_iter().find(|k| {
        op_id
            .strip_prefix(k.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// Operations running in this process, by kind.
#[derive(Default)]
pub(in crate::broker) struct Running([AtomicUsize; 5]);

const KINDS: [OpKind; 5] = [
    OpKind::Provision,
    OpKind::Update,
    OpKind::Deprovision,
    OpKind::Bind,
    OpKind::Unbind,
];

/// Counts one running operation until dropped.
struct RunningGuard(Option<(Arc<crate::broker::Inner>, usize)>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Some((inner, i)) = &self.0 {
            inner.running.0[*i].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Broker {
    /// Starts an instance operation in the background.
    pub(in crate::broker) fn spawn_instance_op(
        &self,
        instance_id: String,
        op_id: String,
    ) -> JoinHandle<Result<Operation>> {
        let broker = self.clone();
        let (iid, oid) = (instance_id.clone(), op_id.clone());
        self.spawn_op(&instance_id, None, &op_id, async move {
            let r = broker.run_instance_op(&iid, &oid).await;
            // A synchronous delete's held record ends with its task,
            // whether or not the task recorded the outcome.
            broker.release_held(&iid, None, &oid);
            if let Err(e) = &r {
                tracing::error!(error = %e,
                    "operation could not be recorded; it will be settled on restart");
            }
            r
        })
    }

    /// Starts a binding operation in the background.
    pub(in crate::broker) fn spawn_binding_op(
        &self,
        instance_id: String,
        binding_id: String,
        op_id: String,
    ) -> JoinHandle<Result<Operation>> {
        let broker = self.clone();
        let (iid, bid, oid) = (instance_id.clone(), binding_id.clone(), op_id.clone());
        self.spawn_op(&instance_id, Some(&binding_id), &op_id, async move {
            let r = broker.run_binding_op(&iid, &bid, &oid).await;
            broker.release_held(&iid, Some(&bid), &oid);
            if let Err(e) = &r {
                tracing::error!(error = %e,
                    "operation could not be recorded; it will be settled on restart");
            }
            r
        })
    }

    /// Runs one operation in its own task: the one place every operation
    /// (from a request or resumed) passes through, so its span (`op_id`,
    /// `instance_id`, `binding_id`, `kind`), its start and end lines and
    /// the count of operations running live here only.
    fn spawn_op(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        op_id: &str,
        work: impl Future<Output = Result<Operation>> + Send + 'static,
    ) -> JoinHandle<Result<Operation>> {
        let kind = kind_of(op_id);
        let span = tracing::info_span!("operation", op_id = %op_id, instance_id = %instance_id,
            binding_id = binding_id.map(tracing::field::display),
            kind = kind.map_or("unknown", OpKind::as_str));
        let running = self.running(kind);
        tokio::spawn(
            async move {
                let _running = running;
                let started = std::time::Instant::now();
                tracing::info!("operation started");
                let r = work.await;
                let outcome = match &r {
                    Ok(op) => op.state.as_str(),
                    Err(_) => "not recorded",
                };
                tracing::info!(
                    outcome,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "operation finished"
                );
                r
            }
            .instrument(span),
        )
    }

    /// How many operations of each kind this process runs now.
    pub(crate) fn operations_running(&self) -> Vec<(OpKind, usize)> {
        KINDS
            .iter()
            .zip(&self.inner.running.0)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
            .collect()
    }

    fn running(&self, kind: Option<OpKind>) -> RunningGuard {
        RunningGuard(kind.map(|k| {
            let i = KINDS
                .iter()
                .position(|x| *x == k)
                .expect("every kind listed");
            self.inner.running.0[i].fetch_add(1, Ordering::Relaxed);
            (self.inner.clone(), i)
        }))
    }

    /// Runs an operation the store just accepted: in the background when
    /// `run_async` (202 with its token), else to the end, answering `done` on
    /// success and the backend's failure otherwise (with `instance_usable`
    /// and `update_repeatable` for updates and deprovisions). `binding_id`
    /// picks a binding operation.
    pub(in crate::broker) async fn run_accepted(
        &self,
        kind: OpKind,
        instance_id: &str,
        binding_id: Option<&str>,
        op_id: String,
        run_async: bool,
        done: crate::broker::requests::Outcome,
    ) -> Result<crate::broker::requests::Outcome> {
        self.observe(kind, OpState::InProgress);
        let task = match binding_id {
            None => self.spawn_instance_op(instance_id.to_string(), op_id.clone()),
            Some(b) => self.spawn_binding_op(instance_id.to_string(), b.to_string(), op_id.clone()),
        };
        if run_async {
            return Ok(crate::broker::requests::Outcome::Accepted { operation: op_id });
        }
        let op = self.join(task).await?;
        match op.state {
            OpState::Succeeded => Ok(done),
            _ => Err(crate::broker::provision::failed(
                op,
                matches!(kind, OpKind::Update | OpKind::Deprovision),
            )),
        }
    }

    /// Waits for an operation task.
    pub(in crate::broker) async fn join(
        &self,
        task: JoinHandle<Result<Operation>>,
    ) -> Result<Operation> {
        task.await
            .map_err(|e| BrokerError::Internal(format!("operation task failed: {e}")))?
    }

    /// Runs one instance operation and records its outcome.
    async fn run_instance_op(&self, instance_id: &str, op_id: &str) -> Result<Operation> {
        let loaded = self.load_instance(instance_id).await?;
        let (inst, op) = op_to_run(loaded, "instance", instance_id, op_id)?;
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
        let found = match op.kind {
            OpKind::Deprovision => self.plan_to_delete(&effective, &effective.plan_id),
            _ => self.plan(&effective.service_id, &effective.plan_id),
        };
        let outcome: std::result::Result<Option<String>, BackendError> = match found {
            None => Err(BackendError::new(format!(
                "plan {} is no longer in the catalog",
                effective.plan_id
            ))),
            Some(found) => {
                let (service, plan) = found.get();
                let checkpoint = OpCheckpoint {
                    broker: self.clone(),
                    home: OpHome::new(instance_id, None),
                    op_id: op_id.to_string(),
                };
                let ctx = instance_ctx(&op, &effective, service, plan, &checkpoint);
                with_deadline(op.deadline, self.instance_work(op.kind, ctx)).await
            }
        };
        if let Err(e) = &outcome {
            tracing::warn!(instance = %instance_id, operation = %op_id, kind = op.kind.as_str(),
                error = %e.message, "operation failed");
        }
        let note = outcome.as_ref().ok().cloned().flatten();
        self.finish_instance_op(instance_id, op_id, outcome.map(drop), note)
            .await
    }

    /// An instance operation's backend work (and, around it, binding or
    /// unbinding the instances it depends on); a success may carry a note.
    async fn instance_work(
        &self,
        kind: OpKind,
        ctx: InstanceCtx<'_>,
    ) -> std::result::Result<Option<String>, BackendError> {
        let backend = self
            .backend(ctx.plan)
            .map_err(|e| BackendError::new(e.to_string()))?;
        let effective = ctx.instance;
        match kind {
            OpKind::Provision => {
                self.bind_dependencies(effective, ctx.originating_identity)
                    .await?;
                backend.provision(ctx).await.map(|()| None)
            }
            OpKind::Update => backend.update(ctx).await.map(|()| None),
            OpKind::Deprovision => {
                let note = self.remove_bindings(effective, ctx.clone()).await?;
                backend.deprovision(ctx.clone()).await?;
                // The app is gone; now its credentials may go.
                self.unbind_dependencies(effective, ctx.originating_identity)
                    .await?;
                Ok(note)
            }
            OpKind::Bind | OpKind::Unbind => Err(BackendError::new("not an instance operation")),
        }
    }

    /// Records the end of an instance operation; `note` adds to the
    /// description of a success (what was skipped and why).
    async fn finish_instance_op(
        &self,
        instance_id: &str,
        op_id: &str,
        outcome: std::result::Result<(), BackendError>,
        note: Option<String>,
    ) -> Result<Operation> {
        let ok = outcome.is_ok();
        let finished = self
            .finish_op(
                instance_id,
                op_id,
                outcome,
                |inst: &mut Instance, kind, target| {
                    instance_outcome(inst, kind, target, ok);
                    // What deleting it needs, as its plan is now.
                    if let Some(found) = self.plan(&inst.service_id, &inst.plan_id) {
                        let (service, plan) = found.get();
                        inst.teardown = Some(crate::catalog::Teardown::of(service, plan));
                    }
                    if let (Some(n), Some(op)) = (&note, inst.op_mut(op_id)) {
                        op.description = Some(format!(
                            "{}; {n}",
                            op.description.as_deref().unwrap_or_default()
                        ));
                    }
                },
            )
            .await?;
        Ok(finished)
    }

    /// Runs one binding operation and records its outcome.
    async fn run_binding_op(
        &self,
        instance_id: &str,
        binding_id: &str,
        op_id: &str,
    ) -> Result<Operation> {
        let loaded = self.load_binding(instance_id, binding_id).await?;
        let (binding, op) = op_to_run(loaded, "binding", binding_id, op_id)?;
        if op.state != OpState::InProgress {
            return Ok(op);
        }
        let _lease = self.heartbeat(instance_id, Some(binding_id), op_id);
        let inst = self.load_instance(instance_id).await?.map(|(i, _)| i);
        let found = |i: &Instance| match op.kind {
            OpKind::Unbind => self.plan_to_delete(i, &i.plan_id),
            _ => self.plan(&i.service_id, &i.plan_id),
        };
        let outcome: std::result::Result<BindOutput, BackendError> =
            match inst.as_ref().and_then(|i| found(i).map(|p| (i, p))) {
                None => Err(BackendError::new(
                    "the service instance or its plan no longer exists",
                )),
                Some((inst, found)) => {
                    let (service, plan) = found.get();
                    let checkpoint = OpCheckpoint {
                        broker: self.clone(),
                        home: OpHome::new(instance_id, Some(binding_id)),
                        op_id: op_id.to_string(),
                    };
                    let ctx = BindingCtx {
                        instance: instance_ctx(&op, inst, service, plan, &checkpoint),
                        binding: &binding,
                    };
                    with_deadline(op.deadline, self.binding_work(op.kind, ctx)).await
                }
            };
        if let Err(e) = &outcome {
            tracing::warn!(instance = %instance_id, binding = %binding_id, operation = %op_id,
                kind = op.kind.as_str(), error = %e.message, "operation failed");
        }
        let result = outcome.as_ref().map(|_| ()).map_err(Clone::clone);
        self.finish_op(
            &binding_key(instance_id, binding_id),
            op_id,
            result,
            |b: &mut Binding, kind, _| apply_binding_outcome(b, kind, &outcome),
        )
        .await
    }

    /// A binding operation's backend work: bind and write the Secret, or
    /// delete the Secret and unbind.
    async fn binding_work(
        &self,
        kind: OpKind,
        ctx: BindingCtx<'_>,
    ) -> std::result::Result<BindOutput, BackendError> {
        let backend = self
            .backend(ctx.instance.plan)
            .map_err(|e| BackendError::new(e.to_string()))?;
        if kind == OpKind::Bind {
            let creds = backend.bind(ctx.clone()).await?;
            return match self.sink().put(ctx.clone(), &creds).await {
                Ok(secret) => Ok(Some((creds, secret))),
                Err(e) => Err(self.undo_bind(backend.as_ref(), ctx, &creds, e).await),
            };
        }
        // A failed bind may have written its Secret unrecorded.
        let binding = ctx.binding;
        let secret = binding
            .secret_ref
            .clone()
            .unwrap_or_else(|| binding.secret_ref(ctx.instance.instance));
        self.sink().delete(ctx.clone(), &secret).await?;
        backend.unbind(ctx).await?;
        Ok(None)
    }
}

/// The record `loaded` (the `what` called `id`) and its operation `op_id`.
fn op_to_run<R: HasOperations>(
    loaded: Option<(R, u64)>,
    what: &str,
    id: &str,
    op_id: &str,
) -> Result<(R, Operation)> {
    let (record, _) =
        loaded.ok_or_else(|| BrokerError::Internal(format!("{what} {id} vanished")))?;
    let op = record
        .find_op(op_id)
        .cloned()
        .ok_or_else(|| BrokerError::Internal(format!("operation {op_id} vanished")))?;
    Ok((record, op))
}

/// What the backend is given to run `op` on `instance`.
fn instance_ctx<'a>(
    op: &'a Operation,
    instance: &'a Instance,
    service: &'a Service,
    plan: &'a Plan,
    checkpoint: &'a OpCheckpoint,
) -> InstanceCtx<'a> {
    InstanceCtx {
        instance,
        service,
        plan,
        progress: op.progress.as_ref(),
        checkpoint,
        originating_identity: op.originating_identity.as_ref(),
        request_identity: op.request_identity.as_deref(),
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
        (OpKind::Bind, Err(e)) => {
            b.state = BindingState::BindFailed;
            b.left_nothing = e.left_nothing;
        }
        (OpKind::Bind, Ok(None)) => b.state = BindingState::BindFailed,
        (_, Ok(_)) => {
            b.state = BindingState::Deleted;
            b.credentials = Secrets::default();
            b.secret_ref = None;
        }
        _ => {}
    }
}

/// An instance after its operation `kind` ended (`ok`: succeeded): a
/// provision makes it ready or failed, an update takes its target, a
/// deprovision leaves a tombstone with the history for `last_operation`
/// and nothing secret.
fn instance_outcome(inst: &mut Instance, kind: OpKind, target: Option<UpdateTarget>, ok: bool) {
    match (kind, ok) {
        (OpKind::Provision, true) => inst.state = InstanceState::Ready,
        (OpKind::Provision, false) => inst.state = InstanceState::ProvisionFailed,
        (OpKind::Update, true) => {
            if let Some(t) = target {
                inst.plan_id = t.plan_id;
                inst.parameters = t.parameters;
                inst.requested_parameters = t.requested_parameters;
                inst.context = t.context;
                inst.maintenance_version = t.maintenance_version;
            }
        }
        (OpKind::Deprovision, true) => {
            inst.state = InstanceState::Deleted;
            inst.secrets = Secrets::default();
        }
        _ => {}
    }
}
