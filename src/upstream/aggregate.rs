//! Catalog aggregation: upstream services served as our own.
//!
//! Each upstream with `import:` is asked for its catalog; the selected
//! services (by name, id or tag) become local services whose plans proxy to
//! it, with ids and names prefixed when configured, and are merged after the
//! local services. A conflicting import is left out and reported; an
//! unreachable upstream keeps its last good import (in memory, and in
//! `<data-dir>/upstream/<name>.catalog.json` across restarts), so the broker
//! never loses plans whose instances it still manages because a peer is down.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::client::{Client, UpstreamError};
use super::config::Import;
use crate::broker::Broker;
use crate::catalog::{Catalog, LintIssue, Service};

/// Imports upstream catalogs into a local one.
pub(crate) struct Aggregator {
    /// Replaced by reloads ([`Aggregator::rebase`]).
    local: RwLock<Catalog>,
    /// Held while a merged catalog is built and handed to the broker, so a
    /// refresh and a reload can't overtake each other with stale locals.
    swap: Mutex<()>,
    sources: Vec<Arc<Client>>,
    cache_dir: Option<PathBuf>,
    last_good: Mutex<HashMap<String, Vec<Value>>>,
}

impl Aggregator {
    /// Imports from every client whose config has `import:` into `local`;
    /// `cache_dir` keeps the last good imports across restarts.
    pub(crate) fn new(
        local: Catalog,
        clients: Vec<Arc<Client>>,
        cache_dir: Option<PathBuf>,
    ) -> Self {
        Aggregator {
            local: RwLock::new(local),
            swap: Mutex::new(()),
            sources: clients
                .into_iter()
                .filter(|c| c.config().import.is_some())
                .collect(),
            cache_dir,
            last_good: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any upstream is imported.
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The shortest refresh interval among the imported upstreams.
    pub(crate) fn refresh_interval(&self) -> Option<Duration> {
        self.sources.iter().map(|c| c.config().refresh).min()
    }

    /// Fetches every imported upstream (each bounded by `budget` when given)
    /// and merges the results with the local catalog. Problems are logged
    /// and returned; they never fail the build.
    pub(crate) async fn build(&self, budget: Option<Duration>) -> (Catalog, Vec<LintIssue>) {
        self.fetch_into_cache(budget).await;
        let local = self.local();
        self.merge(&local)
    }

    /// The local catalog imports are merged into.
    fn local(&self) -> Catalog {
        self.local.read().expect("local catalog lock").clone()
    }

    /// Asks every imported upstream for its catalog and remembers each good
    /// answer; failures are logged, and the last good import stays.
    async fn fetch_into_cache(&self, budget: Option<Duration>) {
        let fetches = self.sources.iter().map(|c| async move {
            let res = match budget {
                Some(b) => tokio::time::timeout(b, fetch(c)).await.unwrap_or_else(|_| {
                    Err(UpstreamError::Timeout {
                        broker: c.name().to_owned(),
                        after: b,
                    }
                    .to_string())
                }),
                None => fetch(c).await,
            };
            (c.clone(), res)
        });
        for (client, res) in futures::future::join_all(fetches).await {
            let name = client.name();
            match res {
                Ok(docs) => self.remember(name, &docs),
                Err(why) if self.recall(name).is_some() => {
                    tracing::warn!(upstream = %name, error = %why,
                        "cannot refresh the upstream catalog; keeping the last good import");
                }
                Err(why) => {
                    tracing::warn!(upstream = %name, error = %why,
                        "cannot import the upstream catalog; its services are not offered until it answers");
                }
            }
        }
    }

    /// `local` with the last good import of every upstream merged in.
    fn merge(&self, local: &Catalog) -> (Catalog, Vec<LintIssue>) {
        let mut imported = Vec::new();
        let mut issues = Vec::new();
        for client in &self.sources {
            let name = client.name().to_owned();
            let Some(docs) = self.recall(&name) else {
                continue;
            };
            let import = client.config().import.clone().unwrap_or_default();
            let (services, problems) = convert(&name, &import, &docs);
            issues.extend(problems);
            imported.extend(services.into_iter().map(|s| (name.clone(), s)));
        }
        let (catalog, conflicts) = local.with_imported(imported);
        issues.extend(conflicts);
        for i in &issues {
            tracing::warn!(issue = %i, "upstream catalog import problem");
        }
        (catalog, issues)
    }

    /// Makes `local` the catalog imports are merged into (a reloaded
    /// catalog) and gives `broker` it merged with the last good imports,
    /// without asking the upstreams again: a reload neither waits for them
    /// nor loses their plans when they are down.
    pub(crate) fn rebase(&self, local: Catalog, broker: &Broker) {
        let _swap = self.swap.lock().expect("swap lock");
        *self.local.write().expect("local catalog lock") = local.clone();
        broker.set_catalog(self.merge(&local).0);
    }

    fn cache_file(&self, name: &str) -> Option<PathBuf> {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache_dir
            .as_ref()
            .map(|d| d.join(format!("{safe}.catalog.json")))
    }

    fn remember(&self, name: &str, docs: &[Value]) {
        let mut last = self.last_good.lock().expect("last_good lock");
        if last.get(name).is_some_and(|d| d.as_slice() == docs) {
            return;
        }
        last.insert(name.to_owned(), docs.to_vec());
        if let Some(path) = self.cache_file(name) {
            let write = path
                .parent()
                .map(std::fs::create_dir_all)
                .unwrap_or(Ok(()))
                .and_then(|_| {
                    let tmp = path.with_extension("json.tmp");
                    std::fs::write(&tmp, serde_json::to_vec_pretty(docs).unwrap_or_default())?;
                    std::fs::rename(&tmp, &path)
                });
            if let Err(e) = write {
                tracing::warn!(upstream = %name, path = %path.display(), error = %e,
                    "cannot cache the imported upstream catalog");
            }
        }
    }

    fn recall(&self, name: &str) -> Option<Vec<Value>> {
        if let Some(d) = self.last_good.lock().expect("last_good lock").get(name) {
            return Some(d.clone());
        }
        let bytes = std::fs::read(self.cache_file(name)?).ok()?;
        let docs: Vec<Value> = serde_json::from_slice(&bytes).ok()?;
        self.last_good
            .lock()
            .expect("last_good lock")
            .insert(name.to_owned(), docs.clone());
        Some(docs)
    }

    /// Refreshes the imports every [`Aggregator::refresh_interval`] and
    /// swaps the broker's catalog when what it serves changes. The task ends
    /// when the returned guard or the broker is dropped: it holds the broker
    /// weakly, like every background task.
    pub(crate) fn spawn_refresh(self: Arc<Self>, broker: &Broker) -> Option<RefreshTask> {
        let every = self.refresh_interval()?;
        let weak = broker.downgrade();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                self.fetch_into_cache(None).await;
                let Some(broker) = weak.upgrade() else { break };
                // Merged with the local catalog as it is after the fetch, so
                // a reload during the fetch is not undone.
                let _swap = self.swap.lock().expect("swap lock");
                let (catalog, _) = self.merge(&self.local());
                if catalog.etag() != broker.catalog().etag() {
                    tracing::info!(
                        services = catalog.services().len(),
                        "upstream catalogs changed; serving the new catalog"
                    );
                    broker.set_catalog(catalog);
                }
            }
        });
        Some(RefreshTask(task.abort_handle()))
    }
}

