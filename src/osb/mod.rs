//! The HTTP edge: OSB routes, headers, authentication, and the one mapping
//! from errors to OSB responses.
//!
//! # Layout
//! - [`catalog`], [`instances`], [`bindings`]: one router per OSB resource group.
//! - [`headers`]: API version (412), originating identity, request identity.
//! - [`auth`]: basic, bearer and client-certificate authentication, each
//!   credential with its trust; [`credentials_file`]: the files that set them.
//! - [`extract`]: JSON and query extractors with OSB-shaped rejections.
//! - [`error`]: errors to status codes and bodies.
//! - `access`: what the access log shows of a request.
//! - `edge`: the middleware, one layer around each route: the request
//!   identity echo, metrics and the access log; around `/v2` also
//!   authentication, API version, originating identity (in that order).
//!   [`App`] runs it for the catalog's GET before routing.
//! - `secret`: passwords and tokens as compared in constant time.

mod access;
pub(crate) mod auth;
pub(crate) mod bindings;
pub(crate) mod catalog;
pub(crate) mod credentials_file;
mod edge;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod headers;
pub(crate) mod instances;
mod secret;

use std::convert::Infallible;
use std::future::{Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::broker::Broker;
use crate::metrics::Metrics;
use error::ApiError;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The core.
    pub broker: Broker,
    /// Who may call `/v2`.
    pub credentials: Arc<auth::LiveCredentials>,
    /// Metrics registry.
    pub(crate) metrics: Arc<Metrics>,
    /// Set once the store is open, the catalog loaded and operations resumed.
    pub(crate) ready: Arc<AtomicBool>,
    /// Store records this broker met and cannot open.
    pub(crate) store_health: Arc<crate::store::health::StoreHealth>,
    /// The operator's dashboard under `/ui/`, when turned on.
    pub(crate) ui: Option<Arc<crate::ui::Ui>>,
}

impl FromRef<AppState> for Broker {
    fn from_ref(s: &AppState) -> Broker {
        s.broker.clone()
    }
}

impl FromRef<AppState> for Arc<auth::LiveCredentials> {
    fn from_ref(s: &AppState) -> Self {
        s.credentials.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(s: &AppState) -> Self {
        s.metrics.clone()
    }
}

/// The whole HTTP application: the router, and the catalog's GET answered
/// before it.
///
/// Platforms poll `GET /v2/catalog`; routing it cost more than answering
/// it (the path lookup, the matched-path extension, the route's boxed
/// service cloned with its future, the content length as a header value),
/// so that one request is recognized by its method and exact path, as the
/// router matches it, and answered by the same edge and the same
/// [`catalog::Catalog`] the router's route holds. Every other request,
/// `HEAD` and the 405s of that path included, goes through the router. A
/// clone shares everything (one reference count).
#[derive(Clone)]
pub struct App(Arc<Parts>);

struct Parts {
    router: Router,
    /// The same service as the router's route for that GET.
    catalog: edge::Edge<catalog::Catalog>,
}

impl<B> tower::Service<Request<B>> for App
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AppFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> AppFuture {
        let parts = &*self.0;
        if req.method() == Method::GET && req.uri().path() == catalog::ROUTE {
            let req = req.map(axum::body::Body::new);
            return AppFuture::Catalog(
                parts
                    .catalog
                    .serve(req, |catalog, req, checked| catalog.answer(&req, checked)),
            );
        }
        AppFuture::Routed(parts.router.clone().call(req))
    }
}

/// The future of [`App`].
pub enum AppFuture {
    /// The catalog's GET.
    Catalog(edge::EdgeFuture<Ready<Result<Response, Infallible>>>),
    /// Any other request.
    Routed(axum::routing::future::RouteFuture<Infallible>),
}

impl Future for AppFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            AppFuture::Catalog(f) => Pin::new(f).poll(cx),
            AppFuture::Routed(f) => Pin::new(f).poll(cx),
        }
    }
}

/// The whole HTTP application.
pub(crate) fn app(state: AppState) -> App {
    // Only the routes that read a body carry its limit: the layer puts an
    // extension on every request it sees.
    let limit = || DefaultBodyLimit::max(extract::BODY_LIMIT);
    let osb = edge::EdgeLayer::osb(state.metrics.clone(), state.credentials.clone());
    let catalog = catalog::service(state.broker.clone(), &osb);
    let v2 = Router::new()
        .merge(instances::router().layer(limit()))
        .merge(bindings::router().layer(limit()))
        // axum's default 405 has an empty body; every error gets an OSB body.
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(osb.clone())
        // The catalog's route is built inside its edge (one boxed service
        // instead of two): merged after the layer, which would wrap it again.
        .merge(catalog::router(catalog.clone(), &osb));
    // Each route gets one edge layer: the OSB one, or this one (which also
    // wraps the fallback).
    let rest = Router::new()
        .merge(dashboard(&state))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NoRoute })
        .layer(edge::EdgeLayer::observe(state.metrics.clone()));
    App(Arc::new(Parts {
        router: rest.merge(v2).with_state(state),
        catalog,
    }))
}

/// The dashboard's routes (none when it is off); it checks the broker's
/// credentials through this module, which it can't use itself.
fn dashboard(state: &AppState) -> Router<AppState> {
    let Some(ui) = state.ui.clone() else {
        return Router::new();
    };
    let credentials = state.credentials.clone();
    crate::ui::router(crate::ui::UiState {
        ui,
        broker: state.broker.clone(),
        metrics: state.metrics.clone(),
        ready: state.ready.clone(),
        store_health: state.store_health.clone(),
        // Only a credential that reaches every namespace: the dashboard
        // shows every instance.
        broker_check: Arc::new(move |auth| {
            (credentials.current().check(auth.map(str::as_bytes), None))
                .is_some_and(|t| t.namespaces.is_none())
        }),
    })
}

/// The signed dashboard link of an instance, when links are configured.
pub(crate) fn dashboard_url(state: &AppState, instance_id: &str) -> Option<String> {
    let signer = state.ui.as_ref()?.links.as_ref()?;
    Some(signer.url(instance_id, crate::broker::now()))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(reason) = state.store_health.problem() {
        // Serving on would answer 503 for every record it can't open (or
        // take over operations it can't read): out of rotation until fixed.
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "store unreadable", "reason": reason})),
        )
            .into_response()
    } else if state.ready.load(Ordering::Acquire) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let m = &state.metrics;
    m.set_store_unreadable(state.store_health.unreadable_count());
    m.set_operations_in_progress(&state.broker.operations_running());
    // Prometheus asks for OpenMetrics; anything else (promtool, curl) gets
    // the classic text format.
    let open_metrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if open_metrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            m.encode(),
        )
    } else {
        ("text/plain; version=0.0.4; charset=utf-8", m.encode_text())
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
