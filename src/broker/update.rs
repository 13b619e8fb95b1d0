//! `PATCH /v2/service_instances/:instance_id`

use serde_json::{Value, json};

use super::cas::{Decision, Next, reply, start};
use super::model::{HasOperations, Instance, InstanceState, OpKind, OpState, UpdateTarget};
use super::provision::check_maintenance;
use super::requests::{InstanceOutcome, Outcome, RequestMeta, UpdateRequest};
use super::{Broker, BrokerError, Result, parameters_object, required, secrets};
use crate::catalog::{Plan, SchemaKind, ServedBy, Service};
use crate::names::fingerprint;

impl Broker {
    /// `PATCH /v2/service_instances/:instance_id`: update plan, parameters or
    /// context.
    ///
    /// 200 when applied synchronously or when it changes nothing (the backend
    /// is then not called), 202 while in progress (a repeat of the same
    /// update gets the same operation), 422 ConcurrencyError while
    /// another operation runs, 422 PlanChangeNotSupported for a plan change
    /// the plan does not allow. Nothing changes on any 4xx: the new plan and
    /// parameters are recorded only when the update succeeds.
    pub(crate) async fn update(
        &self,
        req: UpdateRequest,
        meta: RequestMeta,
    ) -> Result<InstanceOutcome> {
        super::valid_id(&req.instance_id, "instance_id")?;
        required(&req.service_id, "service_id")?;
        let changes = parameters_object(&req.parameters)?;
        if let Some(c) = &req.context {
            if !c.is_object() && !c.is_null() {
                return Err(BrokerError::BadRequest(
                    "context must be a JSON object".into(),
                ));
            }
        }
        let next = self
            .compare_and_swap(&req.instance_id, |inst| {
                Box::pin(self.decide_update(&req, &meta, &changes, inst))
            })
            .await?;
        let (op_id, run_async) = match next {
            Next::Reply(answer) => return Ok(answer),
            Next::Run { op_id, run_async } => (op_id, run_async),
        };
        tracing::info!(instance = %req.instance_id, operation = %op_id, "update accepted");
        let outcome = self
            .run_accepted(
                OpKind::Update,
                &req.instance_id,
                None,
                op_id,
                run_async,
                Outcome::Done,
            )
            .await?;
        Ok(InstanceOutcome {
            outcome,
            dashboard_url: None,
        })
    }

    /// Decides on the instance as it is: refuse, answer a repeat or a no-op,
    /// or record the update's operation with its target (applied only when
    /// it succeeds).
    async fn decide_update(
        &self,
        req: &UpdateRequest,
        meta: &RequestMeta,
        changes: &Value,
        inst: Option<Instance>,
    ) -> Result<Decision<Instance, Next<InstanceOutcome>>> {
        let mut inst = match inst {
            Some(i) if i.state != InstanceState::Deleted => i,
            _ => {
                return Err(BrokerError::NotFound(format!(
                    "service instance {} does not exist",
                    req.instance_id
                )));
            }
        };
        if inst.service_id != req.service_id {
            return Err(BrokerError::BadRequest(format!(
                "service_id {:?} does not match the instance's service",
                req.service_id
            )));
        }
        let target_plan_id = req
            .plan_id
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| inst.plan_id.clone());
        let catalog = self.catalog();
        let (service, current_plan) = catalog
            .find_plan(&inst.service_id, &inst.plan_id)
            .ok_or_else(|| {
                BrokerError::Unprocessable(format!(
                    "the instance's plan {} is no longer in the catalog",
                    inst.plan_id
                ))
            })?;
        let (_, plan) = catalog
            .find_plan(&inst.service_id, &target_plan_id)
            .ok_or_else(|| {
                BrokerError::BadRequest(format!(
                    "unknown plan_id {target_plan_id:?} for service {}",
                    service.name
                ))
            })?;
        self.check_update(req, meta, &inst, service, current_plan, plan)
            .await?;
        validate_changes(plan, &inst, changes)?;
        let fp = fingerprint(&json!({
            "plan_id": target_plan_id,
            "parameters": changes,
            "context": req.context,
            "maintenance_info": req.maintenance_version,
        }));
        if let Some(answer) = busy(&inst, &fp, meta)? {
            return reply(answer);
        }
        let run_async = self.must_run_async(plan, OpKind::Update, meta.accepts_incomplete)?;
        let target = update_target(req, &inst, plan, target_plan_id, changes)?;
        if changes_nothing(&inst, &target) {
            return reply(InstanceOutcome {
                outcome: Outcome::Done,
                dashboard_url: None,
            });
        }
        // A new plan may declare secrets the old one did not.
        if let ServedBy::Chart(chart) = &plan.served_by {
            secrets::ensure(&chart.secrets, &mut inst.secrets.0);
        }
        let mut op = self.start_op(OpKind::Update, plan, fp, meta);
        op.target = Some(target);
        let op_id = op.id.clone();
        inst.push_op(op);
        Ok(start(inst, op_id, run_async))
    }

    /// The user may act in the instance's namespace; a new context may not
    /// move it (and the service must allow context updates); a plan change
    /// must be allowed; the maintenance version must match the target plan.
    async fn check_update(
        &self,
        req: &UpdateRequest,
        meta: &RequestMeta,
        inst: &Instance,
        service: &Service,
        current_plan: &Plan,
        plan: &Plan,
    ) -> Result<()> {
        let tenant = self.tenant_namespace(&inst.context);
        self.authorize(meta, &[&tenant]).await?;
        if let Some(new) = req
            .context
            .as_ref()
            .filter(|c| !c.is_null() && **c != inst.context)
        {
            if !service.allow_context_updates {
                return Err(BrokerError::Unprocessable(format!(
                    "service {} does not allow context updates (allow_context_updates: false)",
                    service.name
                )));
            }
            let new_tenant = self.tenant_namespace(new);
            if new_tenant != tenant {
                return Err(BrokerError::BadRequest(format!(
                    "context.namespace {new_tenant:?} differs from the instance's namespace {tenant:?}; an instance can't move to another namespace"
                )));
            }
            self.check_tenant_namespace(&new_tenant).await?;
        }
        if plan.id != inst.plan_id && !current_plan.is_updateable(service) {
            return Err(BrokerError::PlanChangeNotSupported(format!(
                "plan {} does not support changing to another plan",
                current_plan.name
            )));
        }
        check_maintenance(plan, req.maintenance_version.as_deref())
    }
}

