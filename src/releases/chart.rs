//! Plans backed by a Helm chart. This adapter owns the catalog's templates:
//! it turns an instance into chart values and a binding into credentials, and
//! leaves installing to a [`ReleaseEngine`] (render to disk, or real helm).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::broker::model::{OpKind, Secrets};
use crate::broker::ports::{Backend, BackendError, BindingCtx, Checkpoint, InstanceCtx};
use crate::catalog::{BindingUsers, ChartPlan, ChartSource, LookupKind, Plan};
use crate::charts::ChartFetcher;
use crate::dbusers::{self, UserAdmin};
use crate::helm::redact;
use crate::policy::Policy;
use crate::template;

/// A release to install or upgrade.
#[derive(Clone)]
pub struct Release {
    /// Helm release name.
    pub(crate) name: String,
    /// Namespace.
    pub(crate) namespace: String,
    /// Whether the broker owns the namespace (one namespace per instance).
    pub(crate) own_namespace: bool,
    /// The chart helm installs: a local folder, or the cached archive of a
    /// remote source. [`ChartPlans`] resolves remote sources before install
    /// and upgrade; a release built only for uninstall or lookups (which
    /// never read the chart) carries an empty path for a remote source.
    pub(crate) chart: PathBuf,
    /// Rendered values (contain generated secrets).
    pub values: Value,
    /// Strings to redact from any message (generated secrets).
    pub(crate) redact: Vec<String>,
    /// The OSB instance id, for labels and logs.
    pub(crate) instance_id: String,
    /// What the rendered manifests may contain (the plan's `chart.policy`).
    pub(crate) policy: Policy,
    /// Wait for workloads to be ready (the plan's `chart.wait`).
    pub(crate) wait: bool,
    /// Delete leftover PVCs on uninstall (the plan's `chart.delete_pvcs`).
    pub(crate) delete_pvcs: bool,
    /// Most bytes of manifests helm may render (`chart.limits.max_manifest_bytes`).
    pub(crate) max_manifest_bytes: usize,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("chart", &self.chart)
            .finish_non_exhaustive()
    }
}

/// Installs, upgrades and removes releases.
#[async_trait]
pub(crate) trait ReleaseEngine: Send + Sync + 'static {
    /// Whether an install finishes quickly enough to answer synchronously.
    fn synchronous(&self) -> bool;
    /// Installs (or re-installs) a release; idempotent. `progress` hears
    /// what a long install waits for.
    async fn install(
        &self,
        release: &Release,
        progress: &dyn Checkpoint,
    ) -> Result<(), BackendError>;
    /// Upgrades a release to new values or a new chart.
    async fn upgrade(
        &self,
        release: &Release,
        progress: &dyn Checkpoint,
    ) -> Result<(), BackendError>;
    /// Removes a release; succeeds if it is already gone.
    async fn uninstall(&self, release: &Release) -> Result<(), BackendError>;
    /// Reads one object of a release for a credential lookup: a Secret's or
    /// ConfigMap's data as a string map, a Service as `{name, host, port,
    /// ports}`. `None` when the object does not exist.
    async fn lookup(
        &self,
        release: &Release,
        kind: LookupKind,
        name: &str,
    ) -> Result<Option<Value>, BackendError>;
}

/// The chart [`Backend`].
pub(crate) struct ChartPlans {
    engine: Arc<dyn ReleaseEngine>,
    fetcher: Option<Arc<ChartFetcher>>,
    users: Arc<dyn UserAdmin>,
}

impl ChartPlans {
    /// Chart plans installed by `engine`, local charts only.
    pub(crate) fn new(engine: Arc<dyn ReleaseEngine>) -> Self {
        ChartPlans {
            engine,
            fetcher: None,
            users: Arc::new(crate::dbusers::Servers),
        }
    }

    /// Create and drop per-binding database users with `users` (tests
    /// wrap the real servers to crash between steps).
    pub(crate) fn with_user_admin(mut self, users: Arc<dyn UserAdmin>) -> Self {
        self.users = users;
        self
    }

