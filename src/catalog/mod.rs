//! The service catalog: what the broker offers and how each plan is backed.
//!
//! Admins write `catalog/*.yaml` (format: `docs/catalog-format.md`). Loading
//! parses every file, lints the whole set and refuses to start with a list of
//! every problem found, so a broker never serves a half-valid catalog. A
//! loaded [`Catalog`] is immutable; reloading means loading a new one.
//!
//! # Layout
//!
//! - `mod.rs`: the model ([`Catalog`], [`Service`], [`Plan`], backends) and
//!   lookups; `chart_plan.rs`: a chart plan's settings (source, limits,
//!   lookups, dependencies, secrets).
//! - `load.rs`: the YAML document types, file discovery, turning documents
//!   into the model (`load/chart.rs`: a plan's `chart:` section).
//! - `lint.rs`: every rule that makes a catalog invalid, reported as
//!   [`LintIssue`]s with file and path (`lint/charts.rs`: chart sources;
//!   `lint/variables.rs`: template variables).
//! - `schema.rs`: plan parameter schemas: compiled validators, defaults.
//! - `osb.rs`: the `GET /v2/catalog` body, cached at load.
//! - `import.rs`: services imported from an upstream broker's catalog and
//!   merged with the local ones.

mod binding_users;
mod chart_auth;
pub(crate) mod chart_files;
mod chart_plan;
mod doc_fields;
mod import;
mod lint;
mod load;
mod osb;
mod retired;
mod schema;
mod suggest;
mod violations;
pub use chart_plan::*;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub(crate) use binding_users::{BindingUsers, DbEngine};
pub(crate) use chart_auth::{AuthDoc, ChartAuth};
pub use retired::Teardown;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::HeaderValue;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

pub use lint::policy_report;
pub use load::lint;
pub(crate) use schema::SchemaKind;

use crate::api_version::ApiVersion;
use schema::Validators;

/// What a chart may render by default (`helm template` stdout): far above
/// any real chart, far below what would hurt the broker.
pub const DEFAULT_MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

/// A linted, loaded catalog. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Catalog {
    services: Vec<Service>,
    upstreams: Vec<Upstream>,
    /// The `GET /v2/catalog` body and its ETag per [`ApiVersion::ALL`],
    /// which a response shares without copying, allocating or validating.
    osb_bodies: Arc<[(Bytes, HeaderValue)]>,
}

/// An OSB service offering.
#[derive(Debug, Clone)]
pub struct Service {
    /// OSB service id; unique across the catalog.
    pub id: String,
    /// OSB name; unique across the catalog.
    pub name: String,
    /// Short description shown by platforms.
    pub(crate) description: String,
    /// Classification tags (`mysql`, `relational`).
    pub(crate) tags: Vec<String>,
    /// Permissions: `syslog_drain`, `route_forwarding`, `volume_mount`.
    pub(crate) requires: Vec<String>,
    /// Default bindability for plans that do not override it.
    pub(crate) bindable: bool,
    /// Whether `GET /v2/service_instances/:id` is supported.
    pub(crate) instances_retrievable: bool,
    /// Whether `GET .../service_bindings/:id` is supported.
    pub(crate) bindings_retrievable: bool,
    /// Whether platforms may send context-only updates.
    pub(crate) allow_context_updates: bool,
    /// Default plan-change support for plans that do not override it.
    pub(crate) plan_updateable: bool,
    /// Opaque metadata passed through to platforms.
    pub(crate) metadata: Option<Value>,
    /// Cloud Foundry dashboard SSO client, passed through.
    pub(crate) dashboard_client: Option<Value>,
    /// How binding Secrets name their kind for Service Binding for
    /// Kubernetes readers (`binding:`); `None` keeps them `Opaque`.
    pub(crate) binding: Option<BindingType>,
    /// At least one plan.
    pub plans: Vec<Plan>,
}

/// The Service Binding for Kubernetes classification of a service's binding
/// Secrets (servicebinding.io spec, "Provisioned Service"): the Secret gets
/// `type: servicebinding.io/<type>` and the entries `type` and `provider`,
/// so workloads and binding libraries recognise it without configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingType {
    /// Abstract classification (`mysql`, `postgresql`, `redis`).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Who provides the binding; the spec recommends the entry.
    #[serde(default = "default_provider")]
    pub(crate) provider: String,
}

fn default_provider() -> String {
    "chartbroker".to_owned()
}

impl BindingType {
    /// The Secret `type` the spec asks for.
    pub(crate) fn secret_type(&self) -> String {
        format!("servicebinding.io/{}", self.kind)
    }
}

