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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::client::{Client, Endpoint, Identity, Reply, UpstreamError};
use super::config::Backoff;
use crate::broker::model::{HasOperations, Secrets};
use crate::broker::ports::{Backend, BackendError, BindingCtx, Checkpoint, InstanceCtx};
use crate::catalog::{Plan, UpstreamBackend};

/// Longest `Retry-After` honoured; a longer one is treated as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Deadline of work whose operation carries none (should not happen).
const FALLBACK_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// Time kept before the operation's deadline to fail cleanly.
const FINAL_MARGIN: Duration = Duration::from_secs(1);

/// The upstream [`Backend`]: routes each plan to its upstream broker.
pub struct UpstreamPlans {
    brokers: HashMap<String, Result<Arc<Client>, String>>,
}

impl UpstreamPlans {
    /// Plans served by these clients, by upstream name; an `Err` is why that
    /// upstream cannot be used (its plans fail with that description).
    pub fn new(brokers: HashMap<String, Result<Arc<Client>, String>>) -> Self {
        UpstreamPlans { brokers }
    }

    fn route<'p>(
        &self,
        plan: &'p Plan,
    ) -> Result<(Arc<Client>, &'p UpstreamBackend), BackendError> {
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

// === progress ===

/// What the backend checkpoints into the running operation. `step` names
/// the call that saved it, because a deprovision's checkpoint is also what
/// the unbinds it runs first see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
enum Progress {
    /// The upstream answered 202; poll its `last_operation`.
    Polling {
        step: String,
        upstream: String,
        operation: Option<String>,
    },
    /// The request may have left something upstream; remove it.
    OrphanMitigation {
        step: String,
        upstream: String,
        reason: String,
    },
}

impl Progress {
    fn step(&self) -> &str {
        match self {
            Progress::Polling { step, .. } | Progress::OrphanMitigation { step, .. } => step,
        }
    }
}

/// What an operation acts on upstream.
#[derive(Clone, Copy)]
enum Target<'a> {
    Instance(&'a str),
    Binding(&'a str, &'a str),
}

impl<'a> Target<'a> {
    fn endpoint(self) -> Endpoint<'a> {
        match self {
            Target::Instance(i) => Endpoint::Instance(i),
            Target::Binding(i, b) => Endpoint::Binding(i, b),
        }
    }

    fn last_operation(self) -> Endpoint<'a> {
        match self {
            Target::Instance(i) => Endpoint::InstanceLastOperation(i),
            Target::Binding(i, b) => Endpoint::BindingLastOperation(i, b),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Target::Instance(_) => "service instance",
            Target::Binding(..) => "service binding",
        }
    }

    fn remove_verb(self) -> &'static str {
        match self {
            Target::Instance(_) => "deprovision",
            Target::Binding(..) => "unbind",
        }
    }
}

/// How an upstream `last_operation` poll ended.
enum Settled {
    /// `succeeded`, or 410 Gone while deleting.
    Succeeded,
    Failed(LastOp),
    /// Out of time; the last thing the upstream said.
    TimedOut(String),
}

/// A failed upstream operation, as its `last_operation` described it.
struct LastOp {
    description: Option<String>,
    instance_usable: Option<bool>,
    update_repeatable: Option<bool>,
}

/// How a create (PUT) answer is to be taken.
enum Created {
    /// 200/201: done; the body.
    Done(Map<String, Value>),
    /// 202: poll this operation.
    Accepted(Option<String>),
    /// Nothing was created upstream: fail with this.
    Rejected(String),
    /// Something may have been created upstream: mitigate, then fail.
    Orphan(String),
}

// === one running call ===

