//! Plans proxied to upstream brokers: the [`Backend`] the core drives.
//!
//! Every request goes upstream with `accepts_incomplete=true`, our own
//! instance and binding ids (platforms make them globally unique) and the
//! plan's upstream service and plan ids. An upstream `202` is polled here,
//! in the operation's background task, with backoff and `Retry-After`; the
//! upstream's operation token is checkpointed first, so a restarted broker
//! resumes polling instead of sending the request again. Our own
//! `last_operation` answers from the store.
//!
//! Orphan mitigation follows the spec's table: when a provision or bind may
//! have created something upstream but did not succeed (timeout, broken
//! connection, 5xx, another 2xx, a malformed 201/202, an upstream operation
//! that failed or outlived the plan's `maximum_polling_duration`), the
//! backend records that in the checkpoint, then deprovisions or unbinds
//! upstream, retrying until the upstream confirms (200 or 410) or the
//! operation's deadline comes, and only then fails the operation with a
//! description of both. A 4xx or a refused connection created nothing, so it
//! fails at once.
//!
//! - this module: what each operation sends ([`Backend`] impl);
//! - [`run`]: one call in progress (retries, polling, orphan mitigation);
//! - [`reply`]: classifying upstream answers and wording failures.

mod reply;
mod run;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::Client;
use crate::broker::model::Secrets;
use crate::broker::ports::{Backend, BackendError, BindingCtx, InstanceCtx};
use crate::catalog::{Plan, UpstreamPlan};
use reply::Target;
use reply::{
    credentials, insert_opt, is_concurrency_error, operation_of, rejected, status_error, timed_out,
    upstream_failed,
};
use run::{Progress, Run, Settled};

/// The upstream [`Backend`]: routes each plan to its upstream broker.
pub(crate) struct UpstreamPlans {
    brokers: HashMap<String, Result<Arc<Client>, String>>,
}

impl UpstreamPlans {
    /// Plans served by these clients, by upstream name; an `Err` is why that
    /// upstream cannot be used (its plans fail with that description).
    pub(crate) fn new(brokers: HashMap<String, Result<Arc<Client>, String>>) -> Self {
        UpstreamPlans { brokers }
    }

    fn route<'p>(&self, plan: &'p Plan) -> Result<(Arc<Client>, &'p UpstreamPlan), BackendError> {
        let up = plan.upstream().ok_or_else(|| {
            BackendError::new(format!(
                "plan {} is not served by an upstream broker",
                plan.name
            ))
        })?;
        match self.brokers.get(&up.broker) {
            Some(Ok(c)) => Ok((c.clone(), up)),
            Some(Err(why)) => Err(BackendError::new(format!(
                "upstream broker {} is not usable: {why}",
                up.broker
            ))),
            None => Err(BackendError::new(format!(
                "upstream broker {} is not configured",
                up.broker
            ))),
        }
    }
}

// === impl Backend ===

#[async_trait]
impl Backend for UpstreamPlans {
    /// Upstream brokers may answer 202 at any time, so instance requests for
    /// these plans need `accepts_incomplete=true` (422 AsyncRequired
    /// otherwise). Binds are short enough to wait for within the request,
    /// which platforms that never bind asynchronously (Service Catalog) need.
    fn synchronous(&self, _plan: &Plan, kind: crate::broker::model::OpKind) -> bool {
        use crate::broker::model::OpKind;
        matches!(kind, OpKind::Bind | OpKind::Unbind)
    }

