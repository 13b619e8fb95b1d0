//! The read-only endpoints: fetch an instance or binding, and
//! `last_operation` for both.

use super::model::{BindingState, HasOperations, InstanceState, OpKind, OpState, Operation};
use super::requests::{BindingView, InstanceView, LastOperation};
use super::trust::DeprovisionPoll;
use super::{Broker, BrokerError, Result};

impl Broker {
    /// `GET /v2/service_instances/:instance_id`: 404 unless provisioned, 422
    /// ConcurrencyError while an update runs.
    pub(crate) async fn fetch_instance(&self, instance_id: &str) -> Result<InstanceView> {
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
            // What the platform sent, not the plan's defaults filled in: a
            // platform comparing exactly (provider-osb) sees no drift.
            parameters: inst.requested_parameters.unwrap_or(inst.parameters),
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

    /// `GET /v2/service_instances/:instance_id/last_operation`. After an
    /// async deprovision the delete answers 200 `succeeded` while the
    /// tombstone lives; once it is forgotten, polling a delete answers 410
    /// and anything else about an unknown instance 404 (the spec's MUST).
    pub(crate) async fn instance_last_operation(
        &self,
        instance_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperation> {
        let Some((inst, _)) = self.load_instance(instance_id).await? else {
            return Err(unknown(
                operation,
                OpKind::Deprovision,
                format!("service instance {instance_id} does not exist"),
            ));
        };
        pick(&inst, operation, inst.state == InstanceState::Deleted).map(view)
    }

    /// [`Self::instance_last_operation`] for a platform whose credential
    /// asks for [`DeprovisionPoll::Gone`]: once an asynchronous
    /// deprovision has completed, its poll answers 410 at once instead of
    /// 200 `succeeded`. provider-osb reads only 404/410 from
    /// `last_operation` as deleted (a 200 `succeeded` makes it forget the
    /// delete and send DELETEs, answered 410, forever), while osb-checker
    /// reads only 200 `succeeded` as the end of a delete; both send the
    /// same poll, so the answer is the credential's.
    pub(crate) async fn instance_last_operation_for(
        &self,
        instance_id: &str,
        operation: Option<&str>,
        poll: DeprovisionPoll,
    ) -> Result<LastOperation> {
        if poll != DeprovisionPoll::Gone {
            return self.instance_last_operation(instance_id, operation).await;
        }
        // One read decides both: with a second read for the answer, a
        // deprovision finishing between the two got 200 `succeeded`.
        let Some((inst, _)) = self.load_instance(instance_id).await? else {
            return Err(unknown(
                operation,
                OpKind::Deprovision,
                format!("service instance {instance_id} does not exist"),
            ));
        };
        let op = pick(&inst, operation, inst.state == InstanceState::Deleted)?;
        if op.kind == OpKind::Deprovision && op.state == OpState::Succeeded {
            return Err(BrokerError::Gone(format!(
                "service instance {instance_id} has been deprovisioned"
            )));
        }
        Ok(view(op))
    }

    /// `GET .../service_bindings/:binding_id/last_operation`, as for
    /// instances: 200 `succeeded` for the unbind while the tombstone lives.
    pub(crate) async fn binding_last_operation(
        &self,
        instance_id: &str,
        binding_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperation> {
        let Some((b, _)) = self.load_binding(instance_id, binding_id).await? else {
            return Err(unknown(
                operation,
                OpKind::Unbind,
                format!("service binding {binding_id} does not exist"),
            ));
        };
        pick(&b, operation, b.state == BindingState::Deleted).map(view)
    }
}

/// A resource the store does not hold: 410 when the platform is polling a
/// delete of it (it is gone, which is what the delete wanted), else 404.
fn unknown(operation: Option<&str>, delete: OpKind, message: String) -> BrokerError {
    let polling_delete = operation.is_some_and(|o| {
        o.strip_prefix(delete.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
    });
    if polling_delete {
        BrokerError::Gone(message)
    } else {
        BrokerError::NotFound(message)
    }
}

/// The operation a poll is about: the one the platform names when this
/// resource had it, else the latest (platforms and suites send words of
/// their own, or ids of other resources). A deleted resource only answers
/// about its delete.
fn pick<'a, R: HasOperations>(
    record: &'a R,
    operation: Option<&str>,
    deleted: bool,
) -> Result<&'a Operation> {
    let named = operation
        .filter(|o| !o.is_empty())
        .and_then(|id| record.find_op(id));
    let op = named
        .or_else(|| record.last_op())
        .ok_or_else(|| BrokerError::NotFound("no operation recorded".into()))?;
    if deleted && !matches!(op.kind, OpKind::Deprovision | OpKind::Unbind) {
        return Err(BrokerError::Gone("the resource has been deleted".into()));
    }
    Ok(op)
}

fn view(op: &Operation) -> LastOperation {
    LastOperation {
        state: op.state,
        description: op.description.clone().filter(|d| !d.is_empty()),
        instance_usable: op.instance_usable,
        update_repeatable: op.update_repeatable,
    }
}
