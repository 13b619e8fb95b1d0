//! Downloads a chart from an HTTPS repository that needs credentials.
//!
//! Helm takes repository credentials only on its command line (`helm pull
//! --username --password`), where every process on the host can read them,
//! and knows no bearer tokens; so the broker reads the index and fetches the
//! archive (and its provenance file) itself, with the `Authorization`
//! header, and leaves helm the signature check (`helm verify`). Like helm,
//! it sends the credentials only to the repository's own origin: an index
//! pointing the archive at another host gets no credentials.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::auth::ChartAuth;

/// Bytes an index or an archive may have: far above real charts, far
/// below what would hurt the broker.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Why a download failed. Messages name URLs, never a credential.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    /// The source answered 401 or 403.
    #[error("authentication failed at {url} ({status}): {hint}")]
    Auth {
        /// What was asked for.
        url: String,
        /// 401 or 403 with its reason.
        status: String,
        /// What to check.
        hint: String,
    },
    /// The credentials could not be read.
    #[error("reading the credentials ({origin}): {problem}")]
    Credentials {
        /// Where they come from.
        origin: String,
        /// What went wrong.
        problem: String,
    },
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

/// One chart version in a repository.
pub(crate) struct Wanted<'a> {
    /// The repository's base URL, without a trailing `/`.
    pub(crate) repository: &'a str,
    /// The chart's name in the index.
    pub(crate) name: &'a str,
    /// The exact version.
    pub(crate) version: &'a str,
    /// Also fetch `<archive>.prov`.
    pub(crate) provenance: bool,
    /// CA bundle for the repository's TLS.
    pub(crate) ca_file: Option<&'a Path>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    entries: HashMap<String, Vec<IndexEntry>>,
}

#[derive(Deserialize)]
struct IndexEntry {
    version: String,
    #[serde(default)]
    urls: Vec<String>,
}

/// Fetches the index, then the archive (and provenance) into `dest`;
/// returns the archive's path.
pub(crate) async fn fetch(
    w: &Wanted<'_>,
    auth: &ChartAuth,
    dest: &Path,
    timeout: Duration,
) -> Result<PathBuf, DownloadError> {
    let header = auth
        .header()
        .map_err(|problem| DownloadError::Credentials {
            origin: auth.origin(),
            problem,
        })?;
    let client = client(w.ca_file, timeout)?;
    let base = Url::parse(&format!("{}/", w.repository))
        .map_err(|e| DownloadError::Other(format!("{}: {e}", w.repository)))?;
    let origin = base.origin();
    let get = |url: Url| {
        let mut req = client.get(url.clone());
        if url.origin() == origin {
            let mut value =
                reqwest::header::HeaderValue::from_str(header.expose()).map_err(|_| {
                    DownloadError::Credentials {
                        origin: auth.origin(),
                        problem: "the credential holds characters an HTTP header can't carry"
                            .into(),
                    }
                })?;
            value.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, value);
        }
        Ok::<_, DownloadError>((url, req))
    };
    let hint = format!(
        "the repository refused the credentials of chart.auth ({}); check them",
        auth.origin()
    );
    let index_url = base.join("index.yaml").expect("a relative path joins");
    let bytes = body(get(index_url)?, &hint).await?;
    let index: Index = serde_saphyr::from_slice(&bytes).map_err(|e| {
        DownloadError::Other(format!("{}index.yaml is not a repository index: {e}", base))
    })?;
    let entry = index
        .entries
        .get(w.name)
        .and_then(|versions| versions.iter().find(|e| e.version == w.version))
        .ok_or_else(|| {
            DownloadError::Other(format!(
                "chart \"{}\" version \"{}\" not found in {}",
                w.name, w.version, w.repository
            ))
        })?;
    let first = entry.urls.first().ok_or_else(|| {
        DownloadError::Other(format!(
            "the index of {} lists no URL for {} {}",
            w.repository, w.name, w.version
        ))
    })?;
    let url = base
        .join(first)
        .map_err(|e| DownloadError::Other(format!("chart URL {first:?}: {e}")))?;
    let file = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|f| f.ends_with(".tgz") && !f.starts_with('.'))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}-{}.tgz", w.name, w.version));
    let archive = dest.join(&file);
    let tgz = body(get(url.clone())?, &hint).await?;
    write(&archive, &tgz).await?;
    if w.provenance {
        let mut prov = url.clone();
        prov.set_path(&format!("{}.prov", url.path()));
        let bytes = body(get(prov)?, &hint).await?;
        write(&dest.join(format!("{file}.prov")), &bytes).await?;
    }
    Ok(archive)
}

fn client(ca_file: Option<&Path>, timeout: Duration) -> Result<reqwest::Client, DownloadError> {
    // reqwest is built without a default rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("chartbroker/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let other = |e: String| DownloadError::Other(format!("ca_file {}: {e}", ca.display()));
        let pem = std::fs::read(ca).map_err(|e| other(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| other(e.to_string()))?;
        if certs.is_empty() {
            return Err(other("holds no certificate".into()));
        }
        b = b.tls_certs_only(certs);
    }
    b.build()
        .map_err(|e| DownloadError::Other(format!("building the HTTP client: {e}")))
}

/// Sends the request and reads the body, at most [`MAX_BYTES`].
async fn body(
    (url, req): (Url, reqwest::RequestBuilder),
    hint: &str,
) -> Result<Vec<u8>, DownloadError> {
    let mut resp = req
        .send()
        .await
        .map_err(|e| DownloadError::Other(format!("{url} cannot be reached: {}", chain(&e))))?;
    let status = resp.status();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(DownloadError::Auth {
            url: url.to_string(),
            status: status.to_string(),
            hint: hint.to_string(),
        });
    }
    if !status.is_success() {
        return Err(DownloadError::Other(format!("{url}: {status}")));
    }
    let mut kept = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| DownloadError::Other(format!("{url}: {}", chain(&e))))?
    {
        if kept.len() + chunk.len() > MAX_BYTES {
            return Err(DownloadError::Other(format!(
                "{url}: larger than the limit of {MAX_BYTES} bytes"
            )));
        }
        kept.extend_from_slice(&chunk);
    }
    Ok(kept)
}

async fn write(path: &Path, bytes: &[u8]) -> Result<(), DownloadError> {
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| DownloadError::Other(format!("writing {}: {e}", path.display())))
}

/// An error with its causes (reqwest's own message is only "error sending
/// request"); none of them holds a header.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
