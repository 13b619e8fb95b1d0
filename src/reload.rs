//! Reload without restart: the catalog (with its charts), the TLS
//! certificate and the credentials are reread on SIGHUP and when their
//! files change. Each is loaded and checked in full first and swapped in
//! whole; when that fails, the one in force stays, a warning says what
//! failed and why, and `chartbroker_reload_failures_total` counts it.
//!
//! Operations already running keep the plan they started with: the worker
//! copies service and plan out of the catalog once, when it starts them.
//!
//! Changes are found by polling a fingerprint (path, size, mtime, inode of
//! every file under the watched paths, symlinks followed) every few
//! seconds, not with inotify: it needs no new crate, works the same on
//! every filesystem (network mounts included, where inotify sees nothing),
//! and sees Kubernetes ConfigMap and Secret updates, which swap a `..data`
//! symlink rather than write the files. A change is acted on once the
//! fingerprint has held still for one interval, so a half-copied catalog
//! is not loaded (debounce).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::catalog::Catalog;
use crate::metrics::Metrics;
use crate::osb::auth::{Credentials, LiveCredentials};
use crate::tls::LiveTls;
use crate::upstream::Upstreams;

/// What a reload replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// The catalog directory and the charts it uses.
    Catalog,
    /// The listener's certificate, key and client CA.
    Tls,
    /// Who may call `/v2`.
    Credentials,
}

impl What {
    /// The metric label and log field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            What::Catalog => "catalog",
            What::Tls => "tls",
            What::Credentials => "credentials",
        }
    }
}

/// Builds the credentials from their sources (environment, file).
pub(crate) type CredentialSource = Arc<dyn Fn() -> anyhow::Result<Credentials> + Send + Sync>;

/// Everything a reload reads and replaces.
pub struct Reloader {
    /// Whose catalog is replaced.
    pub(crate) broker: Broker,
    /// Catalog directory.
    pub(crate) catalog_dir: PathBuf,
    /// Charts directory.
    pub(crate) charts_dir: PathBuf,
    /// Upstream brokers whose imports stay merged into a reloaded catalog.
    pub(crate) upstreams: Option<Arc<Upstreams>>,
    /// The credentials in force.
    pub(crate) credentials: Arc<LiveCredentials>,
    /// How to build them again.
    pub(crate) credential_source: CredentialSource,
    /// The credentials and platforms files, watched for changes.
    pub(crate) credentials_file: Vec<PathBuf>,
    /// The listener's TLS, when it serves HTTPS.
    pub(crate) tls: Option<Arc<LiveTls>>,
    /// Where reloads are counted.
    pub(crate) metrics: Arc<Metrics>,
}

impl Reloader {
    /// Reloads `what`; logs and counts the outcome. On an error what is in
    /// force stays in force.
    pub async fn reload(&self, what: What) -> bool {
        let outcome = match what {
            What::Catalog => self.reload_catalog().await,
            What::Tls => match &self.tls {
                Some(t) => t.reload(),
                None => return true,
            },
            What::Credentials => (self.credential_source)().map(|c| {
                self.credentials.replace(c);
            }),
        };
        match outcome {
            Ok(()) => {
                self.metrics.reload(what.as_str(), true);
                tracing::info!(what = what.as_str(), "reloaded");
                true
            }
            Err(e) => {
                self.metrics.reload(what.as_str(), false);
                tracing::warn!(what = what.as_str(), error = %one_line(&e),
                    "reload failed; still serving the previous {}", what.as_str());
                false
            }
        }
    }

    async fn reload_catalog(&self) -> anyhow::Result<()> {
        let (dir, charts) = (self.catalog_dir.clone(), self.charts_dir.clone());
        // Loading compiles schemas and reads charts: off the async workers.
        let local = tokio::task::spawn_blocking(move || Catalog::load(&dir, &charts))
            .await
            .map_err(|e| anyhow::anyhow!("loading the catalog panicked: {e}"))??;
        match &self.upstreams {
            Some(u) => u.reload(local, &self.broker),
            None => {
                if !local.upstreams().is_empty() {
                    tracing::warn!(
                        "the reloaded catalog declares upstreams:, which take effect at the next restart"
                    );
                }
                self.broker.set_catalog(local);
            }
        }
        Ok(())
    }

    /// Reloads everything (SIGHUP).
    pub(crate) async fn reload_all(&self) {
        for what in [What::Catalog, What::Tls, What::Credentials] {
            self.reload(what).await;
        }
    }

