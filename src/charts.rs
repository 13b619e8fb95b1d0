//! Charts from remote sources: turns a plan's [`ChartSource`] into a local
//! chart that `helm template` and `helm upgrade` can use.
//!
//! A remote chart (an HTTPS Helm repository or an OCI registry) is pulled by
//! the real helm ([`Helm::pull`], with `--verify --keyring` when the plan
//! asks for provenance, `--ca-file` for a private CA), its archive checked
//! against the plan's `digest`, and kept under `<root>/<key>/` where `<key>`
//! is the SHA-256 of the source, the version, the pinned digest and the
//! keyring's contents. A chart is fetched once: later operations use the
//! cached archive (its digest checked again when the plan pins one).
//!
//! Concurrent resolutions of one key wait on a lock per key, so two
//! provisions of the same plan download once. Each download goes into a
//! fresh temporary directory that is renamed into place only after every
//! check passed: the cache never holds a half-written, unverified or
//! mismatching chart (helm itself leaves the files of a failed
//! verification behind).

pub(crate) mod auth;
mod download;

pub(crate) use crate::catalog::chart_files::{ChartFileError, check_archive, check_folder};
pub(crate) use download::DownloadError;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::catalog::{ChartSource, RemoteChart};
use crate::helm::{Helm, HelmError, Pull};
mod obtain;
use obtain::*;

/// Name of the record written beside each cached archive.
const RECORD: &str = "source.json";

/// Fetches and caches remote charts.
pub(crate) struct ChartFetcher {
    helm: Helm,
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Why a chart could not be made local. Messages carry helm's own words.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// `helm pull` failed: unreachable repository, unknown version, bad
    /// signature, TLS error, timeout.
    #[error("fetching chart {chart}: {error}")]
    Helm {
        /// The source, as displayed.
        chart: String,
        /// Helm's failure.
        error: HelmError,
    },
    /// A private repository's chart could not be downloaded, or its
    /// credentials read.
    #[error("fetching chart {chart}: {error}")]
    Download {
        /// The source, as displayed.
        chart: String,
        /// What failed.
        error: DownloadError,
    },
    /// The source answered 401 or 403 to helm.
    #[error("fetching chart {chart}: authentication failed ({status}): {hint}: {detail}")]
    Refused {
        /// The source, as displayed.
        chart: String,
        /// `401 Unauthorized` or `403 Forbidden`.
        status: &'static str,
        /// What to check.
        hint: String,
        /// Helm's message.
        detail: String,
    },
    /// The archive does not hash to the pinned digest.
    #[error(
        "chart {chart}: digest mismatch: the catalog pins {expected} but the archive is {actual}"
    )]
    Digest {
        /// The source, as displayed.
        chart: String,
        /// The catalog's `digest`.
        expected: String,
        /// The archive's digest.
        actual: String,
    },
    /// Helm succeeded but left no single archive.
    #[error("chart {chart}: helm pull left no chart archive")]
    NoArchive {
        /// The source, as displayed.
        chart: String,
    },
    /// The chart holds a symlink or a path leaving the chart.
    #[error(transparent)]
    Files(#[from] ChartFileError),
    /// A local file or the cache could not be read or written.
    #[error("{what}: {error}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        error: std::io::Error,
    },
}

/// What the cache keeps beside an archive.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The source, as displayed (for people reading the cache).
    source: String,
    /// File name of the archive in the entry's directory.
    archive: String,
    /// `sha256:<hex>` of the archive.
    digest: String,
    /// Whether helm verified its provenance.
    verified: bool,
}

