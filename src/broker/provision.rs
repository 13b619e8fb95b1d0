//! `PUT /v2/service_instances/:instance_id`

use serde_json::{Value, json};

use super::cas::{Decision, Next, reply, start};
use super::model::{HasOperations, Instance, InstanceState, OpKind};
use super::requests::{InstanceOutcome, Outcome, ProvisionRequest, RequestMeta};
use super::{Broker, BrokerError, Result, context_object, parameters_object, required, secrets};
use crate::catalog::{NamespaceStrategy, Plan, SchemaKind, ServedBy};
use crate::names::{fingerprint, release_name};

/// A provision request, validated against its plan: what every attempt of
/// the compare-and-swap decides with.
struct Asked {
    /// The request's parameters with the plan's defaults applied.
    parameters: Value,
    /// The request's parameters as sent.
    requested: Value,
    context: Value,
    /// Identifies the request's attributes, for repeats and 409s.
    fingerprint: String,
}

impl Broker {
    /// `PUT /v2/service_instances/:instance_id`: provision.
    ///
    /// 201 when this request created the instance (synchronously), 200 when an
    /// identical instance is already provisioned, 202 while it is being
    /// provisioned (a repeat gets the same operation), 409 for the same id with
    /// other attributes.
    pub(crate) async fn provision(
        &self,
        req: ProvisionRequest,
        meta: RequestMeta,
    ) -> Result<InstanceOutcome> {
        super::valid_id(&req.instance_id, "instance_id")?;
        required(&req.service_id, "service_id")?;
        required(&req.plan_id, "plan_id")?;
        let found = self.plan(&req.service_id, &req.plan_id).ok_or_else(|| {
            BrokerError::BadRequest(format!(
                "unknown service_id {:?} or plan_id {:?} (the plan must belong to the service)",
                req.service_id, req.plan_id
            ))
        })?;
        let (service, plan) = found.get();
        let asked = validate(&req, plan)?;
        let next = self
            .compare_and_swap(&req.instance_id, |existing| {
                Box::pin(self.decide_provision(&req, &meta, plan, &asked, existing))
            })
            .await?;
        let (op_id, run_async) = match next {
            Next::Reply(answer) => return Ok(answer),
            Next::Run { op_id, run_async } => (op_id, run_async),
        };
        tracing::info!(instance = %req.instance_id, service = %service.name, plan = %plan.name,
            operation = %op_id, "provision accepted");
        let outcome = self
            .run_accepted(
                OpKind::Provision,
                &req.instance_id,
                None,
                op_id,
                run_async,
                Outcome::Created,
            )
            .await?;
        Ok(InstanceOutcome {
            outcome,
            dashboard_url: None,
        })
    }

    /// Decides on the instance as it is: answer a repeat, refuse a
    /// conflict, or record a new provision (a failed one may be repeated:
    /// same id, same secrets, a new operation).
    async fn decide_provision(
        &self,
        req: &ProvisionRequest,
        meta: &RequestMeta,
        plan: &Plan,
        asked: &Asked,
        existing: Option<Instance>,
    ) -> Result<Decision<Instance, Next<InstanceOutcome>>> {
        if let Some(inst) = existing
            .as_ref()
            .filter(|i| i.state != InstanceState::Deleted)
        {
            if let Some(answer) = repeat(inst, &asked.fingerprint, meta)? {
                return reply(answer);
            }
        }
        let run_async = self.must_run_async(plan, OpKind::Provision, meta.accepts_incomplete)?;
        let op = self.start_op(OpKind::Provision, plan, asked.fingerprint.clone(), meta);
        let mut inst = self.new_instance(req, meta, plan, asked, existing).await?;
        let op_id = op.id.clone();
        inst.push_op(op);
        Ok(start(inst, op_id, run_async))
    }

    /// The record of a new provision: where it goes (checked and
    /// authorized), the instances it uses, its secrets.
    async fn new_instance(
        &self,
        req: &ProvisionRequest,
        meta: &RequestMeta,
        plan: &Plan,
        asked: &Asked,
        previous: Option<Instance>,
    ) -> Result<Instance> {
        let release = release_name(&req.instance_id);
        let namespace = self.namespace_for(plan, &asked.context, &release);
        let tenant = self.tenant_namespace(&asked.context);
        self.check_tenant_namespace(&tenant).await?;
        if namespace != tenant {
            self.check_namespace(
                &namespace,
                "the plan's own namespace for this instance",
                false,
            )
            .await?;
        }
        self.authorize(meta, &[&tenant]).await?;
        let dependencies = self
            .plan_dependencies(
                plan,
                &asked.parameters,
                &req.instance_id,
                &release,
                &namespace,
                &tenant,
                meta,
            )
            .await?;
        // Secrets survive a repeated provision of a failed instance, so
        // a volume left behind still opens with the same password.
        let mut secret_values = match &previous {
            Some(p) if p.state != InstanceState::Deleted => p.secrets.0.clone(),
            _ => Default::default(),
        };
        if let ServedBy::Chart(chart) = &plan.served_by {
            secrets::ensure(&chart.secrets, &mut secret_values);
        }
        Ok(Instance {
            id: req.instance_id.clone(),
            service_id: req.service_id.clone(),
            plan_id: req.plan_id.clone(),
            parameters: asked.parameters.clone(),
            requested_parameters: Some(asked.requested.clone()),
            context: asked.context.clone(),
            organization_guid: req.organization_guid.clone(),
            space_guid: req.space_guid.clone(),
            maintenance_version: plan.maintenance_info.as_ref().map(|m| m.version.clone()),
            release,
            namespace,
            secrets: super::model::Secrets(secret_values),
            dashboard_url: None,
            state: InstanceState::Provisioning,
            provision_fingerprint: asked.fingerprint.clone(),
            dependencies,
            teardown: self
                .plan(&req.service_id, &req.plan_id)
                .map(|found| crate::catalog::Teardown::of(found.get().0, found.get().1)),
            operations: previous.map(|p| p.operations).unwrap_or_default(),
        })
    }

