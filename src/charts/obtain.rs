//! Bringing a chart into the cache: helm pulls it, or the broker downloads it
//! where the repository needs credentials; the archive is checked either way.

use super::*;

impl ChartFetcher {
    /// Brings the chart (and its provenance, verified) into the pull's
    /// destination: helm pulls, except from an HTTPS repository that needs
    /// credentials, which the broker downloads itself (see [`download`]).
    pub(super) async fn obtain(
        &self,
        pull: &Pull<'_>,
        source: &ChartSource,
        remote: &RemoteChart,
    ) -> Result<(), FetchError> {
        let chart = source.to_string();
        let host = match source {
            ChartSource::Oci { reference, .. } => reference
                .trim_start_matches("oci://")
                .split('/')
                .next()
                .unwrap_or_default(),
            _ => "",
        };
        // Helm has no reason to print a credential; should one ever do,
        // it is not passed on.
        let secrets = (remote.auth.as_ref())
            .map(|a| a.secret_values(host))
            .unwrap_or_default();
        let helm_failed = |error| fetch_error(&chart, remote.auth.as_ref(), &secrets, error);
        match (source, &remote.auth) {
            (ChartSource::Repository { url, name, .. }, Some(auth)) => {
                let wanted = download::Wanted {
                    repository: url,
                    name,
                    version: &remote.version,
                    provenance: remote.keyring.is_some(),
                    ca_file: remote.ca_file.as_deref(),
                };
                let archive = download::fetch(&wanted, auth, pull.destination, self.helm.timeout())
                    .await
                    .map_err(|error| FetchError::Download {
                        chart: chart.clone(),
                        error,
                    })?;
                if let Some(keyring) = &remote.keyring {
                    self.helm
                        .verify(&archive, keyring)
                        .await
                        .map_err(helm_failed)?;
                }
                Ok(())
            }
            (ChartSource::Oci { .. }, Some(auth)) => {
                let config =
                    auth.registry_config(host)
                        .map_err(|problem| FetchError::Download {
                            chart: chart.clone(),
                            error: DownloadError::Credentials {
                                origin: auth.origin(),
                                problem,
                            },
                        })?;
                let file = PrivateFile::write(&self.helm.home().join("registry-auth"), &config)
                    .await
                    .map_err(|(what, error)| FetchError::Io { what, error })?;
                let pull = Pull {
                    registry_config: Some(&file.0),
                    ..*pull
                };
                self.helm.pull(&pull).await.map_err(helm_failed)
            }
            _ => self.helm.pull(pull).await.map_err(helm_failed),
        }
    }
}

/// A failed helm call as a fetch error: a refusal (401/403) with a hint
/// about the plan's `chart.auth`, anything else as helm's; `secrets`
/// masked either way.
fn fetch_error(
    chart: &str,
    auth: Option<&crate::catalog::ChartAuth>,
    secrets: &[String],
    error: HelmError,
) -> FetchError {
    match refusal(&error) {
        Some(status) => FetchError::Refused {
            chart: chart.to_owned(),
            status,
            hint: match auth {
                Some(a) => format!(
                    "the source refused the credentials of chart.auth ({}); check them",
                    a.origin()
                ),
                None => "the source needs credentials; set the plan's chart.auth".into(),
            },
            detail: match error {
                HelmError::Failed { stderr, .. } => crate::redact::redact(&stderr, secrets),
                e => e.to_string(),
            },
        },
        None => FetchError::Helm {
            chart: chart.to_owned(),
            error: match error {
                HelmError::Failed { command, stderr } => HelmError::Failed {
                    command,
                    stderr: crate::redact::redact(&stderr, secrets),
                },
                e => e,
            },
        },
    }
}

/// A file only the broker can read, removed when dropped: a registry
/// config holding credentials lives as long as the one pull using it.
pub(super) struct PrivateFile(PathBuf);

impl PrivateFile {
    pub(super) async fn write(
        dir: &Path,
        secret: &auth::SecretString,
    ) -> Result<PrivateFile, (String, std::io::Error)> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder
            .create(dir)
            .map_err(|e| (format!("creating {}", dir.display()), e))?;
        let path = dir.join(format!("{}.json", uuid::Uuid::new_v4().simple()));
        let file = PrivateFile(path.clone());
        let bytes = secret.expose().as_bytes().to_vec();
        let at = path.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&at)?
                .write_all(&bytes)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| (format!("writing {}", path.display()), e))?;
        Ok(file)
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `401 Unauthorized` or `403 Forbidden` when helm failed because the
/// source refused it. Helm words it per source kind and version: "401
/// Unauthorized" (repositories), "response status code 401" or "basic
/// credential not found" (OCI, the latter with no credentials), "403 Forbidden".
pub(super) fn refusal(error: &HelmError) -> Option<&'static str> {
    let HelmError::Failed { stderr, .. } = error else {
        return None;
    };
    let s = stderr.to_ascii_lowercase();
    // oras asks for credentials only after the registry's 401 challenge.
    let challenged = s.contains("credential not found");
    if challenged
        || (s.contains("401") && (s.contains("unauthorized") || s.contains("status code")))
    {
        Some("401 Unauthorized")
    } else if s.contains("403") && (s.contains("forbidden") || s.contains("status code")) {
        Some("403 Forbidden")
    } else {
        None
    }
}

pub(super) fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
    )
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
