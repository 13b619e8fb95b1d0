//! `PUT /v2/service_instances/:instance_id/service_bindings/:binding_id`

use serde_json::{Value, json};

use super::cas::{Decision, Next, reply, start};
use super::model::{
    Binding, BindingState, HasOperations, Instance, InstanceState, OpKind, SecretRef, Secrets,
};
use super::requests::{BindOutcome, BindRequest, Outcome, RequestMeta};
use super::{
    Broker, BrokerError, Result, binding_key, context_object, parameters_object, required,
};
use crate::catalog::{Plan, SchemaKind};
use crate::names::fingerprint;

/// A bind request, checked against its instance and plan: what every
/// attempt of the compare-and-swap decides with.
struct Asked {
    /// Parameters with the plan's defaults (a rotation's come from its
    /// predecessor).
    parameters: Value,
    app_guid: Option<String>,
    bind_resource: Option<Value>,
    context: Option<Value>,
    /// Where the binding Secret goes, when not the default place.
    target: Option<SecretRef>,
    /// Identifies the request's attributes, for repeats and 409s.
    fingerprint: String,
}

impl Broker {
    /// `PUT .../service_bindings/:binding_id`: bind.
    ///
    /// 201 with credentials when created synchronously, 200 when an identical
    /// binding exists, 202 while in progress (credentials then only come from
    /// GET), 409 for the same id with other attributes, 404 for an unknown
    /// instance, 422 ConcurrencyError while the instance is being provisioned
    /// or deprovisioned.
    pub(crate) async fn bind(&self, req: BindRequest, meta: RequestMeta) -> Result<BindOutcome> {
        super::valid_id(&req.instance_id, "instance_id")?;
        super::valid_id(&req.binding_id, "binding_id")?;
        required(&req.service_id, "service_id")?;
        required(&req.plan_id, "plan_id")?;
        let raw_params = parameters_object(&req.parameters)?;
        let context = req
            .context
            .as_ref()
            .map(|_| context_object(&req.context))
            .transpose()?;
        let inst = self.bindable_instance(&req).await?;
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
        check_instance_state(&inst)?;
        let asked = self
            .ask_bind(&req, &meta, &inst, plan, (raw_params, context))
            .await?;
        let key = binding_key(&req.instance_id, &req.binding_id);
        let next = self
            .compare_and_swap(&key, |b| {
                Box::pin(async { self.decide_bind(&req, &meta, plan, &asked, b) })
            })
            .await?;
        let (op_id, run_async) = match next {
            Next::Reply(answer) => return Ok(answer),
            Next::Run { op_id, run_async } => (op_id, run_async),
        };
        tracing::info!(instance = %req.instance_id, binding = %req.binding_id, operation = %op_id, "bind accepted");
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

    /// The instance to bind to (404 when there is none). The same binding
    /// id with other ids is the spec's 409 ("already exists but with
    /// different attributes"), not a malformed request: osb-checker-kotlin
    /// re-binds with another plan and expects 409.
    async fn bindable_instance(&self, req: &BindRequest) -> Result<Instance> {
        let inst = match self.load_instance(&req.instance_id).await? {
            Some((i, _)) if i.state != InstanceState::Deleted => i,
            _ => {
                return Err(BrokerError::NotFound(format!(
                    "service instance {} does not exist",
                    req.instance_id
                )));
            }
        };
        if let Some((b, _)) = self.load_binding(&req.instance_id, &req.binding_id).await? {
            if b.exists() && (b.service_id != req.service_id || b.plan_id != req.plan_id) {
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
        Ok(inst)
    }

    /// Checks a bind request against its instance and plan: where the
    /// Secret goes (and that the user may act there), rotation, the
    /// parameter schema; and fingerprints it.
    async fn ask_bind(
        &self,
        req: &BindRequest,
        meta: &RequestMeta,
        inst: &Instance,
        plan: &Plan,
        (mut raw_params, context): (Value, Option<Value>),
    ) -> Result<Asked> {
        // The broker's own bind parameters say where the Secret goes; the
        // plan's schema sees the rest.
        let requested = take_target(&mut raw_params, plan, inst, &req.binding_id)?;
        let target = match &req.internal {
            Some((secret, _)) => Some(secret.clone()),
            None => requested,
        };
        if let (Some(t), None) = (&target, &req.internal) {
            self.check_namespace(&t.namespace, "parameters.namespace", true)
                .await?;
        }
        self.authorize_bind(meta, inst, plan, target.as_ref())
            .await?;
        let (mut parameters, app_guid, bind_resource) =
            self.inherited(req, plan, raw_params).await?;
        plan.apply_defaults(SchemaKind::BindingCreate, &mut parameters);
        let fingerprint = fingerprint(&json!({
            "service_id": req.service_id,
            "plan_id": req.plan_id,
            "app_guid": req.app_guid,
            "bind_resource": req.bind_resource,
            "parameters": parameters_object(&req.parameters)?,
            "predecessor_binding_id": req.predecessor_binding_id,
            "internal": req.internal.as_ref().map(|(s, d)| json!([s.namespace, s.name, d])),
        }));
        Ok(Asked {
            parameters,
            app_guid,
            bind_resource,
            context,
            target,
            fingerprint,
        })
    }

    /// The user must be allowed where the instance's credentials come from
    /// and where their Secret goes. A Secret in the instance's own namespace
    /// (`namespace: instance`) is judged where the user acts, as the
    /// provision was.
    async fn authorize_bind(
        &self,
        meta: &RequestMeta,
        inst: &Instance,
        plan: &Plan,
        target: Option<&SecretRef>,
    ) -> Result<()> {
        let tenant = self.tenant_namespace(&inst.context);
        let target_ns = match target {
            Some(t) if t.namespace != inst.namespace => t.namespace.clone(),
            _ if is_instance_namespace(plan) => tenant.clone(),
            _ => inst.namespace.clone(),
        };
        self.authorize(meta, &[&tenant, &target_ns]).await
    }

    /// Parameters, `app_guid` and `bind_resource`: the request's (checked
    /// against the plan's schema), or on rotation its predecessor's, which
    /// the platform may not have kept.
    async fn inherited(
        &self,
        req: &BindRequest,
        plan: &Plan,
        raw_params: Value,
    ) -> Result<(Value, Option<String>, Option<Value>)> {
        let Some(pred) = req
            .predecessor_binding_id
            .as_ref()
            .filter(|p| !p.is_empty())
        else {
            plan.validate_parameters(SchemaKind::BindingCreate, &raw_params)
                .map_err(BrokerError::BadRequest)?;
            return Ok((raw_params, req.app_guid.clone(), req.bind_resource.clone()));
        };
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
        Ok((
            p.parameters,
            req.app_guid.clone().or(p.app_guid),
            req.bind_resource.clone().or(p.bind_resource),
        ))
    }

    /// Decides on the binding as it is: answer a repeat, refuse a conflict,
    /// or record a new bind (after a failed one or over a tombstone, keeping
    /// its history).
    fn decide_bind(
        &self,
        req: &BindRequest,
        meta: &RequestMeta,
        plan: &Plan,
        asked: &Asked,
        existing: Option<Binding>,
    ) -> Result<Decision<Binding, Next<BindOutcome>>> {
        let history = match existing {
            Some(b) if b.exists() => {
                if let Some(answer) = repeat(&b, &asked.fingerprint, meta)? {
                    return reply(answer);
                }
                b.operations
            }
            // Unbound, or a failed bind that left nothing: start afresh.
            Some(tombstone) => tombstone.operations,
            None => Vec::new(),
        };
        let run_async = self.must_run_async(plan, OpKind::Bind, meta.accepts_incomplete)?;
        let op = self.start_op(OpKind::Bind, plan, asked.fingerprint.clone(), meta);
        let mut b = Binding {
            id: req.binding_id.clone(),
            instance_id: req.instance_id.clone(),
            service_id: req.service_id.clone(),
            plan_id: req.plan_id.clone(),
            app_guid: asked.app_guid.clone(),
            bind_resource: asked.bind_resource.clone(),
            context: asked.context.clone(),
            parameters: asked.parameters.clone(),
            credentials: Secrets::default(),
            secret_ref: None,
            target: asked.target.clone(),
            dependent: req.internal.as_ref().map(|(_, d)| d.clone()),
            state: BindingState::Binding,
            left_nothing: false,
            fingerprint: asked.fingerprint.clone(),
            operations: history,
        };
        let op_id = op.id.clone();
        b.push_op(op);
        Ok(start(b, op_id, run_async))
    }
}

/// 422 while the instance is provisioning, failed to, or is being
/// deprovisioned.
fn check_instance_state(inst: &Instance) -> Result<()> {
    match (inst.state, inst.current()) {
        (InstanceState::Provisioning, _) => Err(BrokerError::Concurrency(
            "the service instance is still being provisioned".into(),
        )),
        (InstanceState::ProvisionFailed, _) => Err(BrokerError::Unprocessable(
            "the service instance failed to provision".into(),
        )),
        (_, Some(op)) if op.kind == OpKind::Deprovision => Err(BrokerError::Concurrency(
            "the service instance is being deprovisioned".into(),
        )),
        _ => Ok(()),
    }
}

/// The answer to a bind of a binding that exists: 200 with its credentials
/// once bound, 202 with its operation while binding (422 to a request that
/// can't wait); `None` when a failed bind may run again.
fn repeat(b: &Binding, fp: &str, meta: &RequestMeta) -> Result<Option<BindOutcome>> {
    if b.fingerprint != fp {
        return Err(BrokerError::Conflict(format!(
            "service binding {} already exists with different attributes",
            b.id
        )));
    }
    match b.state {
        BindingState::Bound => Ok(Some(BindOutcome {
            outcome: Outcome::Done,
            credentials: Some(b.credentials.clone()),
        })),
        BindingState::Binding if meta.accepts_incomplete => Ok(Some(BindOutcome {
            outcome: Outcome::Accepted {
                operation: b.current().map(|o| o.id.clone()).unwrap_or_default(),
            },
            credentials: None,
        })),
        BindingState::Binding => Err(BrokerError::Concurrency(
            "the service binding is being created".into(),
        )),
        _ => Ok(None),
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
        Some(n) if crate::names::is_dns_label(&n, 63) => n,
        Some(n) => {
            return Err(BrokerError::BadRequest(format!(
                "parameters.secret_name: {n:?} is not a valid Secret name (lowercase letters, digits and '-', at most 63)"
            )));
        }
        None => crate::names::binding_secret_name(binding_id),
    };
    Ok(Some(super::model::SecretRef { namespace, name }))
}

fn is_instance_namespace(plan: &crate::catalog::Plan) -> bool {
    matches!(&plan.served_by, crate::catalog::ServedBy::Chart(c)
        if c.namespace == crate::catalog::NamespaceStrategy::Instance)
}
