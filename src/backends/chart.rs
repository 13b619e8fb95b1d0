//! Plans backed by a Helm chart. This adapter owns the catalog's templates:
//! it turns an instance into chart values and a binding into credentials, and
//! leaves installing to a [`ReleaseEngine`] (render to disk, or real helm).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::broker::model::Secrets;
use crate::broker::ports::{Backend, BackendError, BindingCtx, InstanceCtx};
use crate::catalog::{ChartBackend, Plan};
use crate::policy::Policy;
use crate::template;

/// A release to install or upgrade.
#[derive(Clone)]
pub struct Release {
    /// Helm release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Whether the broker owns the namespace (one namespace per instance).
    pub own_namespace: bool,
    /// Chart directory.
    pub chart: PathBuf,
    /// Rendered values (contain generated secrets).
    pub values: Value,
    /// Strings to redact from any message (generated secrets).
    pub redact: Vec<String>,
    /// The OSB instance id, for labels and logs.
    pub instance_id: String,
    /// What the rendered manifests may contain (the plan's `chart.policy`).
    pub policy: Policy,
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
pub trait ReleaseEngine: Send + Sync + 'static {
    /// Whether an install finishes quickly enough to answer synchronously.
    fn synchronous(&self) -> bool;
    /// Installs (or re-installs) a release; idempotent.
    async fn install(&self, release: &Release) -> Result<(), BackendError>;
    /// Upgrades a release to new values or a new chart.
    async fn upgrade(&self, release: &Release) -> Result<(), BackendError>;
    /// Removes a release; succeeds if it is already gone.
    async fn uninstall(&self, release: &Release) -> Result<(), BackendError>;
}

/// The chart [`Backend`].
pub struct ChartPlans {
    engine: Arc<dyn ReleaseEngine>,
}

impl ChartPlans {
    /// Chart plans installed by `engine`.
    pub fn new(engine: Arc<dyn ReleaseEngine>) -> Self {
        ChartPlans { engine }
    }
}

fn chart_of(plan: &Plan) -> Result<&ChartBackend, BackendError> {
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
    })
}

/// Builds the release for an instance: values rendered leaf by leaf.
pub fn release_for(ctx: &InstanceCtx<'_>) -> Result<Release, BackendError> {
    let chart = chart_of(ctx.plan)?;
    let values = template::render_tree(&chart.values, &instance_data(ctx)).map_err(|e| {
        BackendError::new(format!(
            "rendering the values of plan {}: {e}",
            ctx.plan.name
        ))
    })?;
    Ok(Release {
        name: ctx.instance.release.clone(),
        namespace: ctx.instance.namespace.clone(),
        own_namespace: chart.namespace == crate::catalog::NamespaceStrategy::Instance,
        chart: chart.path.clone(),
        values,
        redact: ctx.instance.secrets.strings(),
        instance_id: ctx.instance.id.clone(),
        policy: chart.policy.clone(),
    })
}

/// Renders a binding's credentials from the plan's template.
pub fn credentials_for(ctx: &BindingCtx<'_>) -> Result<Secrets, BackendError> {
    let chart = chart_of(ctx.instance.plan)?;
    let mut data = instance_data(&ctx.instance);
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
    fn synchronous(&self, _plan: &Plan) -> bool {
        self.engine.synchronous()
    }

    async fn provision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        self.engine.install(&release_for(&ctx)?).await
    }

    async fn update(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        self.engine.upgrade(&release_for(&ctx)?).await
    }

    async fn deprovision(&self, ctx: InstanceCtx<'_>) -> Result<(), BackendError> {
        // Uninstalling must not depend on templates that might have changed
        // since install; only the release's identity matters.
        let chart = chart_of(ctx.plan)?;
        self.engine
            .uninstall(&Release {
                name: ctx.instance.release.clone(),
                namespace: ctx.instance.namespace.clone(),
                own_namespace: chart.namespace == crate::catalog::NamespaceStrategy::Instance,
                chart: chart.path.clone(),
                values: Value::Null,
                redact: Vec::new(),
                instance_id: ctx.instance.id.clone(),
                policy: Policy::default(),
            })
            .await
    }

    async fn bind(&self, ctx: BindingCtx<'_>) -> Result<Secrets, BackendError> {
        credentials_for(&ctx)
    }

    async fn unbind(&self, _ctx: BindingCtx<'_>) -> Result<(), BackendError> {
        // Chart credentials are derived from the instance; revoking them is
        // removing the Secret, which the sink does.
        Ok(())
    }
}
