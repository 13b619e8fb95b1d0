//! Services imported from another broker's `GET /v2/catalog`, turned into the
//! model and merged with a local catalog under the same uniqueness rules.
//!
//! Only constructors live here; fetching, filtering and refreshing belong to
//! the upstream module.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::doc_fields::{osb_doc, plan_doc, service_doc};
use super::schema::{self, Validators};
use super::{Catalog, LintIssue, MaintenanceInfo, Plan, ServedBy, Service, UpstreamPlan};

service_doc! {
    /// `services[i]` of an OSB catalog document. Unknown fields are ignored:
    /// brokers may add vendor extensions.
    #[derive(Deserialize)]
    struct OsbService {}
    plans: OsbPlan
}

plan_doc! {
    #[derive(Deserialize)]
    struct OsbPlan {}
    polling: u64, maintenance: OsbMaintenanceInfo
}

#[derive(Deserialize)]
struct OsbMaintenanceInfo {
    version: String,
    description: Option<String>,
}

// === impl Service ===

impl Service {
    /// A service from one entry of another broker's `GET /v2/catalog`
    /// `services` list, every plan proxied to upstream broker `broker` under
    /// the upstream's own ids. Plan schemas are compiled here, so imported
    /// plans validate parameters like local ones. The error says what is
    /// wrong with the entry.
    pub(crate) fn from_osb(doc: &Value, broker: &str) -> Result<Service, String> {
        let s: OsbService = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        let blank = |what: &str, v: &str| {
            if v.trim().is_empty() {
                Err(format!("{what} must be a non-empty string"))
            } else {
                Ok(())
            }
        };
        blank("id", &s.id)?;
        blank("name", &s.name)?;
        if s.plans.is_empty() {
            return Err(format!("service {} has no plans", s.name));
        }
        let mut names = BTreeSet::new();
        let mut plans = Vec::with_capacity(s.plans.len());
        for p in s.plans {
            blank("plan id", &p.id)?;
            blank("plan name", &p.name)?;
            if !names.insert(p.name.clone()) {
                return Err(format!("duplicate plan name `{}`", p.name));
            }
            let mut schemas = p.schemas;
            let mut problems = Vec::new();
            let validators = match schemas.as_mut() {
                Some(v) => schema::prepare(v, &mut |path, msg| {
                    problems.push(format!("plan {}: schemas.{path}: {msg}", p.name))
                }),
                None => Validators::default(),
            };
            if !problems.is_empty() {
                return Err(problems.join("; "));
            }
            plans.push(Plan {
                served_by: ServedBy::Upstream(UpstreamPlan {
                    broker: broker.to_owned(),
                    service_id: s.id.clone(),
                    plan_id: p.id.clone(),
                }),
                id: p.id,
                name: p.name,
                description: p.description,
                free: p.free,
                bindable: p.bindable,
                plan_updateable: p.plan_updateable,
                binding_rotatable: p.binding_rotatable,
                maximum_polling_duration: p.maximum_polling_duration,
                maintenance_info: p.maintenance_info.map(|m| MaintenanceInfo {
                    version: m.version,
                    description: m.description,
                }),
                metadata: p.metadata.filter(Value::is_object),
                schemas,
                async_required: true,
                validators,
            });
        }
        Ok(Service {
            id: s.id,
            name: s.name,
            description: s.description,
            tags: s.tags,
            requires: s.requires,
            bindable: s.bindable,
            instances_retrievable: s.instances_retrievable,
            bindings_retrievable: s.bindings_retrievable,
            allow_context_updates: s.allow_context_updates,
            plan_updateable: s.plan_updateable,
            metadata: s.metadata.filter(Value::is_object),
            dashboard_client: s.dashboard_client.filter(Value::is_object),
            binding: None,
            plans,
        })
    }
}

// === impl Catalog ===

impl Catalog {
    /// This catalog plus `imported` services, each paired with where it came
    /// from (an upstream broker's name). An imported service whose id or name,
    /// or any of whose plan ids, is already taken (locally or by an earlier
    /// import) is left out and reported; the rest are served after the local
    /// services.
    pub(crate) fn with_imported(
        &self,
        imported: Vec<(String, Service)>,
    ) -> (Catalog, Vec<LintIssue>) {
        let mut service_ids: HashSet<String> = HashSet::new();
        let mut service_names: HashSet<String> = HashSet::new();
        let mut plan_ids: HashSet<String> = HashSet::new();
        for s in &self.services {
            service_ids.insert(s.id.clone());
            service_names.insert(s.name.clone());
            plan_ids.extend(s.plans.iter().map(|p| p.id.clone()));
        }
        let mut services = self.services.clone();
        let mut issues = Vec::new();
        for (origin, s) in imported {
            let mut problems = Vec::new();
            if service_ids.contains(&s.id) {
                problems.push(format!("duplicate service id `{}`", s.id));
            }
            if service_names.contains(&s.name) {
                problems.push(format!("duplicate service name `{}`", s.name));
            }
            for p in &s.plans {
                if plan_ids.contains(&p.id) {
                    problems.push(format!("duplicate plan id `{}` (plan {})", p.id, p.name));
                }
            }
            if !problems.is_empty() {
                issues.extend(problems.into_iter().map(|message| LintIssue {
                    file: PathBuf::from(format!("upstream {origin}")),
                    path: format!("services[{}]", s.name),
                    message: format!("{message}; the imported service is left out"),
                }));
                continue;
            }
            service_ids.insert(s.id.clone());
            service_names.insert(s.name.clone());
            plan_ids.extend(s.plans.iter().map(|p| p.id.clone()));
            services.push(s);
        }
        (Catalog::new(services, self.upstreams.clone()), issues)
    }
}
