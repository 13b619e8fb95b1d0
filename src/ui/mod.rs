//! The operator's read-only dashboard under `/ui/`: instances, one
//! instance's operations and bindings, the catalog and the broker's
//! health, as server-rendered HTML that works without JavaScript.
//!
//! # Layout
//! - [`html`]: escaping (every string a chart, tenant or upstream wrote
//!   goes through [`html::esc`]), the page frame, times.
//! - [`links`]: per-instance signed links, returned as `dashboard_url`.
//! - [`instances`]: the instances table and an instance's page;
//!   [`detail`]: its release revisions, redacted manifests and users.
//! - [`status`]: catalog and health pages; [`charts`]: the health page's
//!   inline SVG charts; [`upstreams`]: cached reachability probes.
//! - [`live`]: Server-Sent Events with instance states, and the static files.
//!
//! Access: the dashboard's own credential (or the broker's, configured)
//! opens every page; a signed link opens its instance's page only. Every
//! answer carries strict headers: no inline script, no framing, no caching.

pub(crate) mod charts;
pub(crate) mod detail;
pub mod html;
pub(crate) mod instances;
pub mod links;
pub(crate) mod live;
pub(crate) mod masking;
pub(crate) mod status;
pub(crate) mod upstreams;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use crate::broker::Broker;
use crate::metrics::Metrics;
use crate::store::health::StoreHealth;

/// Who may open the dashboard.
pub(crate) enum UiCredential {
    /// Its own basic-auth user (read-only: the dashboard changes nothing).
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// Any credential the broker accepts on `/v2`.
    Broker,
}

impl std::fmt::Debug for UiCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UiCredential::Basic { user, .. } => write!(f, "Basic({user:?}, <redacted>)"),
            UiCredential::Broker => f.write_str("Broker"),
        }
    }
}

/// The dashboard's settings.
pub struct Ui {
    /// Who may open every page.
    pub(crate) credential: UiCredential,
    /// Signs per-instance links (`dashboard_url`), when a public URL is set.
    pub links: Option<links::LinkSigner>,
    /// The store in use, as the health page names it.
    pub(crate) store: String,
    /// The release engine, as the instances table names it.
    pub(crate) engine: String,
    /// Where releases' revisions and manifests are read.
    pub(crate) releases: Option<Arc<dyn crate::releases::inspect::ReleaseRecords>>,
    /// The upstream brokers the health page probes.
    pub(crate) upstreams: Option<Arc<crate::upstream::Upstreams>>,
    /// Their last probes.
    pub(crate) probes: upstreams::Probes,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("credential", &self.credential)
            .field("links", &self.links)
            .field("store", &self.store)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// Checks an `Authorization` header against the broker's own credentials.
pub(crate) type BrokerCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// What the dashboard's handlers share.
#[derive(Clone)]
pub(crate) struct UiState {
    /// Settings.
    pub(crate) ui: Arc<Ui>,
    /// The core, read only.
    pub(crate) broker: Broker,
    /// Counters shown on the health page.
    pub(crate) metrics: Arc<Metrics>,
    /// Readiness.
    pub(crate) ready: Arc<AtomicBool>,
    /// Unreadable store records.
    pub(crate) store_health: Arc<StoreHealth>,
    /// The broker's credential check ([`UiCredential::Broker`]).
    pub(crate) broker_check: BrokerCheck,
}

/// What a request may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Every page.
    Full,
    /// One instance's page, by signed link.
    Instance(String),
}

/// The signed-link part of a query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LinkQuery {
    /// Unix seconds the link expires at.
    pub(crate) expires: Option<String>,
    /// Its signature.
    pub(crate) sig: Option<String>,
}

/// The dashboard's routes, for merging into the broker's application.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(state: UiState) -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/instances") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/instances") }))
        .route("/ui/instances", get(instances::list))
        .route("/ui/instances/{id}", get(instances::show))
        .route("/ui/catalog", get(status::catalog))
        .route("/ui/health", get(status::health))
        .route("/ui/events", get(live::events))
        .route("/ui/static/ui.css", get(live::css))
        .route("/ui/static/live.js", get(live::script))
        .route("/ui/static/icon.svg", get(live::icon))
        .layer(axum::middleware::map_response(strict_headers))
        .with_state(state)
}

/// What every dashboard answer carries.
async fn strict_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // A signed link is a bearer credential: never send it on as a referrer.
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

