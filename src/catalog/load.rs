//! Reading catalog files and turning them into the model.
//!
//! The document types mirror the YAML exactly and reject unknown keys (a
//! typo like `bindabel` must not silently fall back to a default); only
//! `metadata`, `schemas`, `values`, `credentials` and `dashboard_client` are
//! free-form. Conversion to the model runs the lint rules along the way.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::doc_fields::{osb_doc, plan_doc, service_doc};
use super::lint::{Lint, Scope, Tree, join};
use super::schema::{self, SchemaKind, Validators};
use super::{
    Catalog, CatalogError, ChartPlan, ChartSource, Dependency, LintIssue, Lookup, MaintenanceInfo,
    NamespaceStrategy, Plan, RemoteChart, SecretSpec, ServedBy, Service, Upstream, UpstreamPlan,
};

mod chart;
use chart::*;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    services: Vec<ServiceDoc>,
    #[serde(default)]
    upstreams: Vec<Value>,
}

service_doc! {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ServiceDoc {
        binding: Option<super::BindingType>,
    }
    plans: PlanDoc
}

plan_doc! {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct PlanDoc {
        #[serde(default)]
        async_required: bool,
        chart: Option<ChartDoc>,
        upstream: Option<UpstreamPlan>,
    }
    polling: crate::duration::Secs, maintenance: MaintenanceInfo
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChartDoc {
    /// Exactly one of `path`, `repository` (with `name`) and `oci`.
    path: Option<PathBuf>,
    repository: Option<String>,
    name: Option<String>,
    oci: Option<String>,
    version: Option<String>,
    digest: Option<String>,
    #[serde(default)]
    verify: bool,
    keyring: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    auth: Option<super::AuthDoc>,
    #[serde(default)]
    namespace: NamespaceStrategy,
    values: Option<Value>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretSpec>,
    credentials: Option<Value>,
    #[serde(default)]
    policy: crate::policy::Policy,
    #[serde(default)]
    lookups: BTreeMap<String, Lookup>,
    #[serde(default)]
    uses: BTreeMap<String, Dependency>,
    #[serde(default)]
    binding_namespaces: Vec<String>,
    #[serde(default)]
    wait: bool,
    #[serde(default)]
    delete_pvcs: bool,
    #[serde(default)]
    limits: super::ChartLimits,
    binding_users: Option<super::BindingUsers>,
}

/// Lints the catalog in `catalog_dir` against `charts_dir` without loading
/// it; an empty result means [`Catalog::load`] would succeed.
pub fn lint(catalog_dir: &Path, charts_dir: &Path) -> Vec<LintIssue> {
    match read_dir(catalog_dir) {
        Ok(sources) => build(sources, charts_dir).1,
        Err(issue) => vec![issue],
    }
}

pub(super) fn load_dir(catalog_dir: &Path, charts_dir: &Path) -> Result<Catalog, CatalogError> {
    let sources = read_dir(catalog_dir).map_err(|i| CatalogError::Invalid(vec![i]))?;
    load_sources(sources, charts_dir)
}

pub(super) fn load_sources(
    sources: Vec<(PathBuf, io::Result<String>)>,
    charts_dir: &Path,
) -> Result<Catalog, CatalogError> {
    let (catalog, issues) = build(sources, charts_dir);
    if issues.is_empty() {
        Ok(catalog)
    } else {
        Err(CatalogError::Invalid(issues))
    }
}

/// Catalog files sorted by name, so load order (and thus service order in
/// `/v2/catalog`) is stable across machines.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, io::Result<String>)>, LintIssue> {
    let dir_issue = |message: String| LintIssue {
        file: dir.to_path_buf(),
        path: String::new(),
        message,
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| dir_issue(format!("cannot read catalog directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(dir_issue("no *.yaml or *.yml catalog files".into()));
    }
    Ok(files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f);
            (f, text)
        })
        .collect())
}

fn build(
    sources: Vec<(PathBuf, io::Result<String>)>,
    charts_dir: &Path,
) -> (Catalog, Vec<LintIssue>) {
    let mut lint = Lint::default();
    let mut services = Vec::new();
    let mut upstreams = Vec::new();
    for (file, text) in sources {
        lint.set_file(&file);
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                lint.issue("", format!("cannot read: {e}"));
                continue;
            }
        };
        let Some(doc) = parse(&text, &mut lint) else {
            continue;
        };
        for (i, entry) in doc.upstreams.into_iter().enumerate() {
            upstreams.extend(build_upstream(entry, &format!("upstreams[{i}]"), &mut lint));
        }
        for (i, svc) in doc.services.into_iter().enumerate() {
            services.push(build_service(
                svc,
                &format!("services[{i}]"),
                &mut lint,
                charts_dir,
            ));
        }
    }
    (Catalog::new(services, upstreams), lint.finish())
}

fn parse(text: &str, lint: &mut Lint) -> Option<FileDoc> {
    // A file holding only comments is an empty catalog, not an error.
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Some(FileDoc::default());
    }
    match serde_saphyr::from_str::<FileDoc>(text) {
        Ok(doc) => Some(doc),
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!("line {}, column {}", l.line(), l.column()))
                .unwrap_or_default();
            let message = e.without_snippet().to_string();
            // The location goes in the issue's path; don't say it twice.
            let message = message
                .strip_suffix(&format!(" at {at}"))
                .map_or(message.clone(), str::to_owned);
            lint.issue(at, message);
            None
        }
    }
}

