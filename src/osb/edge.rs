//! The two middlewares of the HTTP edge, each one layer where there were
//! five, and each a plain tower service: axum's `from_fn` boxes a future
//! and a service and clones its inner service on every request, which
//! here cost more than the work itself.
//!
//! - [`ObserveLayer`], around every route: the request identity echo,
//!   metrics and the access log;
//! - [`V2Layer`], around the OSB routes: authentication (401), the API
//!   version (412), then the originating identity (400), in that order.
//!
//! Both require the inner future to be `Unpin` (axum's route futures are),
//! so their own futures need no pin projection.

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
use super::auth::{self, Caller, LiveCredentials};
use super::error::{ApiError, InternalDetail};
use super::headers::{self, Checked, OriginIdentity};
use crate::broker::trust::Trust;
use crate::metrics::Metrics;

/// The OSB routes' checks (see [`V2`]).
#[derive(Clone)]
pub struct V2Layer(pub Arc<LiveCredentials>);

impl<S> Layer<S> for V2Layer {
    type Service = V2<S>;
    fn layer(&self, inner: S) -> V2<S> {
        V2 {
            inner,
            credentials: self.0.clone(),
        }
    }
}

/// 401 unless the request carries valid credentials, 412 without a
/// supported `X-Broker-API-Version`, 400 for a malformed originating
/// identity; otherwise puts the [`crate::api_version::ApiVersion`] and the
/// [`OriginIdentity`] (with the credential's trust) on the request as one
/// [`Checked`], and the trust ([`Caller`]) on the response when the access
/// log shows it.
#[derive(Clone)]
pub struct V2<S> {
    inner: S,
    credentials: Arc<LiveCredentials>,
}

impl<S> V2<S> {
    fn check(&self, req: &mut Request) -> Result<Arc<Trust>, ApiError> {
        let trust = auth::authenticate(&self.credentials, req)?;
        let version = headers::api_version(req.headers())?;
        let identity = headers::originating_identity(req.headers())?;
        req.extensions_mut().insert(Checked {
            version,
            identity: OriginIdentity(identity, trust.clone()),
        });
        Ok(trust)
    }
}

impl<S> Service<Request> for V2<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = V2Future<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        match self.check(&mut req) {
            // The response carries the trust only for the access line.
            Ok(trust) => V2Future::Inner(self.inner.call(req), access_logged().then_some(trust)),
            Err(refused) => V2Future::Refused(Some(refused.into_response())),
        }
    }
}

/// The future of [`V2`]: a refusal, or the route's answer.
pub enum V2Future<F> {
    Refused(Option<Response>),
    Inner(F, Option<Arc<Trust>>),
}

impl<F> Future for V2Future<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            V2Future::Refused(r) => Poll::Ready(Ok(r.take().expect("polled after completion"))),
            V2Future::Inner(f, trust) => {
                let Ok(mut resp) = ready!(Pin::new(f).poll(cx));
                if let Some(t) = trust.take() {
                    resp.extensions_mut().insert(Caller(t));
                }
                Poll::Ready(Ok(resp))
            }
        }
    }
}

/// Metrics, the access log and the request identity echo (see [`Observe`]).
#[derive(Clone)]
pub struct ObserveLayer(pub Arc<Metrics>);

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.0.clone(),
        }
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
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        let line = access_logged()
            .then(|| AccessLine::of(route.as_ref().map_or(UNMATCHED, MatchedPath::as_str), &req));
        let seen = Seen {
            echo: req.headers().get(&headers::REQUEST_IDENTITY).cloned(),
            method: req.method().clone(),
            route,
            line,
            metrics: self.metrics.clone(),
            started: Instant::now(),
        };
        ObserveFuture(self.inner.call(req), Some(seen))
    }
}

/// Whether the access log is on (its callsite's interest is cached).
fn access_logged() -> bool {
    tracing::enabled!(target: "chartbroker::access", tracing::Level::INFO)
}

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// What [`Observe`] notes of a request before passing it on.
struct Seen {
    echo: Option<HeaderValue>,
    method: Method,
    route: Option<MatchedPath>,
    line: Option<AccessLine>,
    metrics: Arc<Metrics>,
    started: Instant,
}

impl Seen {
    fn finish(self, mut resp: Response) -> Response {
        let took = self.started.elapsed();
        let status = resp.status().as_u16();
        let (route, method) = (
            self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
            &self.method,
        );
        self.metrics.served(route, method, status, took);
        if let Some(InternalDetail(detail)) = resp.extensions().get::<InternalDetail>() {
            tracing::error!(%route, %method, status, error = %detail, "internal error");
        }
        if let Some(l) = self.line {
            let platform = resp.extensions().get::<Caller>().map(|c| c.0.name.as_str());
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

/// The future of [`Observe`].
pub struct ObserveFuture<F>(F, Option<Seen>);

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Ok(resp) = ready!(Pin::new(&mut this.0).poll(cx));
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
    fn of(route: &str, req: &Request) -> AccessLine {
        AccessLine {
            ids: access::ids(route, req.uri().path()),
            request_identity: access::header_text(req.headers().get(&headers::REQUEST_IDENTITY)),
            user: access::user(req.headers().get(&headers::ORIGINATING_IDENTITY)),
        }
    }
}
