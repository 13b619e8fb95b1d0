//! The typed settings of one `upstreams:` entry.
//!
//! The catalog only interprets an entry's `name`; everything else is parsed
//! here. Secrets are never written in the catalog: a password or token is
//! named by an environment variable or a file, and read each time a request
//! is made (so a rotated file takes effect without a restart). Nothing this
//! module holds is secret, and the values it reads are wrapped in
//! [`SecretString`], whose `Debug` prints `<redacted>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::duration::Secs;

use serde::Deserialize;
use serde_json::Value;

use crate::catalog::Upstream;
use crate::credentials::{BasicDoc, BearerDoc, SecretString, Source, basic_header, bearer_header};

/// Defaults.
const DEFAULT_TIMEOUT: f64 = 30.0;
const DEFAULT_API_VERSION: &str = "2.17";
const DEFAULT_POLL_INITIAL: f64 = 2.0;
const DEFAULT_POLL_MAX: f64 = 30.0;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_REFRESH: f64 = 300.0;

/// One upstream broker, ready to build a client from.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamConfig {
    /// Name plans refer to.
    pub(crate) name: String,
    /// Base URL (`https://broker.example/prefix`), no trailing slash.
    pub(crate) url: String,
    /// How to authenticate.
    pub(crate) auth: Option<Auth>,
    /// The operator accepts sending `auth` over plain `http://`.
    pub(crate) allow_insecure_http: bool,
    /// PEM CA bundle to trust instead of the system roots.
    pub(crate) ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS.
    pub(crate) client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    pub(crate) client_key_file: Option<PathBuf>,
    /// Timeout of one HTTP request (connect, send, read the whole answer).
    pub(crate) timeout: Duration,
    /// `X-Broker-API-Version` sent upstream.
    pub(crate) api_version: String,
    /// Backoff between `last_operation` polls and between retries.
    pub(crate) poll: Backoff,
    /// How often a deprovision, unbind, update or credentials fetch is
    /// retried after a transient failure before the operation fails.
    pub(crate) retries: u32,
    /// Import the upstream's catalog, when set.
    pub(crate) import: Option<Import>,
    /// How often an imported catalog is fetched again.
    pub(crate) refresh: Duration,
    /// `organization_guid`/`space_guid` to send when the platform sent none
    /// (each unset one is derived, see [`super::guids`]).
    pub(crate) guids: super::guids::Fixed,
}

/// Credentials for the upstream broker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Auth {
    /// HTTP basic.
    Basic {
        /// User name.
        username: Source,
        /// Password (never inline).
        password: Source,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token (never inline).
        token: Source,
    },
}

/// Exponential backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    /// First delay.
    pub(crate) initial: Duration,
    /// Largest delay (doubling stops here).
    pub(crate) max: Duration,
}

/// Which services of the upstream catalog are imported, and how they are
/// renamed.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Import {
    /// Service names (or ids) to import; with `tags`, either matches.
    pub(crate) services: Vec<String>,
    /// Import services carrying any of these tags.
    pub(crate) tags: Vec<String>,
    /// Prepended to imported service and plan ids.
    pub(crate) id_prefix: String,
    /// Prepended to imported service names.
    pub(crate) name_prefix: String,
}

impl Import {
    /// Whether an upstream service with this id, name and tags is imported.
    pub(crate) fn selects(&self, id: &str, name: &str, tags: &[String]) -> bool {
        if self.services.is_empty() && self.tags.is_empty() {
            return true;
        }
        self.services.iter().any(|s| s == name || s == id)
            || tags.iter().any(|t| self.tags.contains(t))
    }
}