impl ChartFetcher {
    /// A fetcher pulling with `helm` and caching under `root` (usually
    /// `<data-dir>/charts`). Temporary directories a killed process left
    /// there over an hour ago are removed.
    pub(crate) fn new(helm: Helm, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let stale = |e: &std::fs::DirEntry| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600))
        };
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") && stale(&e) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        ChartFetcher {
            helm,
            root,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Removes cached charts no source of `catalog` uses any more (an old
    /// version after a plan moved on, a plan that is gone). Upgrades and
    /// installs always use the catalog's current source, and uninstalls never
    /// fetch, so nothing else needs them. Returns how many were removed.
    pub(crate) async fn prune(&self, catalog: &crate::catalog::Catalog) -> usize {
        let mut keep = std::collections::HashSet::new();
        for plan in catalog.services().iter().flat_map(|s| &s.plans) {
            let Some(chart) = plan.chart() else { continue };
            let remote = match &chart.source {
                ChartSource::Local(_) => continue,
                ChartSource::Repository { remote, .. } | ChartSource::Oci { remote, .. } => remote,
            };
            match self.key(&chart.source, remote).await {
                Ok(k) => {
                    keep.insert(k);
                }
                // Can't tell which entry it is: keep everything.
                Err(_) => return 0,
            }
        }
        let Ok(mut entries) = tokio::fs::read_dir(&self.root).await else {
            return 0;
        };
        let mut removed = 0;
        while let Ok(Some(e)) = entries.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") || keep.contains(&name) {
                continue;
            }
            // Hold the entry's lock so a fetch of the same key can't race.
            let lock = self.lock(&name);
            let _held = lock.lock().await;
            if tokio::fs::remove_dir_all(e.path()).await.is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// The chart to hand to helm: a local source's folder as is, a remote
    /// source's cached archive (fetched first if needed).
    pub(crate) async fn resolve(&self, source: &ChartSource) -> Result<PathBuf, FetchError> {
        let (chart, repo, remote) = match source {
            // Checked again on every use: the charts directory may have
            // changed since the catalog was loaded.
            ChartSource::Local(p) => {
                check_folder(p)?;
                return Ok(p.clone());
            }
            ChartSource::Repository { url, name, remote } => (name.as_str(), Some(url), remote),
            ChartSource::Oci { reference, remote } => (reference.as_str(), None, remote),
        };
        let key = self.key(source, remote).await?;
        let lock = self.lock(&key);
        let _held = lock.lock().await;
        let dir = self.root.join(&key);
        if let Some(archive) = self.cached(&dir, source, remote).await? {
            // An entry cached before archives were checked is checked now.
            check_archive(&archive)?;
            return Ok(archive);
        }
        self.fetch(
            &key,
            &dir,
            source,
            (chart, repo.map(String::as_str)),
            remote,
        )
        .await
    }

    /// SHA-256 over what decides which bytes are acceptable: the source,
    /// its version, the pinned digest, the keyring's contents when
    /// verifying (a rotated keyring must verify the chart again), and where
    /// the credentials come from.
    async fn key(&self, source: &ChartSource, remote: &RemoteChart) -> Result<String, FetchError> {
        let mut text = match source {
            ChartSource::Local(_) => unreachable!("local charts are not cached"),
            ChartSource::Repository { url, name, .. } => format!("repository\n{url}\n{name}\n"),
            ChartSource::Oci { reference, .. } => format!("oci\n{reference}\n"),
        };
        text.push_str(&remote.version);
        text.push('\n');
        // Each pin has its own entry: a plan pinning a wrong digest never
        // evicts the chart another plan pinned right.
        text.push_str(remote.digest.as_deref().unwrap_or("any digest"));
        text.push('\n');
        // Where the credentials come from (never their values): a plan
        // whose credentials are wrong, or missing, must not be handed the
        // chart another plan's credentials fetched.
        if let Some(auth) = &remote.auth {
            text.push_str(&format!("auth {auth:?}\n"));
        }
        match &remote.keyring {
            Some(k) => {
                let bytes = tokio::fs::read(k).await.map_err(|error| FetchError::Io {
                    what: format!("reading keyring {}", k.display()),
                    error,
                })?;
                text.push_str(&format!("verify {}\n", sha256(&bytes)));
            }
            None => text.push_str("unverified\n"),
        }
        Ok(hex(ring::digest::digest(
            &ring::digest::SHA256,
            text.as_bytes(),
        )
        .as_ref()))
    }

    fn lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }

    /// The cached archive, if the entry is complete and still matches the
    /// pinned digest; a bad entry is removed so it is fetched again.
    async fn cached(
        &self,
        dir: &Path,
        source: &ChartSource,
        remote: &RemoteChart,
    ) -> Result<Option<PathBuf>, FetchError> {
        let record = match tokio::fs::read(dir.join(RECORD)).await {
            Ok(bytes) => serde_json::from_slice::<Record>(&bytes).ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !tokio::fs::try_exists(dir).await.unwrap_or(false) {
                    return Ok(None);
                }
                None
            }
            Err(_) => None,
        };
        let good = match &record {
            Some(r) if !r.archive.contains('/') => {
                let archive = dir.join(&r.archive);
                match tokio::fs::read(&archive).await {
                    Ok(bytes) => {
                        let actual = sha256(&bytes);
                        match &remote.digest {
                            Some(want) if *want != actual => {
                                tracing::warn!(chart = %source, cached = %actual, pinned = %want,
                                    "cached chart does not match the pinned digest; fetching again");
                                None
                            }
                            _ => Some(archive),
                        }
                    }
                    Err(_) => None,
                }
            }
            _ => None,
        };
        if good.is_none() {
            match tokio::fs::remove_dir_all(dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(FetchError::Io {
                        what: format!("removing the bad cache entry {}", dir.display()),
                        error,
                    });
                }
            }
        }
        Ok(good)
    }

    /// Pulls into a temporary directory, checks, then renames into place.
    async fn fetch(
        &self,
        key: &str,
        dir: &Path,
        source: &ChartSource,
        (chart, repo): (&str, Option<&str>),
        remote: &RemoteChart,
    ) -> Result<PathBuf, FetchError> {
        let io = |what: String| move |error| FetchError::Io { what, error };
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(io(format!("creating {}", self.root.display())))?;
        let tmp = self
            .root
            .join(format!(".tmp-{key}-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir(&tmp)
            .await
            .map_err(io(format!("creating {}", tmp.display())))?;
        let pull = Pull {
            chart,
            repo,
            version: &remote.version,
            destination: &tmp,
            keyring: remote.keyring.as_deref(),
            ca_file: remote.ca_file.as_deref(),
            registry_config: None,
        };
        let outcome = match self.pull_checked(&pull, source, remote).await {
            Ok(archive) => match tokio::fs::rename(&tmp, dir).await {
                Ok(()) => Ok(dir.join(archive)),
                // Another process sharing the data directory got there
                // first: its entry is as good as ours.
                Err(error) => match self.cached(dir, source, remote).await {
                    Ok(Some(theirs)) => Ok(theirs),
                    _ => Err(FetchError::Io {
                        what: format!("moving the chart into the cache at {}", dir.display()),
                        error,
                    }),
                },
            },
            Err(e) => Err(e),
        };
        // Nothing from a failed pull stays: helm leaves a chart whose
        // verification failed in the destination.
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        outcome
    }

    /// Runs helm, finds the archive, checks the digest and writes the
    /// record; returns the archive's file name.
    async fn pull_checked(
        &self,
        pull: &Pull<'_>,
        source: &ChartSource,
        remote: &RemoteChart,
    ) -> Result<String, FetchError> {
        let chart = source.to_string();
        self.obtain(pull, source, remote).await?;
        let io = |what: String| move |error| FetchError::Io { what, error };
        let dest = pull.destination;
        let mut archives = Vec::new();
        let mut entries = tokio::fs::read_dir(dest)
            .await
            .map_err(io(format!("reading {}", dest.display())))?;
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(io(format!("reading {}", dest.display())))?
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tgz") {
                archives.push(name);
            }
        }
        let [archive] = archives.as_slice() else {
            return Err(FetchError::NoArchive { chart });
        };
        let path = dest.join(archive);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(io(format!("reading {}", path.display())))?;
        let actual = sha256(&bytes);
        if let Some(expected) = &remote.digest {
            if *expected != actual {
                return Err(FetchError::Digest {
                    chart,
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        check_archive(&path)?;
        let record = Record {
            source: chart,
            archive: archive.clone(),
            digest: actual,
            verified: remote.keyring.is_some(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("record serializes");
        tokio::fs::write(dest.join(RECORD), json)
            .await
            .map_err(io(format!("writing {}", dest.join(RECORD).display())))?;
        tracing::info!(chart = %record.source, digest = %record.digest,
            verified = record.verified, "fetched chart");
        Ok(archive.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ChartAuth;

    #[test]
    fn refusals_are_told_from_other_failures() {
        let failed = |stderr: &str| HelmError::Failed {
            command: "pull".into(),
            stderr: stderr.into(),
        };
        // As Helm 4 and 3 word them (tests/chart_sources.rs sees each).
        for (stderr, status) in [
            (
                "Error: looks like \"https://r/private\" is not a valid chart repository or cannot be reached: failed to fetch https://r/private/index.yaml : 401 Unauthorized",
                Some("401 Unauthorized"),
            ),
            (
                "Error: failed to perform \"FetchReference\" on source: GET \"https://r/v2/p/tiny/manifests/0.1.0\": response status code 401: Unauthorized",
                Some("401 Unauthorized"),
            ),
            (
                "Error: failed to perform \"FetchReference\" on source: GET \"https://r/v2/p/tiny/manifests/0.1.0\": basic credential not found",
                Some("401 Unauthorized"),
            ),
            (
                "Error: failed to fetch https://r/private/index.yaml : 403 Forbidden",
                Some("403 Forbidden"),
            ),
            ("Error: chart \"tiny\" version \"4.0.1\" not found", None),
            ("Error: r/v2/p/tiny:0.2.0: not found", None),
        ] {
            assert_eq!(refusal(&failed(stderr)), status, "{stderr}");
        }
        let timeout = HelmError::Timeout {
            command: "pull 401 Unauthorized".into(),
            secs: 1,
        };
        assert_eq!(refusal(&timeout), None);
    }

    /// A helm that quoted the registry config it was handed in its error
    /// (none does today) would not carry the password into the message.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_credential_helm_prints_is_redacted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helm = dir.path().join("helm");
        // Prints the file after --registry-config, then the raw password.
        std::fs::write(
            &helm,
            "#!/bin/sh\nwhile [ \"$1\" != --registry-config ]; do shift; done\n\
             echo \"Error: 401 Unauthorized with $(cat \"$2\") and s3cret-pass\" >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "s3cret-pass").unwrap();
        let fetcher = ChartFetcher::new(
            Helm::new(
                &helm,
                dir.path().join("home"),
                std::time::Duration::from_secs(5),
            ),
            dir.path().join("charts"),
        );
        let source = ChartSource::Oci {
            reference: "oci://r.example:5000/c/tiny".into(),
            remote: RemoteChart {
                version: "0.1.0".into(),
                digest: None,
                keyring: None,
                ca_file: None,
                auth: Some(ChartAuth::Basic {
                    username: auth::Source::Inline("u".into()),
                    password: auth::Source::File(password),
                }),
            },
        };
        let e = fetcher.resolve(&source).await.unwrap_err().to_string();
        assert!(
            e.contains("authentication failed (401 Unauthorized)"),
            "{e}"
        );
        assert!(e.contains("<redacted>"), "{e}");
        assert!(
            !e.contains("s3cret-pass") && !e.contains("dTpzM2NyZXQtcGFzcw"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn prune_removes_entries_no_plan_uses() {
        let root = tempfile::tempdir().unwrap();
        for d in ["0123abcd-old-version", ".tmp-in-flight"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let charts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charts");
        let yaml = r#"
services:
  - id: s
    name: s
    description: d
    bindable: false
    plans:
      - id: p
        name: p
        description: d
        chart: {path: tiny, credentials: {}}
"#;
        let catalog =
            crate::catalog::Catalog::from_yaml(Path::new("t.yaml"), yaml, &charts).unwrap();
        let fetcher = ChartFetcher::new(
            Helm::new(
                "helm",
                root.path().join("home"),
                std::time::Duration::from_secs(5),
            ),
            root.path(),
        );
        assert_eq!(fetcher.prune(&catalog).await, 1);
        assert!(!root.path().join("0123abcd-old-version").exists());
        assert!(
            root.path().join(".tmp-in-flight").exists(),
            "a fetch in flight is left alone"
        );
    }
}