/// The Kubernetes Secret `type` of a binding Secret of `service`.
pub(crate) fn binding_secret_type(service: &Service) -> String {
    service
        .binding
        .as_ref()
        .map_or_else(|| "Opaque".to_owned(), BindingType::secret_type)
}

/// An OSB service plan plus the broker-only backend that fulfils it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// OSB plan id; unique across the catalog.
    pub id: String,
    /// OSB name; unique within its service.
    pub name: String,
    /// Short description shown by platforms.
    pub(crate) description: String,
    /// Whether the plan is free (OSB default: true).
    pub(crate) free: Option<bool>,
    /// Overrides [`Service::bindable`] when set.
    pub(crate) bindable: Option<bool>,
    /// Overrides [`Service::plan_updateable`] when set.
    pub(crate) plan_updateable: Option<bool>,
    /// Whether bindings support rotation (`predecessor_binding_id`).
    pub(crate) binding_rotatable: bool,
    /// Seconds a platform should keep polling an operation.
    pub(crate) maximum_polling_duration: Option<u64>,
    /// Maintenance version offered to platforms.
    pub(crate) maintenance_info: Option<MaintenanceInfo>,
    /// Opaque metadata passed through to platforms.
    pub(crate) metadata: Option<Value>,
    /// The OSB `schemas` object, with `$schema` filled in where absent.
    pub(crate) schemas: Option<Value>,
    /// Broker-only: refuse requests without `accepts_incomplete=true`
    /// (422 `AsyncRequired`).
    pub(crate) async_required: bool,
    /// Broker-only: what provisions instances of this plan.
    pub(crate) served_by: ServedBy,
    validators: Validators,
}

/// OSB maintenance info; `version` is semver 2.0.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaintenanceInfo {
    /// Semantic version of what the plan currently deploys.
    pub(crate) version: String,
    /// What changes with this version.
    pub(crate) description: Option<String>,
}

/// What provisions instances of a plan.
#[derive(Debug, Clone)]
pub(crate) enum ServedBy {
    /// A Helm release of a chart (boxed: it is much larger than the other
    /// variant).
    Chart(Box<ChartPlan>),
    /// Requests proxied to another OSB broker.
    Upstream(UpstreamPlan),
}

/// A plan proxied to an upstream broker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamPlan {
    /// Name of an entry in the catalog's `upstreams:` list.
    pub(crate) broker: String,
    /// The upstream broker's service id.
    pub(crate) service_id: String,
    /// The upstream broker's plan id.
    pub(crate) plan_id: String,
}

/// An upstream broker declared under `upstreams:`. Only `name` is
/// interpreted here; the upstream client reads the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Name that plans refer to in `upstream.broker`.
    pub name: String,
    /// Every other key of the entry, as written.
    pub settings: Map<String, Value>,
}

/// One problem found in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintIssue {
    /// The catalog file (or directory) at fault.
    pub(crate) file: PathBuf,
    /// Where in the file, e.g. `services[0].plans[1].chart.values.auth.rootPassword`,
    /// or `line 3, column 7` for YAML errors; empty for whole-file problems.
    pub(crate) path: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl fmt::Display for LintIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.path,
                self.message
            )
        }
    }
}

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Lint found problems; every one is listed.
    #[error("invalid catalog ({} problem(s)):\n{}", .0.len(), DisplayIssues(.0))]
    Invalid(Vec<LintIssue>),
}

struct DisplayIssues<'a>(&'a [LintIssue]);

impl fmt::Display for DisplayIssues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {issue}")?;
        }
        Ok(())
    }
}

// === impl Catalog ===

impl Catalog {
    /// Loads every `*.yaml`/`*.yml` file of `catalog_dir` (sorted by name),
    /// resolving chart paths against `charts_dir`. Fails with all lint issues
    /// if there is any.
    pub fn load(catalog_dir: &Path, charts_dir: &Path) -> Result<Catalog, CatalogError> {
        load::load_dir(catalog_dir, charts_dir)
    }

    /// Builds a catalog from one YAML document; `name` labels lint issues.
    /// Meant for tests and embedding.
    pub fn from_yaml(name: &Path, yaml: &str, charts_dir: &Path) -> Result<Catalog, CatalogError> {
        load::load_sources(vec![(name.to_path_buf(), Ok(yaml.to_owned()))], charts_dir)
    }

    fn new(services: Vec<Service>, upstreams: Vec<Upstream>) -> Catalog {
        let osb_bodies = ApiVersion::ALL
            .iter()
            .map(|&v| {
                let body = osb::body(&services, v);
                let etag = osb::etag(&body);
                let etag = HeaderValue::from_maybe_shared(Bytes::from(etag))
                    .expect("an ETag is a valid header value");
                (Bytes::from(body), etag)
            })
            .collect();
        Catalog {
            services,
            upstreams,
            osb_bodies,
        }
    }