/// One backend call: the upstream, the operation's deadline and where to
/// checkpoint.
struct Run<'a> {
    client: &'a Client,
    up: &'a UpstreamBackend,
    identity: Identity<'a>,
    checkpoint: &'a dyn Checkpoint,
    progress: Option<Progress>,
    step: String,
    started: Duration,
    deadline: Duration,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl<'a> Run<'a> {
    fn new(
        client: &'a Client,
        up: &'a UpstreamBackend,
        ctx: &InstanceCtx<'a>,
        own: Option<&'a crate::broker::model::Operation>,
        step: String,
    ) -> Self {
        let op = own.or_else(|| ctx.instance.current());
        let (started, deadline) = match op {
            Some(op) => (
                Duration::from_secs(op.started_at),
                Duration::from_secs(op.deadline),
            ),
            None => (now(), now() + FALLBACK_DEADLINE),
        };
        let progress = ctx
            .progress
            .and_then(|p| serde_json::from_value::<Progress>(p.clone()).ok())
            .filter(|p| p.step() == step);
        Run {
            client,
            up,
            identity: Identity {
                originating: ctx.originating_identity,
                request: ctx.request_identity,
            },
            checkpoint: ctx.checkpoint,
            progress,
            step,
            started,
            deadline,
        }
    }

    fn broker(&self) -> &str {
        self.client.name()
    }

    fn backoff(&self) -> Backoff {
        self.client.config().poll
    }

    /// When polling a create must stop, leaving time to mitigate an orphan:
    /// a quarter of the operation's time, at most two timeouts and 10 s, at
    /// least 2 s.
    fn create_poll_until(&self) -> Duration {
        let total = self.deadline.saturating_sub(self.started);
        let reserve = (total / 4)
            .min(self.client.config().timeout * 2 + Duration::from_secs(10))
            .max(FINAL_MARGIN * 2);
        self.deadline.saturating_sub(reserve)
    }

    fn end(&self) -> Duration {
        self.deadline.saturating_sub(FINAL_MARGIN)
    }

    async fn save(&self, progress: Progress) {
        let value = serde_json::to_value(&progress).expect("progress serializes");
        if let Err(e) = self.checkpoint.save(value).await {
            // Losing the checkpoint only means a restart repeats the request,
            // which the upstream answers idempotently.
            tracing::warn!(upstream = %self.broker(), step = %self.step, error = %e.message,
                "could not checkpoint upstream progress");
        }
    }

    fn polling(&self, operation: Option<String>) -> Progress {
        Progress::Polling {
            step: self.step.clone(),
            upstream: self.broker().to_owned(),
            operation,
        }
    }

    /// Sleeps `d`, but not past `until`; false when no time is left.
    async fn pause(&self, d: Duration, until: Duration) -> bool {
        let left = until.saturating_sub(now());
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(d.min(left)).await;
        true
    }

    async fn send(
        &self,
        method: Method,
        endpoint: Endpoint<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, UpstreamError> {
        self.client
            .send(method, endpoint, query, body, self.identity)
            .await
    }

    /// Sends a request whose repetition is harmless (update, delete, fetch),
    /// again after transient failures, at most `retries` more times.
    /// Statuses in `ok` are final; other 2xx, 5xx, 408, 429 and 422
    /// ConcurrencyError are transient.
    async fn send_retrying(
        &self,
        method: Method,
        endpoint: Endpoint<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Reply, UpstreamError> {
        let mut delay = Delay::new(self.backoff());
        let mut attempt = 0;
        loop {
            let res = self.send(method.clone(), endpoint, query, body).await;
            let (transient, retry_after) = match &res {
                Err(e) => (e.is_transient(), None),
                Ok(r) if ok.contains(&r.status) => (false, None),
                Ok(r) => (
                    (200..300).contains(&r.status)
                        || r.status >= 500
                        || r.status == 408
                        || r.status == 429
                        || is_concurrency_error(r),
                    r.retry_after,
                ),
            };
            if !transient || attempt >= self.client.config().retries {
                return res;
            }
            attempt += 1;
            tracing::info!(upstream = %self.broker(), step = %self.step, attempt,
                outcome = %describe(&res, self.broker()), "retrying upstream request");
            if !self.pause(delay.next(retry_after), self.end()).await {
                return res;
            }
        }
    }

    /// Polls `last_operation` until the upstream settles it or `until`.
    async fn poll(
        &self,
        target: Target<'_>,
        operation: Option<&str>,
        plan_id: bool,
        deleting: bool,
        until: Duration,
    ) -> Settled {
        let mut query = vec![("service_id", self.up.service_id.as_str())];
        if plan_id {
            query.push(("plan_id", self.up.plan_id.as_str()));
        }
        if let Some(op) = operation.filter(|o| !o.is_empty()) {
            query.push(("operation", op));
        }
        let mut delay = Delay::new(self.backoff());
        loop {
            let last;
            let res = self
                .send(Method::GET, target.last_operation(), &query, None)
                .await;
            let mut retry_after = None;
            match res {
                Ok(r) if r.status == 200 => {
                    retry_after = r.retry_after;
                    match last_operation(&r) {
                        Ok((state, lo)) => match state.as_str() {
                            "succeeded" => return Settled::Succeeded,
                            "failed" => return Settled::Failed(lo),
                            "in progress" => {
                                last = lo
                                    .description
                                    .map(|d| format!("in progress: {d}"))
                                    .unwrap_or_else(|| "in progress".into())
                            }
                            other => {
                                last = format!("last_operation reported unknown state {other:?}")
                            }
                        },
                        Err(why) => {
                            last = format!(
                                "upstream broker {} answered last_operation with a malformed body: {why}",
                                self.broker()
                            )
                        }
                    }
                }
                Ok(r) if r.status == 410 && deleting => return Settled::Succeeded,
                Ok(r) => {
                    retry_after = r.retry_after;
                    last = status_error(&r, self.broker()).to_string();
                }
                Err(e) => last = e.to_string(),
            }
            if !self.pause(delay.next(retry_after), until).await {
                return Settled::TimedOut(last);
            }
        }
    }

    /// Removes what a failed create may have left upstream, retrying until
    /// the upstream confirms or the operation's deadline; returns the
    /// operation's failure, naming both the cause and the mitigation.
    async fn mitigate(&self, target: Target<'_>, reason: String) -> BackendError {
        tracing::warn!(upstream = %self.broker(), step = %self.step, reason = %reason,
            "starting orphan mitigation upstream");
        self.save(Progress::OrphanMitigation {
            step: self.step.clone(),
            upstream: self.broker().to_owned(),
            reason: reason.clone(),
        })
        .await;
        let query = [
            ("service_id", self.up.service_id.as_str()),
            ("plan_id", self.up.plan_id.as_str()),
            ("accepts_incomplete", "true"),
        ];
        let mut delay = Delay::new(self.backoff());
        let mut attempts = 0u32;
        let last = loop {
            attempts += 1;
            let res = self
                .send(Method::DELETE, target.endpoint(), &query, None)
                .await;
            let mut retry_after = None;
            let last = match res {
                Ok(r) if r.status == 200 || r.status == 410 => break None,
                Ok(r) if r.status == 202 => {
                    let op = operation_of(&r);
                    match self
                        .poll(target, op.as_deref(), true, true, self.end())
                        .await
                    {
                        Settled::Succeeded => break None,
                        Settled::Failed(lo) => format!(
                            "the upstream {} failed: {}",
                            target.remove_verb(),
                            lo.description.unwrap_or_else(|| "no description".into())
                        ),
                        Settled::TimedOut(last) => break Some(last),
                    }
                }
                Ok(r) => {
                    retry_after = r.retry_after;
                    status_error(&r, self.broker()).to_string()
                }
                Err(e) => e.to_string(),
            };
            tracing::warn!(upstream = %self.broker(), step = %self.step, attempts, last = %last,
                "orphan mitigation not confirmed yet; retrying");
            if !self.pause(delay.next(retry_after), self.end()).await {
                break Some(last);
            }
        };
        match last {
            None => {
                tracing::warn!(upstream = %self.broker(), step = %self.step, attempts,
                    "orphan mitigation confirmed by the upstream broker");
                BackendError::new(format!(
                    "{reason}; the broker then ran {} upstream to remove what may have been created (orphan mitigation), and upstream broker {} confirmed it",
                    target.remove_verb(),
                    self.broker()
                ))
            }
            Some(last) => {
                tracing::error!(upstream = %self.broker(), step = %self.step, attempts, last = %last,
                    "orphan mitigation could not be confirmed before the deadline");
                BackendError::new(format!(
                    "{reason}; orphan mitigation ({} upstream) was not confirmed by upstream broker {} before the operation's deadline after {attempts} attempt(s) (last answer: {last}); {} this {} to retry",
                    target.remove_verb(),
                    self.broker(),
                    target.remove_verb(),
                    target.noun()
                ))
            }
        }
    }

    /// Sends a create (provision or bind PUT) and classifies the answer per
    /// the orphan mitigation table.
    async fn create(&self, target: Target<'_>, body: &Value) -> Created {
        let res = self
            .send(
                Method::PUT,
                target.endpoint(),
                &[("accepts_incomplete", "true")],
                Some(body),
            )
            .await;
        let broker = self.broker();
        let r = match res {
            Err(e) if e.may_have_acted() => return Created::Orphan(e.to_string()),
            Err(e) => {
                return Created::Rejected(format!("{e}; nothing was created upstream"));
            }
            Ok(r) => r,
        };
        let malformed = |why: String| UpstreamError::InvalidJson {
            broker: broker.to_owned(),
            status: r.status,
            detail: why,
        };
        match r.status {
            200 => match r.object() {
                Ok(m) => Created::Done(m.clone()),
                Err(why) => Created::Rejected(malformed(why).to_string()),
            },
            201 => match r.object() {
                Ok(m) => Created::Done(m.clone()),
                Err(why) => Created::Orphan(malformed(why).to_string()),
            },
            202 => match r.object() {
                Ok(_) => Created::Accepted(operation_of(&r)),
                Err(why) => Created::Orphan(malformed(why).to_string()),
            },
            400..=499 => Created::Rejected(rejected(&r, broker, target)),
            _ => Created::Orphan(status_error(&r, broker).to_string()),
        }
    }
}

/// Exponential backoff, overridden by `Retry-After`.
struct Delay {
    next: Duration,
    max: Duration,
}

impl Delay {
    fn new(b: Backoff) -> Self {
        Delay {
            next: b.initial,
            max: b.max,
        }
    }

    /// The next wait: the backoff step, or longer when the upstream's
    /// `Retry-After` asks for it (never sooner than it asked).
    fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let d = match retry_after {
            Some(r) => self.next.max(r.min(MAX_RETRY_AFTER)),
            None => self.next,
        };
        self.next = (self.next * 2).min(self.max);
        d
    }
}

fn is_concurrency_error(r: &Reply) -> bool {
    r.status == 422
        && r.osb_error()
            .and_then(|e| e.error)
            .is_some_and(|e| e == "ConcurrencyError")
}

fn operation_of(r: &Reply) -> Option<String> {
    r.object()
        .ok()?
        .get("operation")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn status_error(r: &Reply, broker: &str) -> UpstreamError {
    UpstreamError::Status {
        broker: broker.to_owned(),
        code: r.status,
        error: r.osb_error(),
    }
}

fn describe(res: &Result<Reply, UpstreamError>, broker: &str) -> String {
    match res {
        Ok(r) => status_error(r, broker).to_string(),
        Err(e) => e.to_string(),
    }
}

/// The message for a 4xx answer to a create, update or delete.
fn rejected(r: &Reply, broker: &str, target: Target<'_>) -> String {
    let osb = r.osb_error().map(|e| format!(": {e}")).unwrap_or_default();
    match r.status {
        409 => format!(
            "conflict upstream: broker {broker} already has a {} with this id but different attributes (HTTP 409){osb}",
            target.noun()
        ),
        404 => format!(
            "upstream broker {broker} does not know this {} (HTTP 404){osb}",
            target.noun()
        ),
        400 => format!("upstream broker {broker} rejected the request as invalid (HTTP 400){osb}"),
        422 => format!("upstream broker {broker} could not process the request (HTTP 422){osb}"),
        code => format!("upstream broker {broker} refused the request (HTTP {code}){osb}"),
    }
}

/// `state` and the failure fields of a `last_operation` answer.
fn last_operation(r: &Reply) -> Result<(String, LastOp), String> {
    let m = r.object()?;
    let state = m
        .get("state")
        .and_then(Value::as_str)
        .ok_or("it has no `state` string")?
        .to_owned();
    Ok((
        state,
        LastOp {
            description: m
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.trim().is_empty())
                .map(str::to_owned),
            instance_usable: m.get("instance_usable").and_then(Value::as_bool),
            update_repeatable: m.get("update_repeatable").and_then(Value::as_bool),
        },
    ))
}

/// Credentials from a bind or fetch-binding body: absent means none.
fn credentials(body: &Map<String, Value>) -> Result<Secrets, String> {
    match body.get("credentials") {
        None | Some(Value::Null) => Ok(Secrets::default()),
        Some(v @ Value::Object(_)) => Ok(Secrets::from_value(v.clone())),
        Some(_) => Err("`credentials` is not a JSON object".into()),
    }
}

fn upstream_failed(broker: &str, what: &str, lo: &LastOp) -> String {
    match &lo.description {
        Some(d) => format!("upstream broker {broker} reported the {what} failed: {d}"),
        None => format!("upstream broker {broker} reported the {what} failed"),
    }
}

fn timed_out(broker: &str, what: &str, last: &str) -> String {
    format!(
        "upstream broker {broker} did not finish the {what} within the plan's maximum_polling_duration (last answer: {last})"
    )
}

fn insert_opt(m: &mut Map<String, Value>, k: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(k.to_owned(), v.clone());
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
        let target = Target::Instance(&inst.id);
        let operation = match run.progress.clone() {
            Some(Progress::OrphanMitigation { reason, .. }) => {
                return Err(run.mitigate(target, reason).await);
            }
            Some(Progress::Polling { operation, .. }) => operation,
            None => {
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
                match run.create(target, &Value::Object(body)).await {
                    Created::Done(_) => return Ok(()),
                    Created::Rejected(msg) => return Err(BackendError::new(msg)),
                    Created::Orphan(reason) => return Err(run.mitigate(target, reason).await),
                    Created::Accepted(operation) => {
                        run.save(run.polling(operation.clone())).await;
                        operation
                    }
                }
            }
        };
        let broker = run.broker().to_owned();
        match run
            .poll(
                target,
                operation.as_deref(),
                true,
                false,
                run.create_poll_until(),
            )
            .await
        {
            Settled::Succeeded => Ok(()),
            Settled::Failed(lo) => Err(run
                .mitigate(target, upstream_failed(&broker, "provision", &lo))
                .await),
            Settled::TimedOut(last) => Err(run
                .mitigate(target, timed_out(&broker, "provision", &last))
                .await),
        }
    }

    async fn update(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        let (client, up) = self.route(ctx.plan)?;
        let inst = ctx.instance;
        let run = Run::new(&client, up, &ctx, None, "update instance".into());
        let target = Target::Instance(&inst.id);
        let broker = run.broker().to_owned();
        let fail = |message: String, repeatable: bool| BackendError {
            message,
            instance_usable: Some(true),
            update_repeatable: Some(repeatable),
        };
        let operation = match run.progress.clone() {
            Some(Progress::Polling { operation, .. }) => operation,
            _ => {
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
                    Err(e) => {
                        return Err(fail(
                            format!("{e}; the update was not applied upstream, repeat it to retry"),
                            true,
                        ));
                    }
                    Ok(r) if r.status == 200 => {
                        return match r.object() {
                            Ok(_) => Ok(()),
                            Err(why) => Err(fail(
                                format!(
                                    "upstream broker {broker} answered the update with HTTP 200 and a malformed body: {why}"
                                ),
                                true,
                            )),
                        };
                    }
                    Ok(r) if r.status == 202 => {
                        let operation = operation_of(&r);
                        run.save(run.polling(operation.clone())).await;
                        operation
                    }
                    // A still-busy upstream (ConcurrencyError) may take the
                    // same update later; other rejections will not.
                    Ok(r) if (400..500).contains(&r.status) => {
                        return Err(fail(
                            rejected(&r, &broker, target),
                            is_concurrency_error(&r),
                        ));
                    }
                    Ok(r) => {
                        return Err(fail(
                            format!(
                                "{}; the update may not have been applied upstream, repeat it to retry",
                                status_error(&r, &broker)
                            ),
                            true,
                        ));
                    }
                }
            }
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
            }),
            Settled::TimedOut(last) => Err(fail(timed_out(&broker, "update", &last), true)),
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
        let run = Run::new(
            &client,
            up,
            &ctx.instance,
            b.current(),
            format!("bind binding {}", b.id),
        );
        let target = Target::Binding(&b.instance_id, &b.id);
        let broker = run.broker().to_owned();
        let operation = match run.progress.clone() {
            Some(Progress::OrphanMitigation { reason, .. }) => {
                return Err(run.mitigate(target, reason).await);
            }
            Some(Progress::Polling { operation, .. }) => operation,
            None => {
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
                match run.create(target, &Value::Object(body)).await {
                    Created::Done(m) => {
                        return credentials(&m).map_err(|why| {
                            BackendError::new(format!(
                                "upstream broker {broker} answered the bind with malformed credentials: {why}"
                            ))
                        });
                    }
                    Created::Rejected(msg) => return Err(BackendError::new(msg)),
                    Created::Orphan(reason) => return Err(run.mitigate(target, reason).await),
                    Created::Accepted(operation) => {
                        run.save(run.polling(operation.clone())).await;
                        operation
                    }
                }
            }
        };
        match run
            .poll(
                target,
                operation.as_deref(),
                true,
                false,
                run.create_poll_until(),
            )
            .await
        {
            Settled::Succeeded => {}
            Settled::Failed(lo) => {
                return Err(run
                    .mitigate(target, upstream_failed(&broker, "bind", &lo))
                    .await);
            }
            Settled::TimedOut(last) => {
                return Err(run
                    .mitigate(target, timed_out(&broker, "bind", &last))
                    .await);
            }
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
        let run = Run::new(
            &client,
            up,
            &ctx.instance,
            b.current(),
            format!("unbind binding {}", b.id),
        );
        run.remove(Target::Binding(&b.instance_id, &b.id)).await
    }
}