    /// The binding's user to drop, as `dbusers` takes it.
    fn revoking<'a>(
        &'a self,
        spec: &'a BindingUsers,
        (data, ids, redact): &'a UserScope<'a>,
        ctx: &'a BindingCtx<'_>,
    ) -> dbusers::Revoking<'a> {
        dbusers::Revoking {
            admin: self.users.as_ref(),
            spec,
            data,
            ids: *ids,
            credentials: &ctx.binding.credentials,
            redact_also: redact,
        }
    }

    /// Fetch charts of remote sources (repositories, OCI) with `fetcher`.
    pub(crate) fn with_fetcher(mut self, fetcher: Arc<ChartFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The release to install or upgrade: values rendered, chart made local.
    async fn installable(&self, ctx: &InstanceCtx<'_>) -> Result<Release, BackendError> {
        let mut release = release_for(ctx)?;
        let source = &chart_of(ctx.plan)?.source;
        release.chart = match (source, &self.fetcher) {
            // Checked on every use: the charts directory may have changed
            // since the catalog was loaded.
            (ChartSource::Local(path), _) => {
                crate::charts::check_folder(path).map_err(|e| BackendError::new(e.to_string()))?;
                path.clone()
            }
            (_, Some(fetcher)) => fetcher
                .resolve(source)
                .await
                .map_err(|e| BackendError::new(redact(&e.to_string(), &release.redact)))?,
            (_, None) => {
                return Err(BackendError::new(format!(
                    "chart {source}: remote chart sources are not enabled in this broker"
                )));
            }
        };
        Ok(release)
    }

    /// Reads every `chart.lookups` object of the release.
    async fn read_lookups(&self, ctx: &InstanceCtx<'_>) -> Result<Value, BackendError> {
        let chart = chart_of(ctx.plan)?;
        let mut out = serde_json::Map::new();
        if chart.lookups.is_empty() {
            return Ok(Value::Object(out));
        }
        let rel = release(ctx, Value::Null)?;
        let data = instance_data(ctx);
        for (name, lookup) in &chart.lookups {
            let (kind, template) = lookup.target().map_err(BackendError::new)?;
            let object = template::render_tree(&Value::String(template.to_string()), &data)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    BackendError::new(format!("lookup {name}: the object name renders empty"))
                })?;
            let what = format!("lookup {name}: {kind:?} {}/{object}", rel.namespace);
            let found = self
                .engine
                .lookup(&rel, kind, &object)
                .await?
                .ok_or_else(|| BackendError::new(format!("{what} does not exist")))?;
            let value = match &lookup.key {
                None => found,
                Some(k) => found
                    .get(k)
                    .cloned()
                    .ok_or_else(|| BackendError::new(format!("{what} has no key {k:?}")))?,
            };
            out.insert(name.clone(), value);
        }
        Ok(Value::Object(out))
    }
}

fn chart_of(plan: &Plan) -> Result<&ChartPlan, BackendError> {
    plan.chart()
        .ok_or_else(|| BackendError::new(format!("plan {} is not a chart plan", plan.name)))
}

/// What templates see about an instance.
fn instance_data(ctx: &InstanceCtx<'_>) -> Value {
    let i = ctx.instance;
    json!({
        "instance": {
            "id": i.id,
            "release": i.release,
            "namespace": i.namespace,
            "service_id": i.service_id,
            "plan_id": i.plan_id,
            "service_name": ctx.service.name,
            "plan_name": ctx.plan.name,
        },
        "context": i.context,
        "parameters": i.parameters,
        "secrets": i.secrets.to_value(),
        "uses": i.dependencies.iter().map(|(name, d)| {
            (name.clone(), json!({"secret": d.secret.name, "instance": d.instance_id}))
        }).collect::<serde_json::Map<_, _>>(),
    })
}

/// The release of an instance, with values (`values: false` leaves them
/// out: uninstall and lookups must not depend on templates).
fn release(ctx: &InstanceCtx<'_>, values: Value) -> Result<Release, BackendError> {
    let chart = chart_of(ctx.plan)?;
    Ok(Release {
        name: ctx.instance.release.clone(),
        namespace: ctx.instance.namespace.clone(),
        own_namespace: chart.namespace == crate::catalog::NamespaceStrategy::Instance,
        chart: chart
            .source
            .local_path()
            .map(Into::into)
            .unwrap_or_default(),
        values,
        redact: ctx.instance.secrets.strings(),
        instance_id: ctx.instance.id.clone(),
        policy: chart.policy.clone(),
        wait: chart.wait,
        delete_pvcs: chart.delete_pvcs,
        max_manifest_bytes: chart.limits.max_manifest_bytes,
    })
}

/// Builds the release for an instance: values rendered leaf by leaf. A
/// remote chart source is not resolved here (`chart` is empty then); resolve
/// it with [`ChartFetcher::resolve`].
pub(crate) fn release_for(ctx: &InstanceCtx<'_>) -> Result<Release, BackendError> {
    let chart = chart_of(ctx.plan)?;
    let values = template::render_tree(&chart.values, &instance_data(ctx)).map_err(|e| {
        BackendError::new(format!(
            "rendering the values of plan {}: {e}",
            ctx.plan.name
        ))
    })?;
    release(ctx, values)
}

