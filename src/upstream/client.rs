//! The OSB client: the one place that speaks HTTP to upstream brokers.
//!
//! It sends what every OSB request needs (`X-Broker-API-Version`, the
//! credentials, the originating and request identities) and hands back the
//! status and the parsed body. Interpreting statuses is the caller's job,
//! because the right answer differs per operation (see the spec's orphan
//! mitigation table); transport failures come back as a typed
//! [`UpstreamError`].

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

use super::config::UpstreamConfig;
use crate::broker::model::OriginatingIdentity;
mod reply;
pub use reply::*;

/// Largest upstream answer read; anything longer is a malformed answer.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Longest excerpt of a malformed body quoted in a message.
const EXCERPT: usize = 120;
/// What stays literal in a path segment: RFC 3986's unreserved characters.
/// Everything else is percent-encoded, `%` included, so no id can end a
/// segment, start a query or fragment, or smuggle an encoded dot segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An OSB endpoint of the upstream broker.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    /// `/v2/catalog`
    Catalog,
    /// `/v2/service_instances/:id`
    Instance(&'a str),
    /// `/v2/service_instances/:id/last_operation`
    InstanceLastOperation(&'a str),
    /// `/v2/service_instances/:id/service_bindings/:binding_id`
    Binding(&'a str, &'a str),
    /// `/v2/service_instances/:id/service_bindings/:binding_id/last_operation`
    BindingLastOperation(&'a str, &'a str),
}

impl Endpoint<'_> {
    fn segments(&self) -> Vec<&str> {
        match *self {
            Endpoint::Catalog => vec!["v2", "catalog"],
            Endpoint::Instance(i) => vec!["v2", "service_instances", i],
            Endpoint::InstanceLastOperation(i) => {
                vec!["v2", "service_instances", i, "last_operation"]
            }
            Endpoint::Binding(i, b) => vec!["v2", "service_instances", i, "service_bindings", b],
            Endpoint::BindingLastOperation(i, b) => vec![
                "v2",
                "service_instances",
                i,
                "service_bindings",
                b,
                "last_operation",
            ],
        }
    }
}

/// Who a request is made for: passed on to the upstream broker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity<'a> {
    /// `X-Broker-API-Originating-Identity`, re-encoded.
    pub(crate) originating: Option<&'a OriginatingIdentity>,
    /// `X-Broker-API-Request-Identity`.
    pub(crate) request: Option<&'a str>,
}

/// A client for one upstream broker.
pub struct Client {
    cfg: UpstreamConfig,
    http: reqwest::Client,
    observer: Option<UpstreamObserver>,
}

/// Reports each upstream call: broker, method, outcome (the HTTP status, or
/// the error's metric label) and duration (for metrics).
pub(crate) type UpstreamObserver = std::sync::Arc<dyn Fn(&str, &str, &str, Duration) + Send + Sync>;

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.cfg.name)
            .field("url", &self.cfg.url)
            .finish_non_exhaustive()
    }
}

// === impl Client ===