    async fn provision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        let (client, up) = self.route(ctx.plan)?;
        let inst = ctx.instance;
        let run = Run::new(&client, up, &ctx, None, "provision instance".into());
        let body = || {
            let mut body = Map::new();
            body.insert("service_id".into(), json!(up.service_id));
            body.insert("plan_id".into(), json!(up.plan_id));
            body.insert("context".into(), inst.context.clone());
            body.insert("parameters".into(), inst.parameters.clone());
            // Required by mainstream upstream frameworks even when the
            // platform sent only a context (Kubernetes platforms do).
            let guids = super::guids::for_instance(inst, &client.config().guids);
            body.insert("organization_guid".into(), json!(guids.organization));
            body.insert("space_guid".into(), json!(guids.space));
            Value::Object(body)
        };
        run.create_settled(Target::Instance(&inst.id), "provision", body)
            .await
            .map(drop)
    }

    async fn update(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        let (client, up) = self.route(ctx.plan)?;
        let inst = ctx.instance;
        let run = Run::new(&client, up, &ctx, None, "update instance".into());
        let target = Target::Instance(&inst.id);
        let broker = run.broker().to_owned();
        let operation = match run.progress.clone() {
            Some(Progress::Polling { operation, .. }) => operation,
            _ => match send_update(&run, up, &ctx, target).await? {
                Some(operation) => operation,
                None => return Ok(()),
            },
        };
        // The plan before an update is not known here; plan_id is optional.
        match run
            .poll(target, operation.as_deref(), false, false, run.end())
            .await
        {
            Settled::Succeeded => Ok(()),
            Settled::Failed(lo) => Err(BackendError {
                message: upstream_failed(&broker, "update", &lo),
                instance_usable: lo.instance_usable,
                update_repeatable: lo.update_repeatable,
                left_nothing: false,
            }),
            Settled::TimedOut(last) => {
                Err(update_failed(timed_out(&broker, "update", &last), true))
            }
        }
    }

    async fn deprovision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        let (client, up) = self.route(ctx.plan)?;
        let run = Run::new(&client, up, &ctx, None, "deprovision instance".into());
        run.remove(Target::Instance(&ctx.instance.id)).await
    }

    async fn bind(&self, ctx: BindingCtx<'_>) -> Result<Secrets, BackendError> {
        let (client, up) = self.route(ctx.instance.plan)?;
        let b = ctx.binding;
        let run = Run::for_binding(&client, up, &ctx, "bind");
        let target = Target::Binding(&b.instance_id, &b.id);
        let broker = run.broker().to_owned();
        let body = || {
            let mut body = Map::new();
            body.insert("service_id".into(), json!(up.service_id));
            body.insert("plan_id".into(), json!(up.plan_id));
            body.insert("parameters".into(), b.parameters.clone());
            insert_opt(&mut body, "context", b.context.as_ref());
            insert_opt(&mut body, "bind_resource", b.bind_resource.as_ref());
            insert_opt(
                &mut body,
                "app_guid",
                b.app_guid.as_ref().map(|s| json!(s)).as_ref(),
            );
            Value::Object(body)
        };
        if let Some(m) = run.create_settled(target, "bind", body).await? {
            return credentials(&m).map_err(|why| {
                BackendError::new(format!(
                    "upstream broker {broker} answered the bind with malformed credentials: {why}"
                ))
            });
        }
        // An asynchronous binding's credentials come from fetching it.
        let res = run
            .send_retrying(Method::GET, target.endpoint(), &[], None, &[200])
            .await;
        let fetched = match res {
            Ok(r) if r.status == 200 => r
                .object()
                .map_err(|why| {
                    format!(
                        "upstream broker {broker} answered HTTP 200 with a malformed body: {why}"
                    )
                })
                .and_then(|m| {
                    credentials(m).map_err(|why| {
                        format!("upstream broker {broker} returned malformed credentials: {why}")
                    })
                }),
            Ok(r) => Err(status_error(&r, &broker).to_string()),
            Err(e) => Err(e.to_string()),
        };
        match fetched {
            Ok(creds) => Ok(creds),
            Err(why) => Err(run
                .mitigate(
                    target,
                    format!("the upstream binding was created but its credentials could not be fetched: {why}"),
                )
                .await),
        }
    }

    async fn unbind(&self, ctx: BindingCtx<'_>) -> Result<(), BackendError> {
        let (client, up) = self.route(ctx.instance.plan)?;
        let b = ctx.binding;
        let run = Run::for_binding(&client, up, &ctx, "unbind");
        run.remove(Target::Binding(&b.instance_id, &b.id)).await
    }
}

/// An update that failed; the instance stays usable.
fn update_failed(message: String, repeatable: bool) -> BackendError {
    BackendError {
        message,
        instance_usable: Some(true),
        update_repeatable: Some(repeatable),
        left_nothing: false,
    }
}

/// Sends the update: `None` once the upstream applied it synchronously,
/// `Some(operation)` when it accepted it for polling.
async fn send_update(
    run: &Run<'_>,
    up: &UpstreamPlan,
    ctx: &InstanceCtx<'_>,
    target: Target<'_>,
) -> Result<Option<Option<String>>, BackendError> {
    let inst = ctx.instance;
    let broker = run.broker();
    let body = json!({
        "service_id": up.service_id,
        "plan_id": up.plan_id,
        "context": inst.context,
        "parameters": inst.parameters,
    });
    let res = run
        .send_retrying(
            Method::PATCH,
            target.endpoint(),
            &[("accepts_incomplete", "true")],
            Some(&body),
            &[200, 202],
        )
        .await;
    match res {
        Err(e) => Err(update_failed(
            format!("{e}; the update was not applied upstream, repeat it to retry"),
            true,
        )),
        Ok(r) if r.status == 200 => match r.object() {
            Ok(_) => Ok(None),
            Err(why) => Err(update_failed(
                format!(
                    "upstream broker {broker} answered the update with HTTP 200 and a malformed body: {why}"
                ),
                true,
            )),
        },
        Ok(r) if r.status == 202 => {
            let operation = operation_of(&r);
            run.save(run.polling(operation.clone())).await;
            Ok(Some(operation))
        }
        // A still-busy upstream (ConcurrencyError) may take the same update
        // later; other rejections will not.
        Ok(r) if (400..500).contains(&r.status) => Err(update_failed(
            rejected(&r, broker, target),
            is_concurrency_error(&r),
        )),
        Ok(r) => Err(update_failed(
            format!(
                "{}; the update may not have been applied upstream, repeat it to retry",
                status_error(&r, broker)
            ),
            true,
        )),
    }
}