impl UiState {
    /// What this request may see: the credential opens everything, a valid
    /// signed link for `instance` that instance only. 401 without either,
    /// 403 for a link that is wrong, expired or for another instance.
    pub(crate) fn access(
        &self,
        headers: &HeaderMap,
        instance: Option<&str>,
        link: &LinkQuery,
    ) -> Result<Access, Denied> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if auth.is_some() && self.credential_ok(auth) {
            return Ok(Access::Full);
        }
        if link.sig.is_some() || link.expires.is_some() {
            let (Some(id), Some(signer)) = (instance, &self.ui.links) else {
                return Err(Denied::Forbidden);
            };
            let expires = link.expires.as_deref().and_then(|e| e.parse::<u64>().ok());
            let (Some(expires), Some(sig)) = (expires, link.sig.as_deref()) else {
                return Err(Denied::Forbidden);
            };
            return match signer.check(id, expires, sig, crate::broker::now()) {
                Ok(()) => Ok(Access::Instance(id.to_owned())),
                Err(_) => Err(Denied::Forbidden),
            };
        }
        Err(Denied::Unauthorized)
    }

    fn credential_ok(&self, auth: Option<&str>) -> bool {
        match &self.ui.credential {
            UiCredential::Broker => (self.broker_check)(auth),
            UiCredential::Basic { user, password } => {
                let Some(value) = auth else { return false };
                let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
                if !scheme.eq_ignore_ascii_case("basic") {
                    return false;
                }
                use base64::Engine as _;
                let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim())
                else {
                    return false;
                };
                let expected = format!("{user}:{password}");
                let a = ring::digest::digest(&ring::digest::SHA256, &decoded);
                let b = ring::digest::digest(&ring::digest::SHA256, expected.as_bytes());
                bool::from(a.as_ref().ct_eq(b.as_ref()))
            }
        }
    }
}

/// Why a request sees nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No valid credential and no link: 401 with a sign-in prompt.
    Unauthorized,
    /// A link that is wrong, expired or for something else: 403.
    Forbidden,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Unauthorized => unauthorized(),
            Denied::Forbidden => forbidden(),
        }
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"chartbroker dashboard\", charset=\"UTF-8\"",
        )],
        html_body(html::page(
            "Sign in",
            false,
            "<p>This dashboard needs its credential.</p>",
        )),
    )
        .into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        html_body(html::page(
            "Link not valid",
            false,
            "<p>This link is not valid for this page, or it has expired.</p>",
        )),
    )
        .into_response()
}

/// An HTML answer.
pub(crate) fn html_body(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// A 500 page that names no internals.
pub(crate) fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        html_body(html::page(
            "Error",
            false,
            "<p>The broker could not read its records.</p>",
        )),
    )
        .into_response()
}

/// The dashboard's flags, as given.
#[derive(Default)]
pub struct UiSettings {
    /// Its own user.
    pub username: Option<String>,
    /// Its own password.
    pub password: Option<String>,
    /// Accept the broker's `/v2` credentials instead.
    pub broker_credentials: bool,
    /// Where the broker is reached from outside; without it no
    /// `dashboard_url` is returned.
    pub public_url: Option<String>,
    /// A file holding the link key (at least 32 bytes); without it a
    /// random key per process.
    pub link_key_file: Option<std::path::PathBuf>,
    /// The link key itself (at least 32 bytes).
    pub link_key: Option<String>,
    /// How long a signed link stays valid.
    pub link_ttl: std::time::Duration,
}

impl Ui {
    /// The dashboard from its flags: it needs a credential, its own or the
    /// broker's, and never opens without one.
    pub fn configure(s: UiSettings) -> anyhow::Result<Ui> {
        let credential = match (s.username, s.password, s.broker_credentials) {
            (_, _, true) => UiCredential::Broker,
            (Some(user), Some(password), false) if !user.is_empty() && password.len() >= 8 => {
                UiCredential::Basic { user, password }
            }
            _ => anyhow::bail!(
                "--ui needs --ui-username and --ui-password (at least 8 characters), \
                 or --ui-broker-credentials"
            ),
        };
        let ttl = s.link_ttl.as_secs().max(1);
        let key =
            match (s.link_key, s.link_key_file) {
                (Some(k), _) => Some(k.into_bytes()),
                (None, Some(path)) => Some(std::fs::read(&path).map_err(|e| {
                    anyhow::anyhow!("dashboard link key file {}: {e}", path.display())
                })?),
                (None, None) => None,
            };
        let links = match (s.public_url, key) {
            (None, _) => None,
            (Some(url), Some(key)) => Some(links::LinkSigner::new(&key, &url, ttl)?),
            (Some(url), None) => Some(links::LinkSigner::random(&url, ttl)?),
        };
        Ok(Ui {
            credential,
            links,
            store: String::new(),
            engine: String::new(),
            releases: None,
            upstreams: None,
            probes: upstreams::Probes::default(),
        })
    }
}
