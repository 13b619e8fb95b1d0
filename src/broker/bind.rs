//! `PUT /v2/service_instances/:instance_id/service_bindings/:binding_id`

use serde_json::json;

use super::model::{Binding, BindingState, HasOperations, InstanceState, OpKind, Secrets};
use super::names::fingerprint;
use super::ports::{Expect, StoreError};
use super::requests::{BindOutcome, BindRequest, Outcome, RequestMeta};
use super::{Broker, BrokerError, Result, context_object, parameters_object, required};
use crate::catalog::SchemaKind;

impl Broker {
    /// `PUT .../service_bindings/:binding_id`: bind.
    ///
    /// 201 with credentials when created synchronously, 200 when an identical
    /// binding exists, 202 while in progress (credentials then only come from
    /// GET), 409 for the same id with other attributes, 404 for an unknown
    /// instance, 422 ConcurrencyError while the instance is being provisioned
    /// or deprovisioned.
    pub async fn bind(&self, req: BindRequest, meta: RequestMeta) -> Result<BindOutcome> {
        super::valid_id(&req.instance_id, "instance_id")?;
        super::valid_id(&req.binding_id, "binding_id")?;
        required(&req.service_id, "service_id")?;
        required(&req.plan_id, "plan_id")?;
        let mut raw_params = parameters_object(&req.parameters)?;
        let context = req
            .context
            .as_ref()
            .map(|_| context_object(&req.context))
            .transpose()?;
        let (inst, _) = match self.load_instance(&req.instance_id).await? {
            Some((i, v)) if i.state != InstanceState::Deleted => (i, v),
            _ => {
                return Err(BrokerError::NotFound(format!(
                    "service instance {} does not exist",
                    req.instance_id
                )));
            }
        };
        // The same binding id with other ids is the spec's 409 ("already
        // exists but with different attributes"), not a malformed request:
        // osb-checker-kotlin re-binds with another plan and expects 409.
        if let Some((b, _)) = self.load_binding(&req.instance_id, &req.binding_id).await? {
            if b.state != BindingState::Deleted
                && (b.service_id != req.service_id || b.plan_id != req.plan_id)
            {
                return Err(BrokerError::Conflict(format!(
                    "service binding {} already exists with different attributes",
                    b.id
                )));
            }
        }
        if inst.service_id != req.service_id || inst.plan_id != req.plan_id {
            return Err(BrokerError::BadRequest(format!(
                "service_id {:?} and plan_id {:?} do not match the service instance",
                req.service_id, req.plan_id
            )));
        }
        let found = self
            .plan(&req.service_id, &req.plan_id)
            .ok_or_else(|| BrokerError::BadRequest(format!("unknown plan_id {:?}", req.plan_id)))?;
        let (service, plan) = found.get();
        if !plan.is_bindable(service) {
            return Err(BrokerError::BadRequest(format!(
                "plan {} is not bindable",
                plan.name
            )));
        }
        match (inst.state, inst.current()) {
            (InstanceState::Provisioning, _) => {
                return Err(BrokerError::Concurrency(
                    "the service instance is still being provisioned".into(),
                ));
            }
            (InstanceState::ProvisionFailed, _) => {
                return Err(BrokerError::Unprocessable(
                    "the service instance failed to provision".into(),
                ));
            }
            (_, Some(op)) if op.kind == OpKind::Deprovision => {
                return Err(BrokerError::Concurrency(
                    "the service instance is being deprovisioned".into(),
                ));
            }
            _ => {}
        }

        // The broker's own bind parameters say where the Secret goes; the
        // plan's schema sees the rest.
        let requested = take_target(&mut raw_params, plan, &inst, &req.binding_id)?;
        let target = match &req.internal {
            Some((secret, _)) => Some(secret.clone()),
            None => requested,
        };
        let fp_params = parameters_object(&req.parameters)?;
        if let (Some(t), None) = (&target, &req.internal) {
            self.check_namespace(&t.namespace, "parameters.namespace", true)
                .await?;
        }
        // The user must be allowed where the instance's credentials come
        // from and where their Secret goes. A Secret in the instance's own
        // namespace (`namespace: instance`) is judged where the user acts,
        // as the provision was.
        let tenant = self.tenant_namespace(&inst.context);
        let target_ns = match &target {
            Some(t) if t.namespace != inst.namespace => t.namespace.clone(),
            _ if is_instance_namespace(plan) => tenant.clone(),
            _ => inst.namespace.clone(),
        };
        self.authorize(
            meta.originating_identity.as_ref(),
            &inst.context,
            &[&tenant, &target_ns],
        )
        .await?;

        // Rotation: the successor inherits what the platform may not have kept.
        let (mut parameters, app_guid, bind_resource) = match &req.predecessor_binding_id {
            Some(pred) if !pred.is_empty() => {
                if !plan.binding_rotatable {
                    return Err(BrokerError::BadRequest(format!(
                        "plan {} does not support binding rotation",
                        plan.name
                    )));
                }
                let (p, _) = self
                    .load_binding(&req.instance_id, pred)
                    .await?
                    .filter(|(b, _)| b.state == BindingState::Bound)
                    .ok_or_else(|| {
                        BrokerError::BadRequest(format!(
                            "predecessor binding {pred:?} does not exist for this instance"
                        ))
                    })?;
                (
                    p.parameters,
                    req.app_guid.clone().or(p.app_guid),
                    req.bind_resource.clone().or(p.bind_resource),
                )
            }
            _ => {
                plan.validate_parameters(SchemaKind::BindingCreate, &raw_params)
                    .map_err(BrokerError::BadRequest)?;
                (
                    raw_params.clone(),
                    req.app_guid.clone(),
                    req.bind_resource.clone(),
                )
            }
        };
        plan.apply_defaults(SchemaKind::BindingCreate, &mut parameters);
        let fp = fingerprint(&json!({
            "service_id": req.service_id,
            "plan_id": req.plan_id,
            "app_guid": req.app_guid,
            "bind_resource": req.bind_resource,
            "parameters": fp_params,
            "predecessor_binding_id": req.predecessor_binding_id,
            "internal": req.internal.as_ref().map(|(s, d)| json!([s.namespace, s.name, d])),
        }));

        let (op_id, run_async) = loop {
            let existing = self.load_binding(&req.instance_id, &req.binding_id).await?;
            let (expect, history) = match existing {
                Some((b, version)) if b.state != BindingState::Deleted => {
                    if b.fingerprint != fp {
                        return Err(BrokerError::Conflict(format!(
                            "service binding {} already exists with different attributes",
                            b.id
                        )));
                    }
                    match b.state {
                        BindingState::Bound => {
                            return Ok(BindOutcome {
                                outcome: Outcome::Done,
                                credentials: Some(b.credentials),
                            });
                        }
                        BindingState::Binding => {
                            let op = b.current().map(|o| o.id.clone()).unwrap_or_default();
                            return if meta.accepts_incomplete {
                                Ok(BindOutcome {
                                    outcome: Outcome::Accepted { operation: op },
                                    credentials: None,
                                })
                            } else {
                                Err(BrokerError::Concurrency(
                                    "the service binding is being created".into(),
                                ))
                            };
                        }
                        _ => (Expect::Version(version), b.operations),
                    }
                }
                Some((tombstone, version)) => (Expect::Version(version), tombstone.operations),
                None => (Expect::Absent, Vec::new()),
            };
            let run_async = self.must_run_async(plan, OpKind::Bind, meta.accepts_incomplete)?;
            let op = self.start_op(OpKind::Bind, plan, fp.clone(), &meta);
            let mut b = Binding {
                id: req.binding_id.clone(),
                instance_id: req.instance_id.clone(),
                service_id: req.service_id.clone(),
                plan_id: req.plan_id.clone(),
                app_guid: app_guid.clone(),
                bind_resource: bind_resource.clone(),
                context: context.clone(),
                parameters: parameters.clone(),
                credentials: Secrets::default(),
                secret_ref: None,
                target: target.clone(),
                dependent: req.internal.as_ref().map(|(_, d)| d.clone()),
                state: BindingState::Binding,
                fingerprint: fp.clone(),
                operations: history,
            };
            let op_id = op.id.clone();
            b.push_op(op);
            match self.write_binding(&b, expect).await {
                Ok(_) => {
                    tracing::info!(instance = %b.instance_id, binding = %b.id, operation = %op_id, "bind accepted");
                    break (op_id, run_async);
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let outcome = self
            .run_accepted(
                OpKind::Bind,
                &req.instance_id,
                Some(&req.binding_id),
                op_id,
                run_async,
                Outcome::Created,
            )
            .await?;
        if matches!(outcome, Outcome::Accepted { .. }) {
            return Ok(BindOutcome {
                outcome,
                credentials: None,
            });
        }
        let (b, _) = self
            .load_binding(&req.instance_id, &req.binding_id)
            .await?
            .ok_or_else(|| BrokerError::Internal("binding vanished after bind".into()))?;
        Ok(BindOutcome {
            outcome: Outcome::Created,
            credentials: Some(b.credentials),
        })
    }
}

/// Takes the bind parameters `namespace` and `secret_name` out of `params`
/// (chart plans only) and checks them: the namespace must be the instance's
/// or one the plan allows, the name a DNS label.
fn take_target(
    params: &mut serde_json::Value,
    plan: &crate::catalog::Plan,
    inst: &super::model::Instance,
    binding_id: &str,
) -> Result<Option<super::model::SecretRef>> {
    let Some(chart) = plan.chart() else {
        return Ok(None);
    };
    let obj = params.as_object_mut().expect("parameters are an object");
    let mut take = |key: &str| -> Result<Option<String>> {
        match obj.remove(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(BrokerError::BadRequest(format!(
                "parameters.{key} must be a string"
            ))),
        }
    };
    let namespace = take("namespace")?;
    let name = take("secret_name")?;
    if namespace.is_none() && name.is_none() {
        return Ok(None);
    }
    let namespace = namespace.unwrap_or_else(|| inst.namespace.clone());
    if namespace != inst.namespace && !chart.binding_namespaces.contains(&namespace) {
        return Err(BrokerError::BadRequest(format!(
            "parameters.namespace: {namespace:?} is not allowed for plan {}; allowed: {}",
            plan.name,
            std::iter::once(inst.namespace.as_str())
                .chain(chart.binding_namespaces.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let name = match name {
        Some(n) if super::names::is_dns_label(&n, 63) => n,
        Some(n) => {
            return Err(BrokerError::BadRequest(format!(
                "parameters.secret_name: {n:?} is not a valid Secret name (lowercase letters, digits and '-', at most 63)"
            )));
        }
        None => super::names::binding_secret_name(binding_id),
    };
    Ok(Some(super::model::SecretRef { namespace, name }))
}

fn is_instance_namespace(plan: &crate::catalog::Plan) -> bool {
    matches!(&plan.backend, crate::broker::PlanBackend::Chart(c)
        if c.namespace == crate::catalog::NamespaceStrategy::Instance)
}
