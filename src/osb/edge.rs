//! The middleware of the HTTP edge: one plain tower layer, [`EdgeLayer`],
//! around each route. Around every route it echoes the request identity,
//! counts, times and logs; around the OSB routes it also authenticates
//! (401), checks the API version (412), then the originating identity
//! (400), in that order.
//!
//! One layer where there were two (and five before that): axum wraps each
//! layer around each route as a boxed service that it clones, with its
//! future, on every request, and its `from_fn` boxes a future too; that
//! cost more than the work itself.
//!
//! What it passes a request on to is a [`Handoff`]: an axum route
//! ([`Routed`], the checks put on the request for its extractors) or the
//! catalog, which takes them as an argument; [`Edge::serve`] is the same
//! work for [`super::App`], which answers the catalog's GET before
//! routing. The inner future must be `Unpin` (axum's route futures are),
//! so the edge's own needs no pin projection.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::access;
use super::auth::{self, LiveCredentials};
use super::error::{ApiError, InternalDetail};
use super::headers::{self, Checked, Found, OriginIdentity};
use crate::broker::trust::Trust;
use crate::metrics::Metrics;

/// The edge around a group of routes (see [`Edge`]).
#[derive(Clone)]
pub struct EdgeLayer {
    metrics: Arc<Metrics>,
    osb: Option<Arc<LiveCredentials>>,
}

impl EdgeLayer {
    /// Observing only: health, metrics, the dashboard and the fallback.
    pub fn observe(metrics: Arc<Metrics>) -> Self {
        EdgeLayer { metrics, osb: None }
    }

    /// Observing and the OSB checks against `credentials`: the `/v2` routes.
    pub fn osb(metrics: Arc<Metrics>, credentials: Arc<LiveCredentials>) -> Self {
        EdgeLayer {
            metrics,
            osb: Some(credentials),
        }
    }

    /// The edge around `inner`, the route `route`, which takes the checks'
    /// outcome directly.
    pub(crate) fn around<H: Handoff>(&self, route: &'static str, inner: H) -> Edge<H> {
        Edge {
            inner,
            edge: self.clone(),
            route: Some(route),
        }
    }

    /// The edge's work on `req`, with `route` its label (else the route
    /// axum matched), handing the request on with `pass`.
    fn serve<F>(
        &self,
        route: Option<&'static str>,
        req: Request,
        pass: impl FnOnce(Request, Option<Checked>) -> F,
    ) -> EdgeFuture<F> {
        // Timed from here, the checks included, as when they were a layer
        // of their own inside the observing one.
        let started = Instant::now();
        let found = Found::scan(req.headers());
        let route = match route {
            Some(r) => Label::Fixed(r),
            None => req
                .extensions()
                .get::<MatchedPath>()
                .map_or(Label::Unmatched, |m| Label::Matched(m.clone())),
        };
        let line = access_logged().then(|| AccessLine::of(route.as_str(), &req, &found));
        let checked = self
            .osb
            .as_deref()
            .map(|credentials| check(credentials, &found, &req));
        let mut seen = Seen {
            echo: found.request_identity.cloned(),
            method: req.method().clone(),
            route,
            line,
            caller: None,
            metrics: self.metrics.clone(),
            started,
        };
        let answer = match checked {
            None => Answer::Inner(pass(req, None)),
            Some(Ok(checked)) => {
                if seen.line.is_some() {
                    seen.caller = Some(checked.identity.1.clone());
                }
                Answer::Inner(pass(req, Some(checked)))
            }
            Some(Err(refused)) => Answer::Refused(Some(refused.into_response())),
        };
        EdgeFuture(answer, Some(seen))
    }
}

impl<S> Layer<S> for EdgeLayer
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
    S::Future: Unpin,
{
    type Service = Edge<Routed<S>>;
    fn layer(&self, inner: S) -> Edge<Routed<S>> {
        Edge {
            inner: Routed(inner),
            edge: self.clone(),
            route: None,
        }
    }
}

/// What an [`Edge`] passes a request on to, with what its OSB checks found
/// (`None` around the routes that are not OSB's).
pub trait Handoff: Clone {
    /// The answer's future.
    type Future: Future<Output = Result<Response, Infallible>> + Unpin;

    /// Whether it can take a request (as [`Service::poll_ready`]).
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Answers `req`.
    fn handoff(&mut self, req: Request, checked: Option<Checked>) -> Self::Future;
}

/// An axum route behind the edge: the checks go on the request, where its
/// extractors ([`crate::api_version::ApiVersion`], [`OriginIdentity`])
/// find them. An extension is an allocation and a map insert per request;
/// the catalog's route takes them directly instead.
#[derive(Clone)]
pub struct Routed<S>(S);

impl<S> Handoff for Routed<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
    S::Future: Unpin,
{
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn handoff(&mut self, mut req: Request, checked: Option<Checked>) -> S::Future {
        if let Some(c) = checked {
            req.extensions_mut().insert(c);
        }
        self.0.call(req)
    }
}

