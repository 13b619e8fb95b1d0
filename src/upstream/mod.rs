//! Upstream brokers: plans proxied to other OSB brokers, and catalogs
//! imported from them. This module owns every conversation with another
//! broker; the core sees only the [`Backend`] port.
//!
//! # Layout
//!
//! ```text
//!  catalog `upstreams:` ──> config.rs   typed settings (url, auth from env/file,
//!                                       TLS, timeouts, polling, import)
//!                           client.rs   the OSB HTTP client, UpstreamError
//!                           guids.rs    organization/space guids for Kubernetes platforms
//!  core (Backend port) ──> backend.rs   provision/update/deprovision/bind/unbind,
//!                                       polling, orphan mitigation, checkpoints
//!  runtime / lint ───────> aggregate.rs catalog import, merge, refresh
//! ```
//!
//! [`Upstreams`] is what the runtime wires: the backend for upstream plans,
//! the merged catalog at startup and the refresh task. [`lint`] is what
//! `chartbroker catalog lint` adds for upstreams.

pub(crate) mod aggregate;
pub(crate) mod backend;
pub mod client;
pub mod config;
pub(crate) mod guids;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::broker::Broker;
use crate::broker::ports::Backend;
use crate::catalog::{Catalog, LintIssue};
use aggregate::{Aggregator, RefreshTask};
use backend::UpstreamPlans;
use client::Client;
use config::UpstreamConfig;

/// Longest wait for upstream catalogs at startup; past it the broker starts
/// with the last good imports.
const STARTUP_BUDGET: Duration = Duration::from_secs(10);
/// Longest wait for one upstream during `catalog lint`.
const LINT_TIMEOUT: Duration = Duration::from_secs(10);

/// The upstream brokers of a catalog, wired for the runtime.
pub(crate) struct Upstreams {
    /// The `upstreams:` settings the clients were built from.
    configured: Vec<crate::catalog::Upstream>,
    plans: Arc<UpstreamPlans>,
    aggregator: Arc<Aggregator>,
    /// Each configured broker's client, or why it is not usable (the
    /// dashboard's health page probes them).
    brokers: Vec<(String, Result<Arc<Client>, String>)>,
}

impl Upstreams {
    /// Parses every `upstreams:` entry and builds its client; `None` when the
    /// catalog declares none. An entry that cannot be used is logged and its
    /// plans fail with the reason; it never stops the broker. Relative paths
    /// resolve against `catalog_dir`; imported catalogs are cached under
    /// `<data_dir>/upstream/`.
    pub(crate) fn new(
        catalog: &Catalog,
        catalog_dir: &Path,
        data_dir: &Path,
        observer: Option<client::UpstreamObserver>,
    ) -> Option<Upstreams> {
        if catalog.upstreams().is_empty() {
            return None;
        }
        let mut brokers = HashMap::new();
        let mut clients = Vec::new();
        let mut listed = Vec::new();
        for u in catalog.upstreams() {
            let built = UpstreamConfig::parse(u, catalog_dir)
                .map_err(|problems| problems.join("; "))
                .and_then(Client::new)
                .map(|c| Arc::new(c.with_observer(observer.clone())));
            match &built {
                Ok(c) => {
                    tracing::info!(upstream = %u.name, url = %c.config().url,
                        import = c.config().import.is_some(), "upstream broker configured");
                    if c.config().credentials_in_clear() {
                        tracing::warn!(upstream = %u.name, url = %c.config().url,
                            "credentials go to this upstream over plain HTTP (allow_insecure_http: true)");
                    }
                    clients.push(c.clone());
                }
                Err(why) => tracing::error!(upstream = %u.name, error = %why,
                    "upstream broker is not usable; its plans will fail until the catalog is fixed"),
            }
            listed.push((u.name.clone(), built.clone()));
            brokers.insert(u.name.clone(), built);
        }
        Some(Upstreams {
            brokers: listed,
            configured: catalog.upstreams().to_vec(),
            plans: Arc::new(UpstreamPlans::new(brokers)),
            aggregator: Arc::new(Aggregator::new(
                catalog.clone(),
                clients,
                Some(data_dir.join("upstream")),
            )),
        })
    }

    /// Each configured upstream broker by name: its client, or why it is
    /// not usable.
    pub fn brokers(&self) -> &[(String, Result<Arc<Client>, String>)] {
        &self.brokers
    }

    /// The backend for plans with `upstream:`.
    pub(crate) fn backend(&self) -> Arc<dyn Backend> {
        self.plans.clone()
    }

    /// The catalog to serve at startup: the local one plus imports fetched
    /// now (or the cached last good ones when an upstream does not answer
    /// quickly), so operations on imported plans resume after a restart.
    pub(crate) async fn initial_catalog(&self, local: Catalog) -> Catalog {
        if self.aggregator.is_empty() {
            return local;
        }
        self.aggregator.build(Some(STARTUP_BUDGET)).await.0
    }

