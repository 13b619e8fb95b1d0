//! `DELETE /v2/service_instances/:instance_id`

use super::cas::{Decision, Next, reply, start};
use super::model::{HasOperations, Instance, InstanceState, OpKind};
use super::requests::{DeprovisionRequest, Outcome, RequestMeta};
use super::{Broker, BrokerError, Result, required};

impl Broker {
    /// `DELETE /v2/service_instances/:instance_id`: deprovision.
    ///
    /// 200 when done synchronously, 202 while in progress (a repeat gets the
    /// same operation), 410 when the instance does not exist (422
    /// AsyncRequired instead when the named plan only deprovisions
    /// asynchronously and the request did not accept that), 422
    /// ConcurrencyError while another operation runs. Bindings the platform
    /// left behind are removed with the instance.
    pub(crate) async fn deprovision(
        &self,
        req: DeprovisionRequest,
        meta: RequestMeta,
    ) -> Result<Outcome> {
        super::valid_id(&req.instance_id, "instance_id")?;
        required(&req.service_id, "service_id")?;
        required(&req.plan_id, "plan_id")?;
        let next = self
            .compare_and_swap(&req.instance_id, |inst| {
                Box::pin(self.decide_deprovision(&req, &meta, inst))
            })
            .await?;
        match next {
            Next::Reply(outcome) => Ok(outcome),
            Next::Run { op_id, run_async } => {
                tracing::info!(instance = %req.instance_id, operation = %op_id, "deprovision accepted");
                self.run_accepted(
                    OpKind::Deprovision,
                    &req.instance_id,
                    None,
                    op_id,
                    run_async,
                    Outcome::Done,
                )
                .await
            }
        }
    }

    async fn decide_deprovision(
        &self,
        req: &DeprovisionRequest,
        meta: &RequestMeta,
        inst: Option<Instance>,
    ) -> Result<Decision<Instance, Next<Outcome>>> {
        let mut inst = match inst {
            Some(i) if i.state != InstanceState::Deleted => i,
            _ if self.refuses_sync(
                &req.service_id,
                &req.plan_id,
                OpKind::Deprovision,
                meta.accepts_incomplete,
            ) =>
            {
                return Err(BrokerError::AsyncRequired);
            }
            _ => {
                return Err(BrokerError::Gone(format!(
                    "service instance {} does not exist",
                    req.instance_id
                )));
            }
        };
        if req.service_id != inst.service_id || req.plan_id != inst.plan_id {
            return Err(BrokerError::BadRequest(format!(
                "service_id {:?} and plan_id {:?} do not match service instance {}",
                req.service_id, req.plan_id, inst.id
            )));
        }
        self.authorize(meta, &[&self.tenant_namespace(&inst.context)])
            .await?;
        if let Some(cur) = inst.current() {
            if cur.kind == OpKind::Deprovision && meta.accepts_incomplete {
                return reply(Outcome::Accepted {
                    operation: cur.id.clone(),
                });
            }
            return Err(BrokerError::Concurrency(format!(
                "another operation ({}) is in progress for this service instance",
                cur.kind.as_str()
            )));
        }
        let users = self.dependents_of(&inst.id).await?;
        if !users.is_empty() {
            return Err(BrokerError::Unprocessable(format!(
                "service instance {} is used by {}; deprovision {} first",
                inst.id,
                users.join(", "),
                if users.len() == 1 { "it" } else { "them" }
            )));
        }
        let found = self
            .plan_to_delete(&inst, &inst.plan_id)
            .ok_or_else(|| super::plan_gone(&inst.plan_id, "service instance", &inst.id))?;
        let (_, plan) = found.get();
        let run_async = self.must_run_async(plan, OpKind::Deprovision, meta.accepts_incomplete)?;
        let op = self.start_op(OpKind::Deprovision, plan, String::new(), meta);
        let op_id = op.id.clone();
        inst.push_op(op);
        Ok(start(inst, op_id, run_async))
    }
}