/// Renders a binding's credentials from the plan's template; `lookups` are
/// the values of the plan's `chart.lookups`, already read; `user` is the
/// binding's own database user (`chart.binding_users`).
pub(crate) fn credentials_for(
    ctx: &BindingCtx<'_>,
    lookups: Value,
    user: Option<&dbusers::User>,
) -> Result<Secrets, BackendError> {
    let chart = chart_of(ctx.instance.plan)?;
    let mut data = instance_data(&ctx.instance);
    data["lookups"] = lookups;
    if let Some(u) = user {
        data["user"] = json!({"username": u.username, "password": u.password});
    }
    data["binding"] = json!({
        "id": ctx.binding.id,
        "app_guid": ctx.binding.app_guid.clone().or_else(|| {
            ctx.binding.bind_resource.as_ref()
                .and_then(|r| r.get("app_guid")).and_then(|a| a.as_str()).map(str::to_string)
        }),
        "parameters": ctx.binding.parameters,
    });
    let rendered = template::render_tree(&chart.credentials, &data).map_err(|e| {
        BackendError::new(format!(
            "rendering the credentials of plan {}: {e}",
            ctx.instance.plan.name
        ))
    })?;
    Ok(Secrets::from_value(rendered))
}

#[async_trait]
impl Backend for ChartPlans {
    fn synchronous(&self, _plan: &Plan, kind: OpKind) -> bool {
        // Credentials come from templates and one Secret write: fast on any
        // engine, so binds answer synchronously to platforms (like Service
        // Catalog) that bind without accepts_incomplete.
        matches!(kind, OpKind::Bind | OpKind::Unbind) || self.engine.synchronous()
    }

    async fn provision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        self.engine
            .install(&self.installable(&ctx).await?, ctx.checkpoint)
            .await
    }

    async fn update(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        self.engine
            .upgrade(&self.installable(&ctx).await?, ctx.checkpoint)
            .await
    }

    async fn deprovision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        // Uninstalling must not depend on templates that might have changed
        // since install; only the release's identity matters.
        self.engine.uninstall(&release(&ctx, Value::Null)?).await
    }

    async fn bind(&self, ctx: BindingCtx<'_>) -> Result<Secrets, BackendError> {
        let lookups = self.read_lookups(&ctx.instance).await?;
        let Some(spec) = &chart_of(ctx.instance.plan)?.binding_users else {
            return credentials_for(&ctx, lookups, None);
        };
        let (data, ids, redact) = user_scope(&ctx);
        let user = dbusers::bind(self.users.as_ref(), spec, &data, ids, &redact).await?;
        match credentials_for(&ctx, lookups, Some(&user)) {
            Ok(c) => Ok(c),
            // Nobody would ever learn this user's password: drop it again
            // (if that fails too, unbind finds it by its derived name).
            Err(e) => Err(dbusers::undo_after_bind(self.users.as_ref(), spec, &data, ids, e).await),
        }
    }

    async fn unbind(&self, ctx: BindingCtx<'_>) -> Result<(), BackendError> {
        // Chart credentials are otherwise derived from the instance; revoking
        // them is removing the Secret, which the sink does.
        let Some(spec) = &chart_of(ctx.instance.plan)?.binding_users else {
            return Ok(());
        };
        let scope = user_scope(&ctx);
        dbusers::unbind(&self.revoking(spec, &scope, &ctx)).await
    }

    async fn unbind_with_instance(
        &self,
        ctx: BindingCtx<'_>,
    ) -> Result<Option<String>, BackendError> {
        let Some(spec) = &chart_of(ctx.instance.plan)?.binding_users else {
            return Ok(None);
        };
        let scope = user_scope(&ctx);
        dbusers::unbind_with_instance(&self.revoking(spec, &scope, &ctx)).await
    }
}

/// What `chart.binding_users` templates see, the ids and the secrets: [`user_scope`].
type UserScope<'a> = (Value, (&'a str, &'a str), Vec<String>);

/// What `chart.binding_users` templates see (the instance, like values), the
/// ids a user name derives from, and the secrets to keep out of messages.
fn user_scope<'a>(ctx: &'a BindingCtx<'_>) -> UserScope<'a> {
    (
        instance_data(&ctx.instance),
        (&ctx.instance.instance.id, &ctx.binding.id),
        ctx.instance.instance.secrets.strings(),
    )
}
