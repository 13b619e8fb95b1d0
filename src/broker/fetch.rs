//! The read-only endpoints: fetch an instance or binding, and
//! `last_operation` for both.

use super::model::{BindingState, HasOperations, InstanceState, OpKind, Operation};
use super::requests::{BindingView, InstanceView, LastOperation};
use super::{Broker, BrokerError, Result};

impl Broker {
    /// `GET /v2/service_instances/:instance_id`: 404 unless provisioned, 422
    /// ConcurrencyError while an update runs.
    pub async fn fetch_instance(&self, instance_id: &str) -> Result<InstanceView> {
        let inst = match self.load_instance(instance_id).await? {
            Some((i, _)) if i.state == InstanceState::Ready => i,
            _ => {
                return Err(BrokerError::NotFound(format!(
                    "service instance {instance_id} does not exist or is not provisioned yet"
                )));
            }
        };
        if inst.current().is_some_and(|o| o.kind == OpKind::Update) {
            return Err(BrokerError::Concurrency(
                "the service instance is being updated".into(),
            ));
        }
        Ok(InstanceView {
            service_id: inst.service_id,
            plan_id: inst.plan_id,
            dashboard_url: inst.dashboard_url,
            parameters: inst.parameters,
            maintenance_version: inst.maintenance_version,
        })
    }

    /// `GET .../service_bindings/:binding_id`: 404 unless bound.
    pub async fn fetch_binding(&self, instance_id: &str, binding_id: &str) -> Result<BindingView> {
        match self.load_binding(instance_id, binding_id).await? {
            Some((b, _)) if b.state == BindingState::Bound => Ok(BindingView {
                credentials: b.credentials,
                parameters: b.parameters,
            }),
            _ => Err(BrokerError::NotFound(format!(
                "service binding {binding_id} does not exist or is not bound yet"
            ))),
        }
    }

    /// `GET /v2/service_instances/:instance_id/last_operation`: 404 for an
    /// instance never seen, 410 once it has been deprovisioned.
    pub async fn instance_last_operation(
        &self,
        instance_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperation> {
        let (inst, _) = self.load_instance(instance_id).await?.ok_or_else(|| {
            BrokerError::NotFound(format!("service instance {instance_id} does not exist"))
        })?;
        if inst.state == InstanceState::Deleted {
            return Err(BrokerError::Gone(format!(
                "service instance {instance_id} has been deprovisioned"
            )));
        }
        pick(&inst, operation).map(view)
    }

    /// `GET .../service_bindings/:binding_id/last_operation`: 404 for a binding
    /// never seen, 410 once it has been unbound.
    pub async fn binding_last_operation(
        &self,
        instance_id: &str,
        binding_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperation> {
        let (b, _) = self
            .load_binding(instance_id, binding_id)
            .await?
            .ok_or_else(|| {
                BrokerError::NotFound(format!("service binding {binding_id} does not exist"))
            })?;
        if b.state == BindingState::Deleted {
            return Err(BrokerError::Gone(format!(
                "service binding {binding_id} has been unbound"
            )));
        }
        pick(&b, operation).map(view)
    }
}

fn pick<'a, R: HasOperations>(record: &'a R, operation: Option<&str>) -> Result<&'a Operation> {
    match operation.filter(|o| !o.is_empty()) {
        Some(id) => record.find_op(id).ok_or_else(|| {
            BrokerError::BadRequest(format!("operation {id:?} is not known for this resource"))
        }),
        None => record
            .last_op()
            .ok_or_else(|| BrokerError::NotFound("no operation recorded".into())),
    }
}

fn view(op: &Operation) -> LastOperation {
    LastOperation {
        state: op.state,
        description: op.description.clone().filter(|d| !d.is_empty()),
        instance_usable: op.instance_usable,
        update_repeatable: op.update_repeatable,
    }
}