    /// 400 unless the platform's namespace is a namespace name, 403 unless
    /// the operator lets the broker act there.
    pub(super) async fn check_tenant_namespace(&self, tenant: &str) -> Result<()> {
        if !crate::names::is_dns_label(tenant, 63) {
            return Err(BrokerError::BadRequest(format!(
                "context.namespace {tenant:?} is not a valid namespace name"
            )));
        }
        self.check_namespace(tenant, "context.namespace", true)
            .await
    }

    /// The namespace an instance of this plan lives in.
    fn namespace_for(&self, plan: &Plan, context: &serde_json::Value, release: &str) -> String {
        let strategy = match &plan.served_by {
            ServedBy::Chart(c) => c.namespace,
            ServedBy::Upstream(_) => NamespaceStrategy::Context,
        };
        match strategy {
            NamespaceStrategy::Instance => release.to_string(),
            NamespaceStrategy::Context => self.tenant_namespace(context),
        }
    }

    /// The namespace the platform's user acts in: where their rights are
    /// checked. For `namespace: instance` plans the release goes elsewhere,
    /// into a namespace nobody has rights in until the broker creates it,
    /// so the user is judged where the platform says they are.
    pub(super) fn tenant_namespace(&self, context: &serde_json::Value) -> String {
        context
            .get("namespace")
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| self.config().default_namespace.clone())
    }
}

/// Checks a provision request against its plan (maintenance version,
/// parameter schema) and fingerprints it.
fn validate(req: &ProvisionRequest, plan: &Plan) -> Result<Asked> {
    check_maintenance(plan, req.maintenance_version.as_deref())?;
    let raw_params = parameters_object(&req.parameters)?;
    let context = context_object(&req.context)?;
    plan.validate_parameters(SchemaKind::InstanceCreate, &raw_params)
        .map_err(BrokerError::BadRequest)?;
    let fingerprint = fingerprint(&json!({
        "service_id": req.service_id,
        "plan_id": req.plan_id,
        "parameters": raw_params,
        "context": context,
        "organization_guid": req.organization_guid,
        "space_guid": req.space_guid,
    }));
    let mut parameters = raw_params.clone();
    plan.apply_defaults(SchemaKind::InstanceCreate, &mut parameters);
    Ok(Asked {
        parameters,
        requested: raw_params,
        context,
        fingerprint,
    })
}

/// The answer to a provision of an instance that exists: the same request
/// again while it runs (202 with its operation) or after it succeeded (200);
/// `None` when a failed provision may run again.
fn repeat(inst: &Instance, fp: &str, meta: &RequestMeta) -> Result<Option<InstanceOutcome>> {
    if inst.provision_fingerprint != fp {
        return Err(BrokerError::Conflict(format!(
            "service instance {} already exists with different attributes",
            inst.id
        )));
    }
    let answer = |outcome| {
        Ok(Some(InstanceOutcome {
            outcome,
            dashboard_url: inst.dashboard_url.clone(),
        }))
    };
    match (inst.state, inst.current()) {
        (_, Some(op)) if op.kind == OpKind::Provision => {
            if meta.accepts_incomplete {
                answer(Outcome::Accepted {
                    operation: op.id.clone(),
                })
            } else {
                Err(BrokerError::Concurrency(
                    "the service instance is being provisioned".into(),
                ))
            }
        }
        (_, Some(op)) if op.kind == OpKind::Deprovision => Err(BrokerError::Concurrency(
            "the service instance is being deprovisioned".into(),
        )),
        (InstanceState::Ready, _) => answer(Outcome::Done),
        _ => Ok(None),
    }
}

/// 422 MaintenanceInfoConflict when the platform's version differs from the
/// plan's, or the plan has none.
pub(super) fn check_maintenance(plan: &Plan, requested: Option<&str>) -> Result<()> {
    let Some(requested) = requested else {
        return Ok(());
    };
    match &plan.maintenance_info {
        Some(m) if m.version == requested => Ok(()),
        Some(m) => Err(BrokerError::MaintenanceInfoConflict(format!(
            "maintenance_info.version {requested:?} does not match the plan's current version {:?}; fetch the catalog again",
            m.version
        ))),
        None => Err(BrokerError::MaintenanceInfoConflict(format!(
            "maintenance_info.version {requested:?} was given but plan {} has no maintenance_info",
            plan.name
        ))),
    }
}

/// The error for a synchronous operation that failed.
pub(super) fn failed(op: super::model::Operation, with_flags: bool) -> BrokerError {
    BrokerError::OperationFailed {
        error: super::ports::BackendError {
            message: op
                .description
                .unwrap_or_else(|| format!("{} failed", op.kind.as_str())),
            instance_usable: op.instance_usable,
            update_repeatable: op.update_repeatable,
            left_nothing: false,
        },
        with_flags,
    }
}
