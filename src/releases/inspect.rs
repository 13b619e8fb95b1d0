//! What the dashboard shows of a release: its revisions and the manifests
//! that were applied, read (never written) from where each engine keeps
//! them.
//!
//! - render engine: the one rendering it keeps, `manifests.yaml` (and
//!   `namespace.yaml`) in the release's folder; it keeps no history, so
//!   there is one revision, the file's modification time.
//! - helm engine: `helm history` and `helm get manifest`, run as the
//!   release identity of the namespace (never the broker's own
//!   credentials), like every other helm call that touches the cluster.
//!   Answers are cached for a few seconds and fetched one at a time, so a
//!   storm of page loads starts no storm of helm processes.
//!
//! The text returned is what the engine holds, unredacted: the dashboard
//! redacts it (it knows the instance's generated secrets).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::cluster::{IdentityNames, Kube};
use crate::helm::{Capture, Helm};

/// One revision of a release.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revision {
    /// Helm's revision number (1 for the render engine's one rendering).
    pub number: u64,
    /// When it was written, as the engine says it.
    pub updated: String,
    /// `deployed`, `superseded`, `failed`… (`rendered` for the render engine).
    pub status: String,
    /// Chart name and version, when known.
    pub chart: String,
    /// Helm's description of the revision (`Install complete`, an error).
    pub description: String,
}

/// A release as its engine holds it.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// Newest first.
    pub revisions: Vec<Revision>,
    /// The manifests of the current revision (helm's YAML stream, or the
    /// render engine's canonical stream), unredacted; `None` when there is
    /// no release.
    pub manifest: Option<String>,
    /// What this engine keeps, said once on the page.
    pub kept: &'static str,
}

/// Reads releases for the dashboard.
#[async_trait]
pub trait ReleaseRecords: Send + Sync + 'static {
    /// The release `release` in `namespace`.
    async fn applied(&self, namespace: &str, release: &str) -> Result<Applied, String>;
}

/// The render engine's folder.
pub struct RenderRecords {
    root: PathBuf,
}

impl RenderRecords {
    /// Releases rendered under `root` (the render engine's root).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RenderRecords { root: root.into() }
    }
}

const RENDER_KEPT: &str =
    "The render engine keeps only the current rendering of a release: one revision.";

#[async_trait]
impl ReleaseRecords for RenderRecords {
    async fn applied(&self, namespace: &str, release: &str) -> Result<Applied, String> {
        // Names come from the broker's own records, which only hold valid
        // Kubernetes names; still, never leave the root.
        let safe = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..";
        if !safe(namespace) || !safe(release) {
            return Err("not a release name".into());
        }
        let dir = self.root.join(namespace).join(release);
        let file = dir.join("manifests.yaml");
        let meta = match tokio::fs::metadata(&file).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Applied {
                    kept: RENDER_KEPT,
                    ..Applied::default()
                });
            }
            Err(e) => return Err(format!("reading the release folder: {e}")),
        };
        let mut text = tokio::fs::read_to_string(&file)
            .await
            .map_err(|e| format!("reading the release's manifests: {e}"))?;
        if let Ok(ns) = tokio::fs::read_to_string(dir.join("namespace.yaml")).await {
            text.push_str(&ns);
        }
        let updated = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| crate::duration::utc_time(d.as_secs()))
            .unwrap_or_default();
        Ok(Applied {
            revisions: vec![Revision {
                number: 1,
                updated,
                status: "rendered".into(),
                chart: String::new(),
                description: "manifests.yaml as last written".into(),
            }],
            manifest: Some(text),
            kept: RENDER_KEPT,
        })
    }
}

/// How long a helm answer is shown before helm is asked again.
const HELM_CACHE: Duration = Duration::from_secs(10);
/// Releases whose answers are cached at most.
const HELM_CACHE_ENTRIES: usize = 64;
/// How long one fetch may take: a page load never waits for helm's own
/// (long) timeout behind a hung API server.
const HELM_FETCH: Duration = Duration::from_secs(15);
/// Revisions asked of `helm history`.
const HISTORY_MAX: &str = "20";

type Cached = Result<Arc<Applied>, String>;
/// Namespace and release name.
type ReleaseKey = (String, String);

/// Releases in the cluster, read with helm as the release identity.
pub struct HelmRecords {
    helm: Helm,
    kube: Kube,
    identity: IdentityNames,
    /// Held while helm runs: one fetch at a time, and the next waiter
    /// finds the answer (or the failure) cached.
    cache: tokio::sync::Mutex<HashMap<ReleaseKey, (Instant, Cached)>>,
}

const HELM_KEPT: &str = "Helm's release history, as `helm history` shows it to the release identity \
     (at most 20 revisions); the manifests are the current revision's.";

impl HelmRecords {
    /// Reads with `helm` as the release identity `identity`, minted by `kube`.
    pub fn new(helm: Helm, kube: Kube, identity: IdentityNames) -> Self {
        HelmRecords {
            helm,
            kube,
            identity,
            cache: tokio::sync::Mutex::default(),
        }
    }

