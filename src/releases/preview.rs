//! What `chartbroker render` shows for a plan: the values and the manifests
//! provisioning would produce, through the same [`render_checked`] step
//! `serve` runs, so a preview's verdict is the broker's.
//!
//! [`render_checked`]: super::pipeline::render_checked

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::chart::{Release, release_for};
use super::pipeline::{RenderError, render_checked};
use crate::broker::model::{Instance, InstanceState, Secrets};
use crate::broker::ports::{InstanceCtx, NoCheckpoint};
use crate::catalog::{Catalog, Plan, SchemaKind, Service};
use crate::charts::ChartFetcher;
use crate::helm::Helm;

/// The instance id previews render as.
const PREVIEW_ID: &str = "00000000-0000-4000-8000-000000000000";

/// A plan of a catalog, by name or id.
pub fn find<'c>(
    catalog: &'c Catalog,
    service: &str,
    plan: &str,
) -> Result<(&'c Service, &'c Plan), String> {
    let s = catalog
        .services()
        .iter()
        .find(|s| s.name == service || s.id == service)
        .ok_or_else(|| format!("no service {service:?} in the catalog"))?;
    let p = s
        .plans
        .iter()
        .find(|p| p.name == plan || p.id == plan)
        .ok_or_else(|| format!("service {} has no plan {plan:?}", s.name))?;
    Ok((s, p))
}

/// The release provisioning `plan` with `params` in `namespace` would
/// install: parameters validated and defaulted as a provision's are,
/// generated secrets freshly made. Its chart is still the catalog's source.
pub fn release(
    service: &Service,
    plan: &Plan,
    params: Map<String, Value>,
    namespace: &str,
) -> Result<Release, String> {
    let mut params = Value::Object(params);
    plan.validate_parameters(SchemaKind::InstanceCreate, &params)
        .map_err(|e| format!("invalid parameters: {e}"))?;
    plan.apply_defaults(SchemaKind::InstanceCreate, &mut params);
    let chart = plan.chart().ok_or("this plan is not backed by a chart")?;
    let mut secrets = BTreeMap::new();
    crate::broker::secrets::ensure(&chart.secrets, &mut secrets);
    let inst = Instance {
        id: PREVIEW_ID.into(),
        service_id: service.id.clone(),
        plan_id: plan.id.clone(),
        parameters: params,
        requested_parameters: None,
        context: json!({"platform": "kubernetes", "namespace": namespace}),
        organization_guid: None,
        space_guid: None,
        maintenance_version: None,
        release: crate::names::release_name(PREVIEW_ID),
        namespace: namespace.to_owned(),
        secrets: Secrets(secrets),
        dashboard_url: None,
        state: InstanceState::Provisioning,
        provision_fingerprint: String::new(),
        dependencies: Default::default(),
        teardown: None,
        operations: Vec::new(),
    };
    let ctx = InstanceCtx {
        instance: &inst,
        service,
        plan,
        progress: None,
        checkpoint: &NoCheckpoint,
        originating_identity: None,
        request_identity: None,
    };
    release_for(&ctx).map_err(|e| e.message)
}

/// Renders `release` as `serve` would: its chart fetched (into `scratch`)
/// when remote, then [`render_checked`]; the judged documents, emitted.
pub async fn manifests(
    helm: &Helm,
    plan: &Plan,
    mut release: Release,
    scratch: &Path,
) -> Result<String, RenderError> {
    let chart = plan.chart().expect("a chart plan's release");
    let fetcher = ChartFetcher::new(helm.clone(), scratch.join("charts"));
    release.chart = fetcher
        .resolve(&chart.source)
        .await
        .map_err(|e| RenderError::Chart(e.to_string()))?;
    let docs = render_checked(helm, &release).await?;
    Ok(crate::manifest::emit(&docs))
}
