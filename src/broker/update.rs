//! `PATCH /v2/service_instances/:instance_id`

use serde_json::{Value, json};

use super::model::{HasOperations, InstanceState, OpKind, OpState, UpdateTarget};
use super::names::fingerprint;
use super::ports::{Expect, StoreError};
use super::provision::check_maintenance;
use super::requests::{InstanceOutcome, Outcome, RequestMeta, UpdateRequest};
use super::{Broker, BrokerError, Result, parameters_object, required, secrets};
use crate::catalog::{Backend as PlanBackend, SchemaKind};

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
    pub async fn update(&self, req: UpdateRequest, meta: RequestMeta) -> Result<InstanceOutcome> {
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
        let (op_id, run_async) = loop {
            let (mut inst, version) = match self.load_instance(&req.instance_id).await? {
                Some((i, v)) if i.state != InstanceState::Deleted => (i, v),
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
            let tenant = self.tenant_namespace(&inst.context);
            self.authorize(
                meta.originating_identity.as_ref(),
                &inst.context,
                &[&tenant],
            )
            .await?;
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
            if target_plan_id != inst.plan_id && !current_plan.is_updateable(service) {
                return Err(BrokerError::PlanChangeNotSupported(format!(
                    "plan {} does not support changing to another plan",
                    current_plan.name
                )));
            }
            check_maintenance(plan, req.maintenance_version.as_deref())?;
            plan.validate_parameters(SchemaKind::InstanceUpdate, &changes)
                .map_err(BrokerError::BadRequest)?;
            let fp = fingerprint(&json!({
                "plan_id": target_plan_id,
                "parameters": changes,
                "context": req.context,
                "maintenance_info": req.maintenance_version,
            }));
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
            if let Some(cur) = inst.current() {
                if cur.kind == OpKind::Update && cur.fingerprint == fp && meta.accepts_incomplete {
                    return Ok(InstanceOutcome {
                        outcome: Outcome::Accepted {
                            operation: cur.id.clone(),
                        },
                        dashboard_url: inst.dashboard_url.clone(),
                    });
                }
                return Err(BrokerError::Concurrency(format!(
                    "another operation ({}) is in progress for this service instance",
                    cur.kind.as_str()
                )));
            }
            let run_async = self.must_run_async(plan, OpKind::Update, meta.accepts_incomplete)?;
            let mut parameters = merge(&inst.parameters, &changes);
            // Which instances this one uses is fixed at provision.
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
            // Nothing to change and the last operation succeeded: the
            // request's changes "have been applied", which the spec answers
            // with 200 (osb-checker repeats an update and expects it). After
            // a failed operation the same request runs again, as a repair.
            let target_maintenance = plan.maintenance_info.as_ref().map(|m| &m.version);
            if target_plan_id == inst.plan_id
                && parameters == inst.parameters
                && req
                    .context
                    .as_ref()
                    .is_none_or(|c| c.is_null() || *c == inst.context)
                && target_maintenance == inst.maintenance_version.as_ref()
                && inst
                    .last_op()
                    .is_some_and(|o| o.state == OpState::Succeeded)
            {
                return Ok(InstanceOutcome {
                    outcome: Outcome::Done,
                    dashboard_url: None,
                });
            }
            // A new plan may declare secrets the old one did not.
            if let PlanBackend::Chart(chart) = &plan.backend {
                secrets::ensure(&chart.secrets, &mut inst.secrets.0);
            }
            let mut op = self.start_op(OpKind::Update, plan, fp, &meta);
            op.target = Some(UpdateTarget {
                plan_id: target_plan_id.clone(),
                parameters,
                context: req
                    .context
                    .clone()
                    .filter(|c| !c.is_null())
                    .unwrap_or_else(|| inst.context.clone()),
                maintenance_version: plan.maintenance_info.as_ref().map(|m| m.version.clone()),
            });
            let op_id = op.id.clone();
            inst.push_op(op);
            match self.write_instance(&inst, Expect::Version(version)).await {
                Ok(_) => {
                    tracing::info!(instance = %inst.id, plan = %plan.name, operation = %op_id, "update accepted");
                    break (op_id, run_async);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        };
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