    /// The files each part is read from.
    fn watched(&self, what: What) -> Vec<PathBuf> {
        match what {
            What::Catalog => vec![self.catalog_dir.clone(), self.charts_dir.clone()],
            What::Tls => self.tls.as_ref().map(|t| t.files()).unwrap_or_default(),
            What::Credentials => self.credentials_file.clone(),
        }
    }

    /// Reloads everything on SIGHUP and, when `poll` is set, each part whose
    /// files changed. Dropping the guard stops it.
    pub fn spawn(self: Arc<Self>, poll: Option<Duration>) -> anyhow::Result<ReloadTask> {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let parts: Vec<What> = [What::Catalog, What::Tls, What::Credentials]
            .into_iter()
            .filter(|w| !self.watched(*w).is_empty())
            .collect();
        let task = tokio::spawn(async move {
            // Per part: the fingerprint last seen and the one last loaded.
            let mut seen = Vec::new();
            for w in &parts {
                seen.push(fingerprint_of(self.watched(*w)).await);
            }
            let mut loaded = seen.clone();
            let mut tick = poll.map(tokio::time::interval);
            loop {
                let polled = async {
                    match tick.as_mut() {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reloading catalog, TLS and credentials");
                        self.reload_all().await;
                        for (i, w) in parts.iter().enumerate() {
                            seen[i] = fingerprint_of(self.watched(*w)).await;
                            loaded[i] = seen[i];
                        }
                    }
                    () = polled => {
                        for (i, w) in parts.iter().enumerate() {
                            let now = fingerprint_of(self.watched(*w)).await;
                            if now != seen[i] {
                                // Still changing: wait until it holds still.
                                seen[i] = now;
                            } else if now != loaded[i] {
                                loaded[i] = now;
                                tracing::info!(what = w.as_str(), "files changed; reloading");
                                self.reload(*w).await;
                            }
                        }
                    }
                }
            }
        });
        Ok(ReloadTask(task.abort_handle()))
    }
}

/// Stops the reload task when dropped.
#[derive(Debug)]
pub struct ReloadTask(tokio::task::AbortHandle);

impl Drop for ReloadTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An error and its causes on one line (lint lists one problem a line).
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn fingerprint_of(paths: Vec<PathBuf>) -> u64 {
    tokio::task::spawn_blocking(move || fingerprint(&paths))
        .await
        .unwrap_or(0)
}

/// A hash of the path, size, modification time and inode of every file
/// under `paths`, following symlinks (up to a depth, against loops).
pub(crate) fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in paths {
        walk(p, 0, &mut h);
    }
    h.finish()
}

fn walk(path: &Path, depth: usize, h: &mut DefaultHasher) {
    path.hash(h);
    let Ok(meta) = std::fs::metadata(path) else {
        "missing".hash(h);
        return;
    };
    if meta.is_dir() {
        if depth >= 16 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(path) else {
            "unreadable".hash(h);
            return;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            walk(&e, depth + 1, h);
        }
    } else {
        (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino()).hash(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_sees_writes_renames_and_symlink_swaps() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        std::fs::create_dir(root.join("v1")).unwrap();
        std::fs::write(root.join("v1/a.yaml"), "a: 1").unwrap();
        std::os::unix::fs::symlink("v1", root.join("..data")).unwrap();
        let watched = vec![root.join("..data")];
        let first = fingerprint(&watched);
        assert_eq!(first, fingerprint(&watched), "stable when nothing changes");
        // A Kubernetes volume update: a new directory, then the link swapped.
        std::fs::create_dir(root.join("v2")).unwrap();
        std::fs::write(root.join("v2/a.yaml"), "a: 2").unwrap();
        std::os::unix::fs::symlink("v2", root.join("tmp-link")).unwrap();
        std::fs::rename(root.join("tmp-link"), root.join("..data")).unwrap();
        let second = fingerprint(&watched);
        assert_ne!(first, second);
        std::fs::write(root.join("v2/b.yaml"), "").unwrap();
        assert_ne!(second, fingerprint(&watched), "a new file counts");
        assert_ne!(
            fingerprint(&[root.join("nothing")]),
            fingerprint(&[root.join("nothing-else")])
        );
    }

    #[test]
    fn errors_fit_on_one_line() {
        let e =
            anyhow::anyhow!("invalid catalog (2 problem(s)):\n  a: x\n  b: y").context("loading");
        assert_eq!(
            one_line(&e),
            "loading: invalid catalog (2 problem(s)):; a: x; b: y"
        );
    }
}
