//! What comes back from an upstream broker: the reply and its body, the OSB
//! error it may carry, and the ways a call fails.

use super::*;

/// An OSB error body (`{"error": ..., "description": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsbError {
    /// Machine-readable code (`ConcurrencyError`, `AsyncRequired`, ...).
    pub(crate) error: Option<String>,
    /// User-facing message.
    pub(crate) description: Option<String>,
}

impl fmt::Display for OsbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, &self.description) {
            (Some(e), Some(d)) => write!(f, "{e}: {d}"),
            (Some(x), None) | (None, Some(x)) => f.write_str(x),
            (None, None) => Ok(()),
        }
    }
}

/// The body of an upstream answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// Nothing (or only whitespace).
    Empty,
    /// Valid JSON.
    Json(Value),
    /// Not JSON: why, with an excerpt.
    Malformed(String),
}

/// An upstream answer with any status.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub(crate) body: Body,
    /// `Retry-After`, when given in seconds.
    pub(crate) retry_after: Option<Duration>,
}

impl Reply {
    /// The body as a JSON object, or why it is not one.
    pub(crate) fn object(&self) -> Result<&Map<String, Value>, String> {
        match &self.body {
            Body::Json(Value::Object(m)) => Ok(m),
            Body::Json(other) => Err(format!("expected a JSON object, got {}", kind(other))),
            Body::Empty => Err("the body is empty".into()),
            Body::Malformed(why) => Err(why.clone()),
        }
    }

    /// The OSB error fields, if the body has any.
    pub(crate) fn osb_error(&self) -> Option<OsbError> {
        let m = self.object().ok()?;
        let text = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let e = OsbError {
            error: text("error"),
            description: text("description"),
        };
        (e.error.is_some() || e.description.is_some()).then_some(e)
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why a request to an upstream broker got no usable answer, or got one the
/// caller could not accept. Messages name the broker and never carry
/// credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream entry cannot be used (bad TLS files, missing secret).
    #[error("upstream broker {broker} is not usable: {detail}")]
    Config {
        /// Upstream name.
        broker: String,
        /// What is wrong.
        detail: String,
    },
    /// No connection could be made: the request never reached the broker.
    #[error("upstream broker {broker} is unreachable: {detail}")]
    Connect {
        /// Upstream name.
        broker: String,
        /// Why (connection refused, DNS, TLS handshake).
        detail: String,
    },
    /// No complete answer within the configured timeout.
    #[error("upstream broker {broker} did not answer within {after:?}")]
    Timeout {
        /// Upstream name.
        broker: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection broke after the request was sent.
    #[error("the connection to upstream broker {broker} broke before it answered: {detail}")]
    Transport {
        /// Upstream name.
        broker: String,
        /// What broke.
        detail: String,
    },
    /// An answer with a status the operation does not accept.
    #[error("upstream broker {broker} answered HTTP {code}{}", .error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Status {
        /// Upstream name.
        broker: String,
        /// HTTP status.
        code: u16,
        /// The OSB error body, if any.
        error: Option<OsbError>,
    },
    /// An instance or binding id that no URL path segment can carry
    /// unchanged: empty, `.` or `..` (URL parsers and proxies resolve those,
    /// also when percent-encoded). Nothing was sent.
    #[error(
        "upstream broker {broker} cannot be sent the id {id:?}: an empty, `.` or `..` id would change the request's path"
    )]
    UnsafeId {
        /// Upstream name.
        broker: String,
        /// The id.
        id: String,
    },
    /// An answer whose body is not the JSON the operation needs.
    #[error("upstream broker {broker} answered HTTP {status} with a malformed body: {detail}")]
    InvalidJson {
        /// Upstream name.
        broker: String,
        /// HTTP status.
        status: u16,
        /// What is wrong with it.
        detail: String,
    },
}

impl UpstreamError {
    /// Label for metrics and structured logs.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            UpstreamError::Config { .. } => "config",
            UpstreamError::UnsafeId { .. } => "unsafe_id",
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Transport { .. } => "transport",
            UpstreamError::Status { code, .. } if *code >= 500 => "status_5xx",
            UpstreamError::Status { .. } => "status",
            UpstreamError::InvalidJson { .. } => "invalid_json",
        }
    }

    /// Whether trying again later may help.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            UpstreamError::Config { .. } | UpstreamError::UnsafeId { .. } => false,
            UpstreamError::Status { code, .. } => *code >= 500 || *code == 408 || *code == 429,
            _ => true,
        }
    }

    /// Whether the upstream may have acted on the request although we got
    /// no acceptable answer: the spec's cases for orphan mitigation
    /// (timeouts, 5xx, other 2xx, malformed bodies). A refused connection
    /// or a 4xx means nothing was created.
    pub(crate) fn may_have_acted(&self) -> bool {
        match self {
            UpstreamError::Config { .. }
            | UpstreamError::UnsafeId { .. }
            | UpstreamError::Connect { .. } => false,
            UpstreamError::Timeout { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::InvalidJson { .. } => true,
            UpstreamError::Status { code, .. } => !(400..500).contains(code),
        }
    }
}

/// Whether the request surely never reached the upstream broker although a
/// connection was made: the TLS session failed (the TLS layer reports alerts
/// and untrusted certificates as I/O errors of kind `InvalidData`, which
/// plain HTTP/1 over TCP never produces; under TLS 1.3 a refused client
/// certificate only shows up after the handshake), or hyper cancelled the
/// request ("a pending item was dropped before ever being processed").
pub(super) fn never_sent(e: &reqwest::Error) -> bool {
    let https = e.url().is_some_and(|u| u.scheme() == "https");
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cur {
        let tls = c.is::<rustls::Error>()
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData);
        if (https && tls) || c.to_string().starts_with("operation was canceled") {
            return true;
        }
        cur = c.source();
    }
    false
}

/// A reqwest error's causes ("connection refused"), or the error itself.
pub(super) fn chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        let s = c.to_string();
        // hyper's wrapper ("client error (Connect)") says nothing useful.
        if !s.starts_with("client error (") && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

pub(super) enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

pub(super) async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

pub(super) fn parse_body(bytes: &[u8]) -> Body {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Body::Empty;
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => Body::Json(v),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes);
            let mut excerpt: String = text.chars().take(EXCERPT).collect();
            if text.chars().count() > EXCERPT {
                excerpt.push('…');
            }
            Body::Malformed(format!("not JSON ({e}): {excerpt:?}"))
        }
    }
}

/// `Retry-After` in seconds (the spec recommends a duration; an HTTP date
/// is ignored and the normal backoff applies).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}