/// Stops the refresh task when dropped.
#[derive(Debug)]
pub(crate) struct RefreshTask(tokio::task::AbortHandle);

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `GET /v2/catalog` of one upstream, filtered by its `import:` settings.
pub(crate) async fn fetch(client: &Client) -> Result<Vec<Value>, String> {
    let all = fetch_all(client).await?;
    Ok(select(
        client
            .config()
            .import
            .as_ref()
            .unwrap_or(&Import::default()),
        all,
    ))
}

/// Every service entry of an upstream's `GET /v2/catalog`.
pub(crate) async fn fetch_all(client: &Client) -> Result<Vec<Value>, String> {
    let r = client.catalog().await.map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!(
            "upstream broker {} answered GET /v2/catalog with HTTP {}",
            client.name(),
            r.status
        ));
    }
    r.object()
        .ok()
        .and_then(|m| m.get("services"))
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            format!(
                "upstream broker {} answered GET /v2/catalog without a `services` list",
                client.name()
            )
        })
}

/// The entries `import` selects (by name, id or tag).
pub(crate) fn select(import: &Import, services: Vec<Value>) -> Vec<Value> {
    services
        .into_iter()
        .filter(|s| {
            let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("");
            let tags: Vec<String> = s
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            import.selects(text("id"), text("name"), &tags)
        })
        .collect()
}