    /// All services, in file order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Upstream brokers declared under `upstreams:`.
    pub(crate) fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    /// The upstream broker named `name`.
    #[cfg(test)]
    pub(crate) fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// The service with OSB id `id`.
    pub(crate) fn find_service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The plan `plan_id` of service `service_id`; `None` if either is
    /// unknown or the plan belongs to another service.
    pub(crate) fn find_plan(&self, service_id: &str, plan_id: &str) -> Option<(&Service, &Plan)> {
        let service = self.find_service(service_id)?;
        let plan = service.plans.iter().find(|p| p.id == plan_id)?;
        Some((service, plan))
    }

    /// The plan with id `plan_id`, in whichever service holds it.
    #[cfg(test)]
    pub(crate) fn plan_by_id(&self, plan_id: &str) -> Option<(&Service, &Plan)> {
        self.services
            .iter()
            .find_map(|s| s.plans.iter().find(|p| p.id == plan_id).map(|p| (s, p)))
    }

    /// The `GET /v2/catalog` body (latest API version) as a JSON value.
    #[cfg(test)]
    pub(crate) fn osb_json(&self) -> Value {
        serde_json::from_slice(&self.osb_body()).expect("catalog body is JSON we serialized")
    }

    /// The latest API version's `GET /v2/catalog` body.
    #[cfg(test)]
    pub(crate) fn osb_body(&self) -> Bytes {
        self.osb_body_for(ApiVersion::LATEST)
    }

    /// The `GET /v2/catalog` body for platforms speaking `v`, serialized
    /// once at load; a clone shares the bytes.
    pub(crate) fn osb_body_for(&self, v: ApiVersion) -> Bytes {
        self.osb_bodies[v.index()].0.clone()
    }

    /// A strong ETag (quoted SHA-256 prefix) of the latest body.
    pub(crate) fn etag(&self) -> &str {
        self.etag_for(ApiVersion::LATEST)
    }

    /// A strong ETag of [`Catalog::osb_body_for`] `v`: versions differ in
    /// their bytes, so in their tags too.
    pub(crate) fn etag_for(&self, v: ApiVersion) -> &str {
        std::str::from_utf8(self.osb_bodies[v.index()].1.as_bytes()).expect("an ETag is ASCII")
    }

    /// [`Catalog::etag_for`] as a header value that shares its bytes.
    pub(crate) fn etag_header_for(&self, v: ApiVersion) -> HeaderValue {
        self.osb_bodies[v.index()].1.clone()
    }
}

// === impl Plan ===

impl Plan {
    /// Whether instances of this plan can be bound, with the plan's value
    /// taking precedence over the service's.
    pub(crate) fn is_bindable(&self, service: &Service) -> bool {
        self.bindable.unwrap_or(service.bindable)
    }

    /// Whether instances can move to another plan, with the plan's value
    /// taking precedence over the service's.
    pub(crate) fn is_updateable(&self, service: &Service) -> bool {
        self.plan_updateable.unwrap_or(service.plan_updateable)
    }

    /// The chart backend, if this plan is a Helm release.
    pub fn chart(&self) -> Option<&ChartPlan> {
        match &self.served_by {
            ServedBy::Chart(c) => Some(c.as_ref()),
            ServedBy::Upstream(_) => None,
        }
    }

    /// The upstream backend, if this plan is proxied.
    pub(crate) fn upstream(&self) -> Option<&UpstreamPlan> {
        match &self.served_by {
            ServedBy::Upstream(u) => Some(u),
            ServedBy::Chart(_) => None,
        }
    }

    /// Checks `params` (the request's `parameters`; `null` means none) against
    /// the plan's schema for `kind`. Without a schema any object passes. The
    /// error names each failing field, its schema description and the rule
    /// in words, e.g. `parameters.replicas: "Number of replicas" must be at
    /// most 5 (got 9)`; several are joined with `; `.
    pub(crate) fn validate_parameters(
        &self,
        kind: SchemaKind,
        params: &Value,
    ) -> Result<(), String> {
        self.validators.validate(kind, params)
    }

    /// Fills in top-level `properties.*.default` values of the schema for
    /// `kind` that `params` lacks; `null` params become an object when there
    /// is any default.
    pub(crate) fn apply_defaults(&self, kind: SchemaKind, params: &mut Value) {
        schema::apply_defaults(self.schemas.as_ref(), kind, params);
    }
}
