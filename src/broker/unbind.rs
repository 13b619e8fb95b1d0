//! `DELETE /v2/service_instances/:instance_id/service_bindings/:binding_id`

use super::cas::{Decision, Next, reply, start};
use super::model::{Binding, HasOperations, Instance, OpKind};
use super::requests::{Outcome, RequestMeta, UnbindRequest};
use super::{Broker, BrokerError, Result, binding_key, required};

impl Broker {
    /// `DELETE .../service_bindings/:binding_id`: unbind.
    ///
    /// 200 when done synchronously, 202 while in progress (a repeat gets the
    /// same operation), 400 without `service_id` or `plan_id`, 410 when the
    /// binding does not exist (422 AsyncRequired instead when the named plan
    /// only unbinds asynchronously and the request did not accept that), 422
    /// ConcurrencyError while the binding is being created.
    pub(crate) async fn unbind(&self, req: UnbindRequest, meta: RequestMeta) -> Result<Outcome> {
        super::valid_id(&req.instance_id, "instance_id")?;
        super::valid_id(&req.binding_id, "binding_id")?;
        required(&req.service_id, "service_id")?;
        required(&req.plan_id, "plan_id")?;
        let key = binding_key(&req.instance_id, &req.binding_id);
        let next = self
            .compare_and_swap(&key, |b| Box::pin(self.decide_unbind(&req, &meta, b)))
            .await?;
        match next {
            Next::Reply(outcome) => Ok(outcome),
            Next::Run { op_id, run_async } => {
                self.run_accepted(
                    OpKind::Unbind,
                    &req.instance_id,
                    Some(&req.binding_id),
                    op_id,
                    run_async,
                    Outcome::Done,
                )
                .await
            }
        }
    }

    async fn decide_unbind(
        &self,
        req: &UnbindRequest,
        meta: &RequestMeta,
        binding: Option<Binding>,
    ) -> Result<Decision<Binding, Next<Outcome>>> {
        let mut b = match binding {
            Some(b) if b.exists() => b,
            _ if self.refuses_sync(
                &req.service_id,
                &req.plan_id,
                OpKind::Unbind,
                meta.accepts_incomplete,
            ) =>
            {
                return Err(BrokerError::AsyncRequired);
            }
            _ => {
                return Err(BrokerError::Gone(format!(
                    "service binding {} does not exist",
                    req.binding_id
                )));
            }
        };
        let inst = self.load_instance(&req.instance_id).await?.map(|(i, _)| i);
        // The binding's plan, or the instance's current one (platforms
        // send that after a plan change).
        let plan_matches =
            req.plan_id == b.plan_id || inst.as_ref().is_some_and(|i| i.plan_id == req.plan_id);
        if req.service_id != b.service_id || !plan_matches {
            return Err(BrokerError::BadRequest(format!(
                "service_id {:?} and plan_id {:?} do not match service binding {}",
                req.service_id, req.plan_id, b.id
            )));
        }
        if let Some(inst) = &inst {
            self.authorize_unbind(meta, inst, &b).await?;
        }
        if let Some(cur) = b.current() {
            if cur.kind == OpKind::Unbind && meta.accepts_incomplete {
                return reply(Outcome::Accepted {
                    operation: cur.id.clone(),
                });
            }
            return Err(BrokerError::Concurrency(format!(
                "another operation ({}) is in progress for this service binding",
                cur.kind.as_str()
            )));
        }
        let found = self
            .plan(&b.service_id, &b.plan_id)
            .or_else(|| {
                inst.as_ref()
                    .and_then(|i| self.plan_to_delete(i, &i.plan_id))
            })
            .ok_or_else(|| super::plan_gone(&b.plan_id, "service binding", &b.id))?;
        let (_, plan) = found.get();
        let run_async = self.must_run_async(plan, OpKind::Unbind, meta.accepts_incomplete)?;
        let op = self.start_op(OpKind::Unbind, plan, String::new(), meta);
        let op_id = op.id.clone();
        b.push_op(op);
        Ok(start(b, op_id, run_async))
    }

    /// The user must be allowed where they act and where the Secret is. The
    /// instance's own namespace (`namespace: instance`) is judged where the
    /// user acts, as bind judged it.
    async fn authorize_unbind(
        &self,
        meta: &RequestMeta,
        inst: &Instance,
        b: &Binding,
    ) -> Result<()> {
        let tenant = self.tenant_namespace(&inst.context);
        let secret_ns = b
            .secret_ref
            .as_ref()
            .or(b.target.as_ref())
            .map(|s| s.namespace.as_str())
            .filter(|ns| *ns != inst.namespace)
            .unwrap_or(tenant.as_str());
        self.authorize(meta, &[&tenant, secret_ns]).await
    }
}