/// Echoes `X-Broker-API-Request-Identity` on every response, as the spec
/// recommends, so platforms can correlate; counts, times and logs every
/// request (the access log, target `chartbroker::access`, INFO), 401s and
/// 404s included; logs the detail of internal errors, which the client is
/// never shown. Never logs the `Authorization` header or bodies, which
/// carry credentials; of the originating identity only the user's name; of
/// the platform credential its name (a user's name, a token's or
/// certificate's `name`). What only the log line shows is worked out only
/// when the line is written.
///
/// Around the OSB routes, answers 401 unless the request carries valid
/// credentials, 412 without a supported `X-Broker-API-Version`, 400 for a
/// malformed originating identity; otherwise puts the
/// [`crate::api_version::ApiVersion`] and the [`OriginIdentity`] (with the
/// credential's trust) as one [`Checked`] to the [`Handoff`].
#[derive(Clone)]
pub struct Edge<H> {
    inner: H,
    edge: EdgeLayer,
    /// The route's label when the edge is built for one route.
    route: Option<&'static str>,
}

/// The OSB checks of a request whose headers are `found`.
fn check(
    credentials: &LiveCredentials,
    found: &Found<'_>,
    req: &Request,
) -> Result<Checked, ApiError> {
    let trust = auth::authenticate(credentials, found.authorization, req.extensions())?;
    let version = headers::api_version(found.api_version)?;
    let identity = headers::originating_identity(found.originating_identity)?;
    Ok(Checked {
        version,
        identity: OriginIdentity(identity, trust),
    })
}

impl<H> Edge<H> {
    /// What [`Service::call`] does, for a holder that can't lend `&mut`
    /// ([`super::App`]): `pass` answers with the inner by reference.
    pub(crate) fn serve<F>(
        &self,
        req: Request,
        pass: impl FnOnce(&H, Request, Option<Checked>) -> F,
    ) -> EdgeFuture<F> {
        self.edge.serve(self.route, req, |req, checked| {
            pass(&self.inner, req, checked)
        })
    }
}

impl<H: Handoff> Service<Request> for Edge<H> {
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<H::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let Edge { inner, edge, route } = self;
        edge.serve(*route, req, |req, checked| inner.handoff(req, checked))
    }
}

/// Whether the access log is on (its callsite's interest is cached).
fn access_logged() -> bool {
    tracing::enabled!(target: "chartbroker::access", tracing::Level::INFO)
}

/// A request's route, as its metrics and access line label it.
enum Label {
    /// The edge's own route.
    Fixed(&'static str),
    /// The route axum matched.
    Matched(MatchedPath),
    /// None matched.
    Unmatched,
}

impl Label {
    fn as_str(&self) -> &str {
        match self {
            Label::Fixed(r) => r,
            Label::Matched(m) => m.as_str(),
            Label::Unmatched => "unmatched",
        }
    }
}

/// What [`Edge`] notes of a request before passing it on.
struct Seen {
    echo: Option<HeaderValue>,
    method: Method,
    route: Label,
    line: Option<AccessLine>,
    /// The credential's trust, kept only for the access line.
    caller: Option<Arc<Trust>>,
    metrics: Arc<Metrics>,
    started: Instant,
}

impl Seen {
    fn finish(self, mut resp: Response) -> Response {
        let took = self.started.elapsed();
        let status = resp.status().as_u16();
        let (route, method) = (self.route.as_str(), &self.method);
        self.metrics.served(route, method, status, took);
        if let Some(InternalDetail(detail)) = resp.extensions().get::<InternalDetail>() {
            tracing::error!(%route, %method, status, error = %detail, "internal error");
        }
        if let Some(l) = self.line {
            let platform = self.caller.as_ref().map(|t| t.name.as_str());
            tracing::info!(target: "chartbroker::access", %method, %route, status,
                duration_ms = took.as_secs_f64() * 1000.0,
                instance_id = l.ids.instance_id.as_deref().map(tracing::field::display),
                binding_id = l.ids.binding_id.as_deref().map(tracing::field::display),
                request_identity = l.request_identity.as_deref(), user = l.user.as_deref(),
                platform, "request");
        }
        if let Some(id) = self.echo {
            resp.headers_mut()
                .insert(headers::REQUEST_IDENTITY.clone(), id);
        }
        resp
    }
}

/// A refusal of the OSB checks, or the route's answer.
enum Answer<F> {
    Refused(Option<Response>),
    Inner(F),
}

/// The future of [`Edge`].
pub struct EdgeFuture<F>(Answer<F>, Option<Seen>);

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let resp = match &mut this.0 {
            Answer::Refused(r) => r.take().expect("polled after completion"),
            Answer::Inner(f) => {
                let Ok(resp) = ready!(Pin::new(f).poll(cx));
                resp
            }
        };
        let seen = this.1.take().expect("polled after completion");
        Poll::Ready(Ok(seen.finish(resp)))
    }
}

/// What the access line shows of a request beyond method, route and status.
struct AccessLine {
    ids: access::Ids,
    request_identity: Option<String>,
    user: Option<String>,
}

impl AccessLine {
    fn of(route: &str, req: &Request, found: &Found<'_>) -> AccessLine {
        AccessLine {
            ids: access::ids(route, req.uri().path()),
            request_identity: access::header_text(found.request_identity),
            user: access::user(found.originating_identity),
        }
    }
}