    async fn fetch(&self, namespace: &str, release: &str) -> Result<Applied, String> {
        let lifetime = self.helm.timeout() + Duration::from_secs(60);
        let kubeconfig = self
            .kube
            .release_kubeconfig(
                namespace,
                &self.identity,
                &self.helm.home().join("kube"),
                lifetime,
            )
            .await
            .map_err(|e| e.to_string())?;
        let Some(kubeconfig) = kubeconfig else {
            return Ok(Applied {
                kept: HELM_KEPT,
                ..Applied::default()
            });
        };
        let helm = self
            .helm
            .clone()
            .with_kubeconfig(Some(kubeconfig.path().to_path_buf()));
        let args = |cmd: &[&str], rest: &[&str]| -> Vec<OsString> {
            cmd.iter()
                .chain([release, "--namespace", namespace].iter())
                .chain(rest.iter())
                .map(OsString::from)
                .collect()
        };
        let history = helm
            .run(
                "history",
                &args(&["history"], &["-o", "json", "--max", HISTORY_MAX]),
                None,
            )
            .await;
        let history = match history {
            Ok(out) => out,
            Err(crate::helm::HelmError::Failed { stderr, .. }) if stderr.contains("not found") => {
                return Ok(Applied {
                    kept: HELM_KEPT,
                    ..Applied::default()
                });
            }
            Err(e) => return Err(e.to_string()),
        };
        let cap = 2 * crate::helm::DEFAULT_MAX_MANIFEST_BYTES;
        let manifest = helm
            .run_with(
                "get",
                &args(&["get", "manifest"], &[]),
                None,
                Capture::Upto(cap),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(Applied {
            revisions: parse_history(&history),
            manifest: Some(manifest),
            kept: HELM_KEPT,
        })
    }
}

/// `helm history -o json`, newest first.
fn parse_history(out: &str) -> Vec<Revision> {
    let rows: Vec<Value> = serde_json::from_str(out).unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut revs: Vec<Revision> = rows
        .iter()
        .map(|r| Revision {
            number: r["revision"].as_u64().unwrap_or_default(),
            updated: text(&r["updated"]),
            status: text(&r["status"]),
            chart: text(&r["chart"]),
            description: text(&r["description"]),
        })
        .collect();
    revs.sort_by_key(|r| std::cmp::Reverse(r.number));
    revs
}

#[async_trait]
impl ReleaseRecords for HelmRecords {
    async fn applied(&self, namespace: &str, release: &str) -> Result<Applied, String> {
        let key = (namespace.to_owned(), release.to_owned());
        let mut cache = self.cache.lock().await;
        if let Some((at, cached)) = cache.get(&key) {
            if at.elapsed() < HELM_CACHE {
                return unshare(cached);
            }
        }
        let fetched = match tokio::time::timeout(HELM_FETCH, self.fetch(namespace, release)).await {
            Ok(r) => r.map(Arc::new),
            Err(_) => Err(format!(
                "helm did not answer within {}s",
                HELM_FETCH.as_secs()
            )),
        };
        if cache.len() >= HELM_CACHE_ENTRIES {
            cache.retain(|_, (at, _)| at.elapsed() < HELM_CACHE);
            if cache.len() >= HELM_CACHE_ENTRIES {
                cache.clear();
            }
        }
        let answer = unshare(&fetched);
        cache.insert(key, (Instant::now(), fetched));
        answer
    }
}

fn unshare(cached: &Cached) -> Result<Applied, String> {
    match cached {
        Ok(a) => Ok((**a).clone()),
        Err(e) => Err(e.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_reads_newest_first() {
        let out = r#"[{"revision":1,"updated":"2026-12-05T10:00:00Z","status":"superseded","chart":"tiny-0.1.0","app_version":"","description":"Install complete"},
                      {"revision":2,"updated":"2026-12-05T11:00:00Z","status":"deployed","chart":"tiny-0.1.0","app_version":"","description":"Upgrade complete"}]"#;
        let revs = parse_history(out);
        assert_eq!(revs.len(), 2);
        assert_eq!(revs[0].number, 2);
        assert_eq!(revs[0].status, "deployed");
        assert_eq!(revs[1].description, "Install complete");
        assert!(parse_history("not json").is_empty());
    }

    #[tokio::test]
    async fn render_records_read_the_folder_and_stay_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let rel = dir.path().join("ns/rel");
        std::fs::create_dir_all(&rel).unwrap();
        std::fs::write(rel.join("manifests.yaml"), "{\"kind\":\"ConfigMap\"}\n").unwrap();
        let r = RenderRecords::new(dir.path());
        let a = r.applied("ns", "rel").await.unwrap();
        assert_eq!(a.revisions.len(), 1);
        assert_eq!(a.manifest.as_deref(), Some("{\"kind\":\"ConfigMap\"}\n"));
        let none = r.applied("ns", "other").await.unwrap();
        assert!(none.manifest.is_none() && none.revisions.is_empty());
        assert!(r.applied("..", "rel").await.is_err());
        assert!(r.applied("ns", "a/b").await.is_err());
    }
}
