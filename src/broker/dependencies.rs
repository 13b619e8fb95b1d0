//! Instances that use other instances (`chart.uses`): a WordPress instance
//! names a MySQL instance in a parameter; the broker binds to it, puts the
//! binding Secret in WordPress's namespace and passes its name to the chart.
//!
//! The bindings go through the ordinary bind and unbind paths, so they are
//! durable, idempotent and visible like any other binding; they carry the
//! dependent's id, and an instance still used cannot be deprovisioned.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::model::{
    BindingState, DependencyRef, Instance, InstanceState, OpState, OriginatingIdentity, SecretRef,
};
use super::ports::BackendError;
use super::requests::{BindRequest, Outcome, RequestMeta, UnbindRequest};
use super::{Broker, BrokerError, Result};
use crate::catalog::Plan;
use crate::names::{is_dns_label, short_hash};

/// How often the dependent's operation looks at the binding it waits for.
const POLL: Duration = Duration::from_millis(200);

impl Broker {
    /// Checks the instances a provision request names for `chart.uses` and
    /// plans the bindings to make: 400 unless each exists, is provisioned,
    /// belongs to the right service and lives in the dependent's tenant
    /// namespace (or one the plan lists); 403 unless the requesting user may
    /// act in the used instance's namespace too. A tenant who learns another
    /// tenant's instance id gets the same 400 as for an id that doesn't
    /// exist, so ids can't be probed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_dependencies(
        &self,
        plan: &Plan,
        parameters: &Value,
        instance_id: &str,
        release: &str,
        namespace: &str,
        tenant: &str,
        meta: &RequestMeta,
    ) -> Result<BTreeMap<String, DependencyRef>> {
        let mut out = BTreeMap::new();
        let Some(chart) = plan.chart() else {
            return Ok(out);
        };
        let catalog = self.catalog();
        for (name, dep) in &chart.uses {
            let p = &dep.parameter;
            let used_id = parameters
                .get(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    BrokerError::BadRequest(format!(
                        "parameters.{p} must name an existing {} service instance",
                        dep.service
                    ))
                })?;
            if used_id == instance_id {
                return Err(BrokerError::BadRequest(format!(
                    "parameters.{p}: an instance cannot use itself"
                )));
            }
            let missing = || {
                BrokerError::BadRequest(format!(
                    "parameters.{p}: service instance {used_id:?} does not exist, is not provisioned or is not in a namespace this plan may reach"
                ))
            };
            let used = match self.load_instance(used_id).await? {
                Some((i, _)) if i.state == InstanceState::Ready => i,
                _ => return Err(missing()),
            };
            let used_tenant = self.tenant_namespace(&used.context);
            if !dep.reaches(tenant, &used_tenant) {
                return Err(missing());
            }
            self.check_namespace(&used_tenant, &format!("parameters.{p}"), true)
                .await?;
            self.authorize(meta, &[&used_tenant]).await?;
            let service = catalog
                .find_service(&used.service_id)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            if service != dep.service {
                return Err(BrokerError::BadRequest(format!(
                    "parameters.{p}: service instance {used_id:?} is a {service} instance, not {}",
                    dep.service
                )));
            }
            let secret_name = format!("{release}-{name}");
            let secret_name = if is_dns_label(&secret_name, 63) {
                secret_name
            } else {
                format!("cbx-{}", short_hash(&secret_name))
            };
            out.insert(
                name.clone(),
                DependencyRef {
                    instance_id: used_id.to_string(),
                    binding_id: format!("uses-{}-{}", short_hash(instance_id), short_hash(name)),
                    secret: SecretRef {
                        namespace: namespace.to_string(),
                        name: secret_name,
                    },
                },
            );
        }
        Ok(out)
    }

    /// Makes (or finds) the bindings a dependent instance needs, waiting for
    /// asynchronous ones.
    pub(super) async fn bind_dependencies(
        &self,
        inst: &Instance,
        identity: Option<&OriginatingIdentity>,
    ) -> std::result::Result<(), BackendError> {
        for (name, dep) in &inst.dependencies {
            let fail = failed("binding to", name, dep);
            let (used, _) = self
                .load_instance(&dep.instance_id)
                .await
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("it no longer exists".into()))?;
            let req = BindRequest {
                instance_id: used.id.clone(),
                binding_id: dep.binding_id.clone(),
                service_id: used.service_id.clone(),
                plan_id: used.plan_id.clone(),
                internal: Some((dep.secret.clone(), inst.id.clone())),
                ..Default::default()
            };
            let meta = dependency_meta(identity);
            match self
                .bind(req, meta)
                .await
                .map_err(|e| fail(e.to_string()))?
                .outcome
            {
                Outcome::Created | Outcome::Done => {}
                Outcome::Accepted { operation } => loop {
                    let op = self
                        .binding_last_operation(&used.id, &dep.binding_id, Some(&operation))
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    match op.state {
                        OpState::Succeeded => break,
                        OpState::Failed => return Err(fail(op.description.unwrap_or_default())),
                        OpState::InProgress => tokio::time::sleep(POLL).await,
                    }
                },
            }
        }
        Ok(())
    }

    /// Removes the bindings a dependent instance made, waiting for
    /// asynchronous unbinds; bindings already gone are fine.
    pub(super) async fn unbind_dependencies(
        &self,
        inst: &Instance,
        identity: Option<&OriginatingIdentity>,
    ) -> std::result::Result<(), BackendError> {
        for (name, dep) in &inst.dependencies {
            let fail = failed("unbinding from", name, dep);
            let Some((binding, _)) = self
                .load_binding(&dep.instance_id, &dep.binding_id)
                .await
                .map_err(|e| fail(e.to_string()))?
            else {
                continue;
            };
            if binding.state == BindingState::Deleted {
                continue;
            }
            loop {
                let req = UnbindRequest {
                    instance_id: dep.instance_id.clone(),
                    binding_id: dep.binding_id.clone(),
                    service_id: binding.service_id.clone(),
                    plan_id: binding.plan_id.clone(),
                };
                let meta = dependency_meta(identity);
                match self.unbind(req, meta).await {
                    Ok(Outcome::Accepted { operation }) => {
                        match self
                            .binding_last_operation(
                                &dep.instance_id,
                                &dep.binding_id,
                                Some(&operation),
                            )
                            .await
                        {
                            Err(BrokerError::Gone(_)) => break,
                            Ok(op) if op.state == OpState::Failed => {
                                return Err(fail(op.description.unwrap_or_default()));
                            }
                            Ok(_) => tokio::time::sleep(POLL).await,
                            Err(e) => return Err(fail(e.to_string())),
                        }
                    }
                    Ok(_) | Err(BrokerError::Gone(_)) => break,
                    // Another operation on that binding: wait for it.
                    Err(BrokerError::Concurrency(_)) => tokio::time::sleep(POLL).await,
                    Err(e) => return Err(fail(e.to_string())),
                }
            }
        }
        Ok(())
    }

    /// The live instances that use `instance_id`, for refusing its
    /// deprovision.
    pub(super) async fn dependents_of(&self, instance_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (b, _) in self.bindings_of(instance_id).await? {
            let Some(d) = b.dependent.filter(|_| b.state != BindingState::Deleted) else {
                continue;
            };
            if let Some((i, _)) = self.load_instance(&d).await? {
                if i.state != InstanceState::Deleted {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

/// How a dependency's bind or unbind fails: `doing` the `name` instance.
fn failed<'a>(
    doing: &'a str,
    name: &'a str,
    dep: &'a DependencyRef,
) -> impl Fn(String) -> BackendError + 'a {
    move |e| {
        BackendError::new(format!(
            "{doing} the {name} instance {}: {e}",
            dep.instance_id
        ))
    }
}

/// A dependency's bind or unbind is judged like a platform's, as the user
/// who asked for the dependent instance.
fn dependency_meta(identity: Option<&OriginatingIdentity>) -> RequestMeta {
    RequestMeta {
        accepts_incomplete: true,
        originating_identity: identity.cloned(),
        trust: super::trust::Trust::already_authorized(),
        ..Default::default()
    }
}
