//! Credentials for private chart sources (`chart.auth` in the catalog).
//!
//! Written like an upstream broker's `auth:`: a password or token is never
//! in the catalog, only the environment variable or file holding it, read
//! again at each fetch (a rotated Secret takes effect without a restart).
//! What this module holds names where secrets are; the values it reads are
//! [`SecretString`]s, whose `Debug` prints `<redacted>`.
//!
//! None of it reaches helm's command line: an HTTPS repository's chart is
//! downloaded by the broker itself with the `Authorization` header (see
//! [`super::download`]), and an OCI registry's credentials go to helm in a
//! registry config file readable only by the broker, removed after the pull.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub(crate) use crate::catalog::ChartAuth;
pub(crate) use crate::credentials::{SecretString, Source};
use crate::credentials::{basic_header, bearer_header};

impl ChartAuth {
    /// The `Authorization` header value, read now.
    pub(crate) fn header(&self) -> Result<SecretString, String> {
        match self {
            ChartAuth::Basic { username, password } => basic_header(username, password),
            ChartAuth::Bearer { token } => bearer_header(token),
            ChartAuth::DockerConfig(p) => Err(format!(
                "docker_config {} is for OCI registries, not HTTPS repositories",
                p.display()
            )),
        }
    }

    /// A registry config file's contents (docker `config.json` format, as
    /// helm reads it) holding only the credentials for `host` (`name[:port]`).
    pub(crate) fn registry_config(&self, host: &str) -> Result<SecretString, String> {
        let entry = match self {
            ChartAuth::Basic { username, password } => {
                let (u, p) = (username.read()?, password.read()?);
                let pair = format!("{}:{}", u.expose(), p.expose());
                json!({"auth": STANDARD.encode(pair)})
            }
            ChartAuth::DockerConfig(path) => docker_entry(path, host)?,
            ChartAuth::Bearer { .. } => {
                return Err("bearer tokens are for HTTPS repositories, not OCI registries".into());
            }
        };
        Ok(SecretString::new(
            json!({"auths": {host: entry}}).to_string(),
        ))
    }

    /// The secret values as they are now (for a registry, those of the
    /// `host` entry), to redact from what helm prints; none that can't be
    /// read.
    pub(crate) fn secret_values(&self, host: &str) -> Vec<String> {
        let read = |s: &Source| s.read().map(|v| v.expose().to_owned()).ok();
        match self {
            ChartAuth::Basic { password, .. } => read(password).into_iter().collect(),
            ChartAuth::Bearer { token } => read(token).into_iter().collect(),
            ChartAuth::DockerConfig(path) => {
                let Ok(entry) = docker_entry(path, host) else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                for key in ["auth", "password", "identitytoken", "registrytoken"] {
                    if let Some(v) = entry.get(key).and_then(Value::as_str) {
                        out.push(v.to_owned());
                    }
                }
                let decoded = (entry.get("auth").and_then(Value::as_str))
                    .and_then(|a| STANDARD.decode(a).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                if let Some((_, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                    out.push(password.to_owned());
                }
                out
            }
        }
    }
}

/// The `auths` entry of a docker config for `host`. Keys are written many
/// ways (`host`, `https://host`, `https://host/v1/`); credential helpers
/// (`credsStore`, `credHelpers`) are not run.
fn docker_entry(path: &Path, host: &str) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // serde_json's errors name a line and column, never the text there.
    let doc: Value = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a docker config (JSON): {e}", path.display()))?;
    let key_host = |k: &str| {
        let k = k
            .strip_prefix("https://")
            .or_else(|| k.strip_prefix("http://"))
            .unwrap_or(k);
        k.split('/').next().unwrap_or(k).to_string()
    };
    let found = doc
        .get("auths")
        .and_then(Value::as_object)
        .and_then(|auths| auths.iter().find(|(k, _)| key_host(k) == host))
        .map(|(_, v)| v.clone());
    match found {
        Some(v @ Value::Object(_)) => Ok(v),
        _ => Err(format!(
            "{} has no `auths` entry for {host} (credential helpers are not used)",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_registry_configs_hold_the_secret_but_debug_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("password");
        std::fs::write(&p, "s3cret-pass\n").unwrap();
        let a = ChartAuth::Basic {
            username: Source::Inline("u".into()),
            password: Source::File(p.clone()),
        };
        let h = a.header().unwrap();
        assert_eq!(
            h.expose(),
            format!("Basic {}", STANDARD.encode("u:s3cret-pass"))
        );
        assert_eq!(format!("{h:?}"), "<redacted>");
        assert!(!format!("{a:?}").contains("s3cret"));
        let c: Value = serde_json::from_str(a.registry_config("r:5000").unwrap().expose()).unwrap();
        assert_eq!(
            c["auths"]["r:5000"]["auth"],
            STANDARD.encode("u:s3cret-pass")
        );

        let docker = dir.path().join("config.json");
        std::fs::write(
            &docker,
            json!({"auths": {"other:1": {"auth": "eA=="}, "https://r:5000/v1/": {"auth": "dTpw"}}})
                .to_string(),
        )
        .unwrap();
        let d = ChartAuth::DockerConfig(docker.clone());
        let c: Value = serde_json::from_str(d.registry_config("r:5000").unwrap().expose()).unwrap();
        assert_eq!(c, json!({"auths": {"r:5000": {"auth": "dTpw"}}}));
        assert_eq!(d.secret_values("r:5000"), ["dTpw", "p"]);
        assert_eq!(a.secret_values("r:5000"), ["s3cret-pass"]);
        let e = d.registry_config("elsewhere:443").unwrap_err();
        assert!(e.contains("no `auths` entry for elsewhere:443"), "{e}");

        std::fs::write(
            &docker,
            r#"{"auths": {"r:5000": {"auth": "c2VjcmV0LXRva2Vu"#,
        )
        .unwrap();
        let e = d.registry_config("r:5000").unwrap_err();
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let missing = ChartAuth::Bearer {
            token: Source::Env("CHARTBROKER_TEST_UNSET_TOKEN".into()),
        };
        assert_eq!(
            missing.header().unwrap_err(),
            "environment variable CHARTBROKER_TEST_UNSET_TOKEN is not set"
        );
    }
}