fn build_upstream(entry: Value, path: &str, lint: &mut Lint) -> Option<Upstream> {
    let Value::Object(mut settings) = entry else {
        lint.issue(path, "must be a mapping with a `name`");
        return None;
    };
    let name = match settings.remove("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name,
        _ => {
            lint.issue(join(path, "name"), "must be a non-empty string");
            return None;
        }
    };
    lint.upstream_name(&join(path, "name"), &name);
    Some(Upstream { name, settings })
}

fn build_service(doc: ServiceDoc, path: &str, lint: &mut Lint, charts_dir: &Path) -> Service {
    lint.non_empty(path, "id", &doc.id);
    lint.name(path, &doc.name);
    lint.non_empty(path, "description", &doc.description);
    lint.unique("", "service id", &doc.id, &join(path, "id"));
    lint.unique("", "service name", &doc.name, &join(path, "name"));
    lint.service_name(&doc.name);
    lint.requires(path, &doc.requires);
    lint.object(path, "metadata", doc.metadata.as_ref());
    lint.object(path, "dashboard_client", doc.dashboard_client.as_ref());
    if let Some(b) = &doc.binding {
        lint.binding_type(&join(path, "binding"), b);
    }
    if doc.plans.is_empty() {
        lint.issue(join(path, "plans"), "a service needs at least one plan");
    }
    let plans = doc
        .plans
        .into_iter()
        .enumerate()
        .filter_map(|(j, plan)| {
            let plan_path = format!("{path}.plans[{j}]");
            lint.unique(path, "plan name", &plan.name, &join(&plan_path, "name"));
            let plan = build_plan(plan, &plan_path, doc.bindable, lint, charts_dir)?;
            if let (Some(b), Some(chart)) = (&doc.binding, plan.chart()) {
                lint.binding_entries(&plan_path, &chart.credentials, b);
            }
            Some(plan)
        })
        .collect();
    Service {
        id: doc.id,
        name: doc.name,
        description: doc.description,
        tags: doc.tags,
        requires: doc.requires,
        bindable: doc.bindable,
        instances_retrievable: doc.instances_retrievable,
        bindings_retrievable: doc.bindings_retrievable,
        allow_context_updates: doc.allow_context_updates,
        plan_updateable: doc.plan_updateable,
        metadata: doc.metadata,
        dashboard_client: doc.dashboard_client,
        binding: doc.binding,
        plans,
    }
}

fn build_plan(
    doc: PlanDoc,
    path: &str,
    service_bindable: bool,
    lint: &mut Lint,
    charts_dir: &Path,
) -> Option<Plan> {
    lint.non_empty(path, "id", &doc.id);
    lint.name(path, &doc.name);
    lint.non_empty(path, "description", &doc.description);
    lint.unique("", "plan id", &doc.id, &join(path, "id"));
    lint.object(path, "metadata", doc.metadata.as_ref());
    if let Some(mi) = &doc.maintenance_info {
        lint.maintenance_version(path, &mi.version);
    }
    // OSB sends whole seconds; a fraction would be silently cut.
    let maximum_polling_duration = doc.maximum_polling_duration.map(|d| {
        if d.0.subsec_nanos() != 0 {
            lint.issue(
                join(path, "maximum_polling_duration"),
                format!(
                    "{} is not whole seconds (OSB sends an integer)",
                    crate::duration::format(d.0)
                ),
            );
        }
        d.0.as_secs()
    });
    let mut schemas = doc.schemas;
    let validators = match schemas.as_mut() {
        Some(s) => {
            let at = join(path, "schemas");
            schema::prepare(s, &mut |rel, msg| lint.issue(join(&at, &rel), msg))
        }
        None => Validators::default(),
    };
    let bindable = doc.bindable.unwrap_or(service_bindable);
    let served_by = match (doc.chart, doc.upstream) {
        (Some(chart), None) => ServedBy::Chart(Box::new(build_chart(
            chart,
            path,
            bindable,
            schemas.as_ref(),
            lint,
            charts_dir,
        ))),
        (None, Some(upstream)) => {
            lint.upstream_ref(join(path, "upstream.broker"), &upstream.broker);
            ServedBy::Upstream(upstream)
        }
        (Some(_), Some(_)) => {
            lint.issue(path, "a plan has either `chart:` or `upstream:`, not both");
            return None;
        }
        (None, None) => {
            lint.issue(path, "a plan needs a `chart:` or an `upstream:` backend");
            return None;
        }
    };
    Some(Plan {
        id: doc.id,
        name: doc.name,
        description: doc.description,
        free: doc.free,
        bindable: doc.bindable,
        plan_updateable: doc.plan_updateable,
        binding_rotatable: doc.binding_rotatable,
        maximum_polling_duration,
        maintenance_info: doc.maintenance_info,
        metadata: doc.metadata,
        schemas,
        async_required: doc.async_required,
        served_by,
        validators,
    })
}