// The document, as written under `upstreams:` (minus `name`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    url: Option<String>,
    url_env: Option<String>,
    auth: Option<AuthDoc>,
    allow_insecure_http: Option<bool>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    timeout_seconds: Option<Secs>,
    api_version: Option<String>,
    poll: Option<PollDoc>,
    retries: Option<u32>,
    import: Option<ImportDoc>,
    refresh_seconds: Option<Secs>,
    organization_guid: Option<String>,
    space_guid: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum AuthDoc {
    Basic(BasicDoc),
    Bearer(BearerDoc),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollDoc {
    initial_seconds: Option<Secs>,
    max_seconds: Option<Secs>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportDoc {
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    id_prefix: String,
    #[serde(default)]
    name_prefix: String,
}

// === impl UpstreamConfig ===

impl UpstreamConfig {
    /// Parses an `upstreams:` entry. Relative file paths are resolved against
    /// `base` (the catalog directory). `url_env`, when set in the
    /// environment, overrides `url`. Errors list every problem found.
    pub fn parse(upstream: &Upstream, base: &Path) -> Result<UpstreamConfig, Vec<String>> {
        Self::parse_with_env(upstream, base, &|k| std::env::var(k).ok())
    }

    fn parse_with_env(
        upstream: &Upstream,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<UpstreamConfig, Vec<String>> {
        let mut doc: Doc = serde_json::from_value(Value::Object(upstream.settings.clone()))
            .map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let url = checked_url(&doc, env, &mut problems);

        let auth = doc.auth.take().and_then(|a| match a {
            AuthDoc::Basic(b) => b
                .sources("auth.basic", base, &mut problems)
                .map(|(username, password)| Auth::Basic { username, password }),
            AuthDoc::Bearer(b) => b
                .source("auth.bearer", base, &mut problems)
                .map(|token| Auth::Bearer { token }),
        });

        // Loopback is not exempt: a sidecar or port-forward on 127.0.0.1
        // is the operator's call to make, in writing, like any other host.
        let allow_insecure_http = doc.allow_insecure_http.unwrap_or(false);
        let plain_http = reqwest::Url::parse(&url).is_ok_and(|u| u.scheme() == "http");
        if auth.is_some() && !allow_insecure_http && plain_http {
            problems.push(format!(
                "url {url:?} is plain http:// but `auth:` would send credentials over it, readable by anyone on the way; \
                 use https://, or set `allow_insecure_http: true` on this upstream to accept that"
            ));
        }
        if doc.client_cert_file.is_some() != doc.client_key_file.is_some() {
            problems.push("client_cert_file and client_key_file go together".into());
        }
        let (timeout, poll, refresh) = timings(&doc, &mut problems);
        let api_version = checked_version(&doc, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(UpstreamConfig {
            name: upstream.name.clone(),
            url,
            auth,
            allow_insecure_http,
            ca_file: doc.ca_file.map(resolve),
            client_cert_file: doc.client_cert_file.map(resolve),
            client_key_file: doc.client_key_file.map(resolve),
            timeout,
            api_version,
            poll,
            retries: doc.retries.unwrap_or(DEFAULT_RETRIES),
            import: doc.import.map(|i| Import {
                services: i.services,
                tags: i.tags,
                id_prefix: i.id_prefix,
                name_prefix: i.name_prefix,
            }),
            refresh,
            guids: super::guids::Fixed {
                organization: doc.organization_guid,
                space: doc.space_guid,
            },
        })
    }

    /// Whether credentials go over plain HTTP (which `allow_insecure_http`
    /// must have allowed).
    pub(crate) fn credentials_in_clear(&self) -> bool {
        self.auth.is_some() && reqwest::Url::parse(&self.url).is_ok_and(|u| u.scheme() == "http")
    }

    /// Reads the configured credentials now (env or file) and renders the
    /// `Authorization` header value; `None` without `auth:`.
    pub(crate) fn authorization(&self) -> Result<Option<SecretString>, String> {
        match &self.auth {
            None => Ok(None),
            Some(Auth::Basic { username, password }) => basic_header(username, password).map(Some),
            Some(Auth::Bearer { token }) => bearer_header(token).map(Some),
        }
    }
}

/// The upstream's URL (from `url_env` or `url`), trimmed of a trailing `/`;
/// empty, with a problem noted, where it is missing or not plain HTTP(S).
fn checked_url(
    doc: &Doc,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> String {
    let url = match (&doc.url_env, &doc.url) {
        (Some(var), fallback) => match env(var).filter(|v| !v.trim().is_empty()) {
            Some(v) => Some(v),
            None if fallback.is_some() => fallback.clone(),
            None => {
                problems.push(format!(
                    "url_env: environment variable {var} is not set and there is no `url` to fall back to"
                ));
                None
            }
        },
        (None, Some(url)) => Some(url.clone()),
        (None, None) => {
            problems.push("`url` (or `url_env`) is required".into());
            None
        }
    };
    let url = url
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    if !url.is_empty() {
        match reqwest::Url::parse(&url) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                problems.push(format!("url {url:?} must be http:// or https://"))
            }
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                problems.push("url must not carry credentials; put them under `auth:`".into())
            }
            Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                problems.push("url must not have a query or fragment".into())
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("url {url:?} is not a URL: {e}")),
        }
    }
    url
}

/// The timeout, poll backoff and refresh interval, each within (0, 24h].
fn timings(doc: &Doc, problems: &mut Vec<String>) -> (Duration, Backoff, Duration) {
    let mut seconds = |what: &str, v: Option<Secs>, default: f64| -> Duration {
        let v = v.map_or(Duration::from_secs_f64(default), |s| s.0);
        if v > Duration::ZERO && v <= Duration::from_secs(86_400) {
            v
        } else {
            problems.push(format!(
                "{what} is {}: it must be above 0 and at most 24h",
                crate::duration::format(v)
            ));
            Duration::from_secs_f64(default)
        }
    };
    let timeout = seconds("timeout_seconds", doc.timeout_seconds, DEFAULT_TIMEOUT);
    let (pi, pm) = doc
        .poll
        .as_ref()
        .map(|p| (p.initial_seconds, p.max_seconds))
        .unwrap_or_default();
    let poll = Backoff {
        initial: seconds("poll.initial_seconds", pi, DEFAULT_POLL_INITIAL),
        max: seconds(
            "poll.max_seconds",
            pm,
            DEFAULT_POLL_MAX.max(pi.map_or(0.0, |d| d.0.as_secs_f64())),
        ),
    };
    let refresh = seconds("refresh_seconds", doc.refresh_seconds, DEFAULT_REFRESH);
    if poll.max < poll.initial {
        problems.push("poll.max_seconds must not be below poll.initial_seconds".into());
    }
    (timeout, poll, refresh)
}

/// The OSB version to speak (2.x); also refuses empty GUID overrides.
fn checked_version(doc: &Doc, problems: &mut Vec<String>) -> String {
    let api_version = doc
        .api_version
        .clone()
        .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
    let valid_version = api_version
        .split_once('.')
        .is_some_and(|(a, b)| a == "2" && b.parse::<u32>().is_ok());
    if !valid_version {
        problems.push(format!(
            "api_version {api_version:?} must be an OSB 2.x version like \"2.17\""
        ));
    }
    for (field, v) in [
        ("organization_guid", &doc.organization_guid),
        ("space_guid", &doc.space_guid),
    ] {
        if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
            problems.push(format!(
                "{field} must not be empty (leave it out to derive it)"
            ));
        }
    }
    api_version
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn settings(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn up(v: Value) -> Upstream {
        Upstream {
            name: "cloud".into(),
            settings: settings(v),
        }
    }

    fn parse(v: Value) -> Result<UpstreamConfig, Vec<String>> {
        UpstreamConfig::parse_with_env(&up(v), Path::new("/cat"), &|k| {
            (k == "SET").then(|| "https://from-env.example/".to_owned())
        })
    }

    #[test]
    fn defaults() {
        let c = parse(json!({"url": "https://b.example/osb/"})).unwrap();
        assert_eq!(c.url, "https://b.example/osb");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.api_version, "2.17");
        assert_eq!(c.poll.initial, Duration::from_secs(2));
        assert_eq!(c.poll.max, Duration::from_secs(30));
        assert_eq!(c.retries, 3);
        assert!(c.auth.is_none() && c.import.is_none());
    }

    #[test]
    fn url_env_overrides_url_and_falls_back() {
        let c = parse(json!({"url": "http://127.0.0.1:9090", "url_env": "SET"})).unwrap();
        assert_eq!(c.url, "https://from-env.example");
        let c = parse(json!({"url": "http://127.0.0.1:9090", "url_env": "UNSET"})).unwrap();
        assert_eq!(c.url, "http://127.0.0.1:9090");
        let e = parse(json!({"url_env": "UNSET"})).unwrap_err();
        assert!(e[0].contains("UNSET"), "{e:?}");
    }

    #[test]
    fn full_settings() {
        let c = parse(json!({
            "url": "https://b.example",
            "auth": {"basic": {"username": "u", "password_file": "secrets/pw"}},
            "ca_file": "ca.pem",
            "client_cert_file": "/abs/c.pem",
            "client_key_file": "k.pem",
            "timeout_seconds": 2.5,
            "api_version": "2.16",
            "poll": {"initial_seconds": 0.1, "max_seconds": 1},
            "retries": 1,
            "import": {"services": ["redis"], "tags": ["cache"], "id_prefix": "x-"},
            "refresh_seconds": 60,
            "space_guid": "space-of-the-operator"
        }))
        .unwrap();
        assert_eq!(c.guids.organization, None);
        assert_eq!(c.guids.space.as_deref(), Some("space-of-the-operator"));
        assert_eq!(
            c.auth,
            Some(Auth::Basic {
                username: Source::Inline("u".into()),
                password: Source::File("/cat/secrets/pw".into()),
            })
        );
        assert_eq!(c.ca_file, Some(PathBuf::from("/cat/ca.pem")));
        assert_eq!(c.client_cert_file, Some(PathBuf::from("/abs/c.pem")));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.poll.initial, Duration::from_millis(100));
        let i = c.import.unwrap();
        assert!(i.selects("id", "redis", &[]));
        assert!(i.selects("id", "other", &["cache".into()]));
        assert!(!i.selects("id", "other", &["sql".into()]));
        assert_eq!(c.refresh, Duration::from_secs(60));
    }

    #[test]
    fn durations_read_as_texts_too() {
        let c = parse(json!({
            "url": "https://b.example",
            "timeout_seconds": "1m30s",
            "poll": {"initial_seconds": "250ms", "max_seconds": "1m"},
            "refresh_seconds": "1h",
        }))
        .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(90));
        assert_eq!(c.poll.initial, Duration::from_millis(250));
        assert_eq!(c.poll.max, Duration::from_secs(60));
        assert_eq!(c.refresh, Duration::from_secs(3600));
        let e = parse(json!({"url": "https://b", "timeout_seconds": "5 minutes"})).unwrap_err();
        assert!(e[0].contains("\"5 minutes\" is not a duration"), "{e:?}");
        let e = parse(json!({"url": "https://b", "refresh_seconds": "25h"})).unwrap_err();
        assert!(
            e[0].contains("refresh_seconds is 25h: it must be above 0 and at most 24h"),
            "{e:?}"
        );
    }

    #[test]
    fn rejects_inline_passwords_and_other_mistakes() {
        let e = parse(
            json!({"url": "https://b", "auth": {"basic": {"username": "u", "password": "p"}}}),
        )
        .unwrap_err();
        assert!(e[0].contains("password"), "{e:?}");
        let e = parse(json!({"url": "https://u:p@b.example"})).unwrap_err();
        assert!(e[0].contains("credentials"), "{e:?}");
        let e = parse(json!({
            "url": "ftp://b", "timeout_seconds": 0, "client_cert_file": "c",
            "api_version": "3.0", "auth": {"bearer": {}}
        }))
        .unwrap_err();
        assert_eq!(e.len(), 5, "{e:?}");
        let e = parse(json!({"url": "https://b", "organization_guid": " "})).unwrap_err();
        assert!(e[0].contains("organization_guid"), "{e:?}");
        let e = parse(
            json!({"url": "https://b", "auth": {"bearer": {"token_env": "A", "token_file": "f"}}}),
        )
        .unwrap_err();
        assert!(e[0].contains("only one"), "{e:?}");
    }

    #[test]
    fn credentials_over_plain_http_need_the_operators_consent() {
        let basic = json!({"basic": {"username": "u", "password_env": "P"}});
        let bearer = json!({"bearer": {"token_file": "t"}});
        for url in [
            "http://127.0.0.1:9090",
            "HTTP://[::1]:9090",
            "http://broker.example",
        ] {
            for auth in [&basic, &bearer] {
                let e = parse(json!({"url": url, "auth": auth})).unwrap_err();
                assert_eq!(e.len(), 1, "{e:?}");
                assert!(
                    e[0].contains("plain http://") && e[0].contains("allow_insecure_http: true"),
                    "{e:?}"
                );
                let c =
                    parse(json!({"url": url, "auth": auth, "allow_insecure_http": true})).unwrap();
                assert!(c.allow_insecure_http && c.auth.is_some());
            }
            // Without credentials there is nothing to protect.
            assert!(parse(json!({"url": url})).is_ok());
        }
        // url_env can't slip plain http past the check.
        let e = UpstreamConfig::parse_with_env(
            &up(json!({"url": "https://b.example", "url_env": "U", "auth": basic})),
            Path::new("/cat"),
            &|_| Some("http://b.example".to_owned()),
        )
        .unwrap_err();
        assert!(e[0].contains("plain http://"), "{e:?}");
        assert!(parse(json!({"url": "https://b.example", "auth": basic})).is_ok());
    }

    #[test]
    fn credentials_are_read_late_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "t0ken-value\n").unwrap();
        let c = UpstreamConfig::parse(
            &up(json!({"url": "https://b", "auth": {"bearer": {"token_file": "token"}}})),
            dir.path(),
        )
        .unwrap();
        let h = c.authorization().unwrap().unwrap();
        assert_eq!(h.expose(), "Bearer t0ken-value");
        assert_eq!(format!("{h:?}"), "<redacted>");
        assert!(!format!("{c:?}").contains("t0ken-value"));
        std::fs::remove_file(dir.path().join("token")).unwrap();
        assert!(c.authorization().unwrap_err().contains("cannot read"));
    }
}