/// 422 while the instance is provisioning, failed to provision or runs
/// another operation; the same update while it runs answers with its
/// operation (202).
fn busy(inst: &Instance, fp: &str, meta: &RequestMeta) -> Result<Option<InstanceOutcome>> {
    match inst.state {
        InstanceState::Provisioning => {
            return Err(BrokerError::Concurrency(
                "the service instance is being provisioned".into(),
            ));
        }
        InstanceState::ProvisionFailed => {
            return Err(BrokerError::Unprocessable(
                "the service instance failed to provision; deprovision it and provision again"
                    .into(),
            ));
        }
        _ => {}
    }
    let Some(cur) = inst.current() else {
        return Ok(None);
    };
    if cur.kind == OpKind::Update && cur.fingerprint == fp && meta.accepts_incomplete {
        return Ok(Some(InstanceOutcome {
            outcome: Outcome::Accepted {
                operation: cur.id.clone(),
            },
            dashboard_url: inst.dashboard_url.clone(),
        }));
    }
    Err(BrokerError::Concurrency(format!(
        "another operation ({}) is in progress for this service instance",
        cur.kind.as_str()
    )))
}

/// What the instance becomes if the update succeeds.
fn update_target(
    req: &UpdateRequest,
    inst: &Instance,
    plan: &Plan,
    plan_id: String,
    changes: &Value,
) -> Result<UpdateTarget> {
    Ok(UpdateTarget {
        plan_id,
        parameters: updated_parameters(plan, inst, changes)?,
        requested_parameters: Some(merge(requested(inst), changes)),
        context: req
            .context
            .clone()
            .filter(|c| !c.is_null())
            .unwrap_or_else(|| inst.context.clone()),
        maintenance_version: plan.maintenance_info.as_ref().map(|m| m.version.clone()),
    })
}

/// The instance's parameters after `changes`, with the plan's defaults.
/// Which instances this one uses is fixed at provision.
fn updated_parameters(plan: &Plan, inst: &Instance, changes: &Value) -> Result<Value> {
    let mut parameters = merge(&inst.parameters, changes);
    if let Some(chart) = plan.chart() {
        for dep in chart.uses.values() {
            if parameters.get(&dep.parameter) != inst.parameters.get(&dep.parameter) {
                return Err(BrokerError::BadRequest(format!(
                    "parameters.{} names the {} instance this one uses and cannot change",
                    dep.parameter, dep.service
                )));
            }
        }
    }
    plan.apply_defaults(SchemaKind::InstanceCreate, &mut parameters);
    Ok(parameters)
}

/// Nothing to change and the last operation succeeded: the request's
/// changes "have been applied", which the spec answers with 200
/// (osb-checker repeats an update and expects it). After a failed operation
/// the same request runs again, as a repair.
fn changes_nothing(inst: &Instance, target: &UpdateTarget) -> bool {
    target.plan_id == inst.plan_id
        && target.parameters == inst.parameters
        && target.requested_parameters.as_ref() == Some(requested(inst))
        && target.context == inst.context
        && target.maintenance_version == inst.maintenance_version
        && inst
            .last_op()
            .is_some_and(|o| o.state == OpState::Succeeded)
}

/// 400 unless the update's parameters pass the plan's update schema, whole
/// or, failing that, once the values it repeats unchanged are left out.
fn validate_changes(plan: &Plan, inst: &Instance, changes: &Value) -> Result<()> {
    if plan
        .validate_parameters(SchemaKind::InstanceUpdate, changes)
        .is_ok()
    {
        return Ok(());
    }
    plan.validate_parameters(SchemaKind::InstanceUpdate, &changed_only(inst, changes))
        .map_err(BrokerError::BadRequest)
}

/// The parameters as the platform last sent them (records older than
/// `requested_parameters` only know the effective ones).
pub(super) fn requested(inst: &Instance) -> &Value {
    inst.requested_parameters
        .as_ref()
        .unwrap_or(&inst.parameters)
}

/// The update's parameters that change something: a platform that sends
/// the instance's whole current parameters with each update (provider-osb
/// PATCHes its spec whole) repeats creation parameters the update schema
/// does not list, and a value that stays as it is is not an update of it.
/// A `null` for a key the instance does not have removes nothing. Judged
/// only when the whole update fails the schema, so an update schema's
/// `required` keys may still be repeated.
fn changed_only(inst: &Instance, changes: &Value) -> Value {
    let Some(ch) = changes.as_object() else {
        return changes.clone();
    };
    let out = ch
        .iter()
        .filter(|(k, v)| match inst.parameters.get(k.as_str()) {
            Some(current) => current != *v,
            None => !v.is_null(),
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(out)
}

/// Update parameters replace the top-level keys they name and keep the rest;
/// a `null` removes a key.
fn merge(current: &Value, changes: &Value) -> Value {
    let mut out = current.as_object().cloned().unwrap_or_default();
    if let Some(ch) = changes.as_object() {
        for (k, v) in ch {
            if v.is_null() {
                out.remove(k);
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}