impl Run<'_> {
    /// Deprovision or unbind: 200 and 410 are success (410: the upstream has
    /// already forgotten it), 202 is polled, transient failures retried.
    async fn remove(&self, target: Target<'_>) -> Result<(), BackendError> {
        let broker = self.broker().to_owned();
        let operation = match self.progress.clone() {
            Some(Progress::Polling { operation, .. }) => operation,
            _ => {
                let query = [
                    ("service_id", self.up.service_id.as_str()),
                    ("plan_id", self.up.plan_id.as_str()),
                    ("accepts_incomplete", "true"),
                ];
                let res = self
                    .send_retrying(
                        Method::DELETE,
                        target.endpoint(),
                        &query,
                        None,
                        &[200, 202, 410],
                    )
                    .await;
                match res {
                    // A DELETE's 200 means gone, whatever the body says.
                    Ok(r) if r.status == 200 => return Ok(()),
                    Ok(r) if r.status == 410 => {
                        tracing::info!(upstream = %broker, step = %self.step,
                            "the upstream broker had already forgotten it (410)");
                        return Ok(());
                    }
                    Ok(r) if r.status == 202 => {
                        let operation = operation_of(&r);
                        self.save(self.polling(operation.clone())).await;
                        operation
                    }
                    Ok(r) if (400..500).contains(&r.status) => {
                        return Err(BackendError::new(rejected(&r, &broker, target)));
                    }
                    Ok(r) => {
                        return Err(BackendError::new(format!(
                            "{}; the {} may still exist upstream, {} again to retry",
                            status_error(&r, &broker),
                            target.noun(),
                            target.remove_verb()
                        )));
                    }
                    Err(e) => {
                        return Err(BackendError::new(format!(
                            "{e}; the {} may still exist upstream, {} again to retry",
                            target.noun(),
                            target.remove_verb()
                        )));
                    }
                }
            }
        };
        match self
            .poll(target, operation.as_deref(), true, true, self.end())
            .await
        {
            Settled::Succeeded => Ok(()),
            Settled::Failed(lo) => Err(BackendError {
                message: upstream_failed(&broker, target.remove_verb(), &lo),
                instance_usable: lo.instance_usable,
                update_repeatable: None,
            }),
            Settled::TimedOut(last) => Err(BackendError::new(timed_out(
                &broker,
                target.remove_verb(),
                &last,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        let mut d = Delay::new(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(300),
        });
        assert_eq!(d.next(None), Duration::from_millis(100));
        assert_eq!(d.next(None), Duration::from_millis(200));
        assert_eq!(d.next(Some(Duration::from_secs(5))), Duration::from_secs(5));
        assert_eq!(d.next(Some(Duration::ZERO)), Duration::from_millis(300));
        assert_eq!(d.next(None), Duration::from_millis(300));
        assert_eq!(d.next(Some(Duration::from_secs(3600))), MAX_RETRY_AFTER);
    }

    #[test]
    fn progress_round_trips_with_its_step() {
        let p = Progress::Polling {
            step: "provision instance".into(),
            upstream: "cloud".into(),
            operation: Some("op-1".into()),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["phase"], "polling");
        assert_eq!(serde_json::from_value::<Progress>(v).unwrap(), p);
        let o = serde_json::to_value(Progress::OrphanMitigation {
            step: "bind binding b".into(),
            upstream: "cloud".into(),
            reason: "r".into(),
        })
        .unwrap();
        assert_eq!(o["phase"], "orphan-mitigation");
    }
}