impl Client {
    /// Builds the HTTP client: timeouts, no redirects (credentials must not
    /// follow one), the CA bundle and client certificate when configured.
    pub fn new(cfg: UpstreamConfig) -> Result<Client, String> {
        // reqwest is built without a default rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chartbroker/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("ca_file {} holds no certificate", ca.display()));
            }
            b = b.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&cfg.client_cert_file, &cfg.client_key_file) {
            let mut pem = std::fs::read(cert)
                .map_err(|e| format!("client_cert_file {}: {e}", cert.display()))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| format!("client_key_file {}: {e}", key.display()))?,
            );
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("client certificate {}: {e}", cert.display()))?;
            b = b.identity(id);
        }
        let http = b
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Client {
            cfg,
            http,
            observer: None,
        })
    }

    /// Report every call.
    pub(crate) fn with_observer(mut self, observer: Option<UpstreamObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The settings this client was built from.
    pub(crate) fn config(&self) -> &UpstreamConfig {
        &self.cfg
    }

    /// The upstream's name.
    pub(crate) fn name(&self) -> &str {
        &self.cfg.name
    }

    /// `GET /v2/catalog`.
    pub(crate) async fn catalog(&self) -> Result<Reply, UpstreamError> {
        self.send(
            reqwest::Method::GET,
            Endpoint::Catalog,
            &[],
            None,
            Identity::default(),
        )
        .await
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        method: reqwest::Method,
        endpoint: Endpoint<'_>,
        query: &[(&str, &str)],
        body: Option<&Value>,
        identity: Identity<'_>,
    ) -> Result<Reply, UpstreamError> {
        let url = self.url(endpoint, query)?;
        // The encoded path: ids as sent, and no control characters in logs.
        let path = url.path().to_owned();
        let headers = self.headers(identity)?;
        let mut req = self.http.request(method.clone(), url).headers(headers);
        if let Some(b) = body {
            req = req.json(b);
        }
        let started = Instant::now();
        let result: Result<Reply, UpstreamError> = async {
            let resp = req.send().await.map_err(|e| self.transport(e))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let bytes = read_limited(resp).await.map_err(|e| match e {
                ReadError::Http(e) => self.transport(e),
                ReadError::TooLarge => UpstreamError::InvalidJson {
                    broker: self.cfg.name.clone(),
                    status,
                    detail: format!("the body is larger than {MAX_BODY} bytes"),
                },
            })?;
            Ok(Reply {
                status,
                body: parse_body(&bytes),
                retry_after,
            })
        }
        .await;
        if let Some(o) = &self.observer {
            let outcome = match &result {
                Ok(r) => r.status.to_string(),
                Err(e) => e.metric_label().to_string(),
            };
            o(&self.cfg.name, method.as_str(), &outcome, started.elapsed());
        }
        match &result {
            Ok(r) => tracing::debug!(upstream = %self.cfg.name, %method, path, status = r.status,
                took_ms = started.elapsed().as_millis() as u64, "upstream call"),
            Err(e) => tracing::debug!(upstream = %self.cfg.name, %method, path, error = %e,
                label = e.metric_label(), "upstream call failed"),
        }
        result
    }

    fn url(
        &self,
        endpoint: Endpoint<'_>,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Url, UpstreamError> {
        let mut url =
            reqwest::Url::parse(&self.cfg.url).map_err(|e| self.config_error(e.to_string()))?;
        if url.cannot_be_a_base() {
            return Err(self.config_error("the url cannot have a path".into()));
        }
        // Built by hand: `path_segments_mut` drops `.`/`..` segments and
        // strips tabs and newlines, so such an id would change the path.
        let mut path = url.path().trim_end_matches('/').to_owned();
        for segment in endpoint.segments() {
            if matches!(segment, "" | "." | "..") {
                return Err(UpstreamError::UnsafeId {
                    broker: self.cfg.name.clone(),
                    id: segment.to_owned(),
                });
            }
            path.push('/');
            path.extend(percent_encoding::utf8_percent_encode(segment, SEGMENT));
        }
        url.set_path(&path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    fn headers(&self, identity: Identity<'_>) -> Result<HeaderMap, UpstreamError> {
        let mut h = HeaderMap::new();
        let value =
            |v: &str| HeaderValue::from_str(v).map_err(|e| self.config_error(e.to_string()));
        h.insert("x-broker-api-version", value(&self.cfg.api_version)?);
        h.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        if let Some(auth) = self.cfg.authorization().map_err(|e| self.config_error(e))? {
            let mut v = HeaderValue::from_str(auth.expose()).map_err(|_| {
                self.config_error("the credentials are not valid header text".into())
            })?;
            v.set_sensitive(true);
            h.insert(reqwest::header::AUTHORIZATION, v);
        }
        if let Some(id) = identity.originating {
            let json = serde_json::to_vec(&id.value).unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(json);
            if let Ok(v) = HeaderValue::from_str(&format!("{} {encoded}", id.platform)) {
                h.insert("x-broker-api-originating-identity", v);
            }
        }
        if let Some(rid) = identity.request.filter(|r| !r.is_empty()) {
            if let Ok(v) = HeaderValue::from_str(rid) {
                h.insert("x-broker-api-request-identity", v);
            }
        }
        Ok(h)
    }

    fn config_error(&self, detail: String) -> UpstreamError {
        UpstreamError::Config {
            broker: self.cfg.name.clone(),
            detail,
        }
    }

    fn transport(&self, e: reqwest::Error) -> UpstreamError {
        let broker = self.cfg.name.clone();
        if e.is_connect() || never_sent(&e) {
            UpstreamError::Connect {
                broker,
                detail: chain(&e),
            }
        } else if e.is_timeout() {
            UpstreamError::Timeout {
                broker,
                after: self.cfg.timeout,
            }
        } else {
            UpstreamError::Transport {
                broker,
                detail: chain(&e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies() {
        assert_eq!(parse_body(b"  \n"), Body::Empty);
        assert_eq!(parse_body(b"{\"a\":1}"), Body::Json(json!({"a": 1})));
        let Body::Malformed(why) = parse_body(b"<html>oops") else {
            panic!("garbage parsed")
        };
        assert!(why.contains("<html>oops"), "{why}");
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after(" 5 "), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn osb_errors() {
        let r = Reply {
            status: 422,
            body: Body::Json(json!({"error": "ConcurrencyError", "description": "busy"})),
            retry_after: None,
        };
        assert_eq!(r.osb_error().unwrap().to_string(), "ConcurrencyError: busy");
        let r = Reply {
            status: 409,
            body: Body::Json(json!({})),
            retry_after: None,
        };
        assert!(r.osb_error().is_none());
        assert!(r.object().is_ok());
    }

    #[test]
    fn error_classes() {
        let b = || "cloud".to_string();
        let status = |code| UpstreamError::Status {
            broker: b(),
            code,
            error: None,
        };
        assert!(status(500).may_have_acted() && status(500).is_transient());
        assert!(status(204).may_have_acted());
        assert!(!status(409).may_have_acted() && !status(409).is_transient());
        assert!(!status(408).may_have_acted() && status(408).is_transient());
        let refused = UpstreamError::Connect {
            broker: b(),
            detail: "refused".into(),
        };
        assert!(!refused.may_have_acted() && refused.is_transient());
        let slow = UpstreamError::Timeout {
            broker: b(),
            after: Duration::from_millis(1500),
        };
        assert!(slow.may_have_acted());
        assert_eq!(
            slow.to_string(),
            "upstream broker cloud did not answer within 1.5s"
        );
        assert_eq!(status(503).metric_label(), "status_5xx");
    }

    fn client(url: &str) -> Client {
        let cfg = UpstreamConfig::parse(
            &crate::catalog::Upstream {
                name: "cloud".into(),
                settings: json!({ "url": url }).as_object().unwrap().clone(),
            },
            std::path::Path::new("/"),
        )
        .unwrap();
        Client::new(cfg).unwrap()
    }

    /// Each id stays one segment, whatever it holds; what a URL parser or a
    /// proxy would resolve (`.`, `..`, `%2e%2e`, tab- or newline-split dots)
    /// is either encoded beyond resolving or refused before sending.
    #[test]
    fn ids_are_one_path_segment_each() {
        let c = client("https://b.example/osb");
        let encoded = [
            ("a/../../v2/catalog", "a%2F..%2F..%2Fv2%2Fcatalog"),
            ("x?y=1#z", "x%3Fy%3D1%23z"),
            ("%2e%2e", "%252e%252e"),
            ("%2F", "%252F"),
            (".\t.", ".%09."),
            (".\n.", ".%0A."),
            ("..\r", "..%0D"),
            ("a b", "a%20b"),
            ("...", "..."),
            (
                "é;:@!$&'()*+,=",
                "%C3%A9%3B%3A%40%21%24%26%27%28%29%2A%2B%2C%3D",
            ),
            ("\\server", "%5Cserver"),
        ];
        for (id, want) in encoded {
            let u = c.url(Endpoint::Binding(id, "b"), &[]).unwrap();
            assert_eq!(
                u.path(),
                format!("/osb/v2/service_instances/{want}/service_bindings/b"),
                "{id:?}"
            );
            let u = c.url(Endpoint::InstanceLastOperation(id), &[]).unwrap();
            assert_eq!(
                u.path(),
                format!("/osb/v2/service_instances/{want}/last_operation"),
                "{id:?}"
            );
            assert!(u.query().is_none() && u.fragment().is_none(), "{id:?}");
            let segs: Vec<_> = u.path_segments().unwrap().collect();
            assert_eq!(segs.len(), 5, "{id:?}: {segs:?}");
        }
        for id in ["", ".", ".."] {
            for e in [
                c.url(Endpoint::Instance(id), &[]).unwrap_err(),
                c.url(Endpoint::Binding("i", id), &[]).unwrap_err(),
            ] {
                assert!(matches!(e, UpstreamError::UnsafeId { .. }), "{id:?}: {e}");
                assert!(!e.may_have_acted() && !e.is_transient());
            }
        }
        // A base URL without a path prefix, and one ending in a slash.
        let u = client("https://b.example/")
            .url(Endpoint::Instance("i/1"), &[("plan_id", "p&q")])
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://b.example/v2/service_instances/i%2F1?plan_id=p%26q"
        );
    }

    #[test]
    fn urls_and_headers() {
        let cfg = UpstreamConfig::parse(
            &crate::catalog::Upstream {
                name: "cloud".into(),
                settings: json!({"url": "https://b.example/osb/", "api_version": "2.16",
                    "auth": {"basic": {"username": "u", "password_env": "CHARTBROKER_TEST_NEVER_SET"}}})
                .as_object()
                .unwrap()
                .clone(),
            },
            std::path::Path::new("/"),
        )
        .unwrap();
        let c = Client::new(cfg).unwrap();
        let u = c
            .url(Endpoint::Binding("i 1", "b/2"), &[("plan_id", "p")])
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://b.example/osb/v2/service_instances/i%201/service_bindings/b%2F2?plan_id=p"
        );
        let e = c.headers(Identity::default()).unwrap_err();
        assert_eq!(e.metric_label(), "config");
        assert!(e.to_string().contains("CHARTBROKER_TEST_NEVER_SET"), "{e}");
    }
}