/// Turns selected upstream service entries into local services, prefixed.
pub(crate) fn convert(
    broker: &str,
    import: &Import,
    docs: &[Value],
) -> (Vec<Service>, Vec<LintIssue>) {
    let mut services = Vec::new();
    let mut issues = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        match Service::from_osb(doc, broker) {
            Ok(mut s) => {
                s.id = format!("{}{}", import.id_prefix, s.id);
                s.name = format!("{}{}", import.name_prefix, s.name);
                for p in &mut s.plans {
                    p.id = format!("{}{}", import.id_prefix, p.id);
                }
                services.push(s);
            }
            Err(why) => issues.push(LintIssue {
                file: PathBuf::from(format!("upstream {broker}")),
                path: format!(
                    "services[{}]",
                    doc.get("name")
                        .and_then(Value::as_str)
                        .map_or(i.to_string(), str::to_owned)
                ),
                message: format!("cannot import: {why}"),
            }),
        }
    }
    (services, issues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_and_prefixes_keeping_upstream_ids_for_calls() {
        let import = Import {
            id_prefix: "cloud-".into(),
            name_prefix: "cloud-".into(),
            ..Import::default()
        };
        let docs = vec![
            json!({"id": "s1", "name": "redis", "description": "d", "bindable": true, "tags": ["cache"],
                "plans": [{"id": "p1", "name": "small", "description": "d",
                    "schemas": {"service_instance": {"create": {"parameters": {"type": "object",
                        "properties": {"memory": {"type": "integer"}}}}}}}]}),
            json!({"id": "s2", "name": "broken", "bindable": true, "plans": []}),
        ];
        let (services, issues) = convert("cloud", &import, &docs);
        assert_eq!(services.len(), 1);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].to_string().contains("broken"), "{}", issues[0]);
        let s = &services[0];
        assert_eq!(
            (s.id.as_str(), s.name.as_str()),
            ("cloud-s1", "cloud-redis")
        );
        let p = &s.plans[0];
        assert_eq!(p.id, "cloud-p1");
        let up = p.upstream().unwrap();
        assert_eq!(
            (
                up.broker.as_str(),
                up.service_id.as_str(),
                up.plan_id.as_str()
            ),
            ("cloud", "s1", "p1")
        );
        // Imported schemas validate like local ones.
        let kind = crate::catalog::SchemaKind::InstanceCreate;
        assert!(p.validate_parameters(kind, &json!({"memory": 5})).is_ok());
        assert!(
            p.validate_parameters(kind, &json!({"memory": "x"}))
                .is_err()
        );
    }

    #[test]
    fn merging_leaves_out_conflicts() {
        let local = Catalog::from_yaml(
            std::path::Path::new("c.yaml"),
            "upstreams: [{name: cloud, url: 'http://x'}]\nservices:\n- {id: s1, name: redis, description: d, bindable: false, plans: [{id: p9, name: a, description: d, upstream: {broker: cloud, service_id: s, plan_id: p}}]}\n",
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
        let docs = vec![
            json!({"id": "s1", "name": "other", "description": "d", "bindable": false,
                "plans": [{"id": "p1", "name": "a", "description": "d"}]}),
            json!({"id": "s2", "name": "fine", "description": "d", "bindable": false,
                "plans": [{"id": "p2", "name": "a", "description": "d"}]}),
        ];
        let (services, _) = convert("cloud", &Import::default(), &docs);
        let (merged, issues) =
            local.with_imported(services.into_iter().map(|s| ("cloud".into(), s)).collect());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].message.contains("duplicate service id `s1`"),
            "{}",
            issues[0]
        );
        let names: Vec<_> = merged.services().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["redis", "fine"]);
    }
}