    /// Serves `local` (a reloaded catalog) in `broker` with the last good
    /// imports merged in. Upstream settings (`upstreams:`) stay as they were
    /// at startup: their clients are built once.
    pub(crate) fn reload(&self, local: Catalog, broker: &Broker) {
        if local.upstreams() != self.configured.as_slice() {
            tracing::warn!(
                "the catalog's upstreams: settings changed; they take effect at the next restart"
            );
        }
        if self.aggregator.is_empty() {
            broker.set_catalog(local);
        } else {
            self.aggregator.rebase(local, broker);
        }
    }

    /// Starts refreshing imported catalogs into `broker`; `None` when
    /// nothing is imported. Dropping the guard stops it.
    pub(crate) fn spawn_refresh(&self, broker: &Broker) -> Option<RefreshTask> {
        self.aggregator.clone().spawn_refresh(broker)
    }
}

/// One finding of [`lint`].
#[derive(Debug, Clone)]
pub struct Finding {
    /// What and where.
    pub issue: LintIssue,
    /// A warning (e.g. an unreachable upstream) does not make the catalog
    /// invalid.
    pub warning: bool,
}

/// The catalog's plans proxied to upstream broker `broker`, as
/// `service/plan` with their mapping.
fn plans_of<'c>(
    catalog: &'c Catalog,
    broker: &str,
) -> Vec<(String, &'c crate::catalog::UpstreamPlan)> {
    catalog
        .services()
        .iter()
        .flat_map(|s| s.plans.iter().map(move |p| (s, p)))
        .filter_map(|(s, p)| {
            p.upstream()
                .filter(|up| up.broker == broker)
                .map(|up| (format!("{}/{}", s.name, p.name), up))
        })
        .collect()
}

/// Whether the upstream's catalog (`docs`) offers the mapped plan.
fn offers(docs: &[Value], up: &crate::catalog::UpstreamPlan) -> bool {
    docs.iter().any(|s| {
        s.get("id").and_then(Value::as_str) == Some(up.service_id.as_str())
            && s.get("plans").and_then(Value::as_array).is_some_and(|ps| {
                ps.iter()
                    .any(|p| p.get("id").and_then(Value::as_str) == Some(up.plan_id.as_str()))
            })
    })
}

/// Checks the `upstreams:` entries of a loaded catalog: settings (errors),
/// reachability (warnings), that explicitly mapped upstream plans exist
/// upstream, and that imports do not conflict with local ids or names.
pub async fn lint(catalog: &Catalog, catalog_dir: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = |name: &str| LintIssue {
        file: catalog_dir.to_path_buf(),
        path: format!("upstreams[{name}]"),
        message: String::new(),
    };
    let mut imported = Vec::new();
    for u in catalog.upstreams() {
        let issue = |message: String| LintIssue {
            message,
            ..at(&u.name)
        };
        let cfg = match UpstreamConfig::parse(u, catalog_dir) {
            Ok(c) => c,
            Err(problems) => {
                out.extend(problems.into_iter().map(|p| Finding {
                    issue: issue(p),
                    warning: false,
                }));
                continue;
            }
        };
        let mapped = plans_of(catalog, &u.name);
        if mapped.is_empty() && cfg.import.is_none() {
            continue;
        }
        let import = cfg.import.clone();
        let client = match Client::new(UpstreamConfig {
            timeout: cfg.timeout.min(LINT_TIMEOUT),
            ..cfg
        }) {
            Ok(c) => c,
            Err(why) => {
                out.push(Finding {
                    issue: issue(why),
                    warning: false,
                });
                continue;
            }
        };
        let docs = aggregate::fetch_all(&client).await;
        let docs = match docs {
            Ok(d) => d,
            Err(why) => {
                out.push(Finding {
                    issue: issue(format!("cannot check the upstream broker: {why}")),
                    warning: true,
                });
                continue;
            }
        };
        for (plan, up) in mapped {
            if !offers(&docs, up) {
                out.push(Finding {
                    issue: issue(format!(
                        "plan {plan} maps to service_id {:?} / plan_id {:?}, which upstream broker {} does not offer",
                        up.service_id, up.plan_id, u.name
                    )),
                    warning: false,
                });
            }
        }
        if let Some(import) = import {
            let selected = aggregate::select(&import, docs);
            let (services, problems) = aggregate::convert(&u.name, &import, &selected);
            out.extend(problems.into_iter().map(|issue| Finding {
                issue,
                warning: false,
            }));
            imported.extend(services.into_iter().map(|s| (u.name.clone(), s)));
        }
    }
    let (_, conflicts) = catalog.with_imported(imported);
    out.extend(conflicts.into_iter().map(|issue| Finding {
        issue,
        warning: false,
    }));
    out
}
