//! `GET /v2/catalog`
//!
//! The route is a [`Handoff`] inside the OSB edge, the one boxed service
//! axum makes of it: no handler, extractors or state to clone, the checks'
//! outcome passed directly rather than as a request extension, and a ready
//! future. It is the path platforms poll, and what bare axum is measured
//! against (`scripts/bench.sh`).

use std::convert::Infallible;
use std::future::{Ready, ready};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get_service;

use super::edge::{Edge, EdgeLayer, Handoff};
use super::error::ApiError;
use super::headers::Checked;
use crate::broker::{Broker, BrokerError};

/// The route's path.
pub(crate) const ROUTE: &str = "/v2/catalog";

/// The catalog's GET inside `edge`: the route's service, and what
/// [`super::App`] answers that GET with before routing.
pub(crate) fn service(broker: Broker, edge: &EdgeLayer) -> Edge<Catalog> {
    edge.around(ROUTE, Catalog(broker))
}

/// Routes of this resource group: `get` (from [`service`]), and the 405s
/// inside `edge`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    get: Edge<Catalog>,
    edge: &EdgeLayer,
) -> Router<S> {
    Router::new().route(
        ROUTE,
        get_service(get)
            .fallback_service(edge.around(ROUTE, Refuse(|| ApiError::MethodNotAllowed))),
    )
}

/// Answers `GET /v2/catalog` from the broker's catalog in force.
#[derive(Clone)]
pub(crate) struct Catalog(Broker);

impl Catalog {
    /// The answer to `req`, which passed the edge's checks with `checked`.
    pub(crate) fn answer(
        &self,
        req: &Request,
        checked: Option<Checked>,
    ) -> Ready<Result<Response, Infallible>> {
        ready(Ok(answer(&self.0, req, checked.as_ref())))
    }
}

impl Handoff for Catalog {
    type Future = Ready<Result<Response, Infallible>>;

    fn handoff(&mut self, req: Request, checked: Option<Checked>) -> Self::Future {
        self.answer(&req, checked)
    }
}

/// Answers every request with the error `make` gives.
#[derive(Clone)]
struct Refuse(fn() -> ApiError);

impl Handoff for Refuse {
    type Future = Ready<Result<Response, Infallible>>;

    fn handoff(&mut self, _: Request, _: Option<Checked>) -> Self::Future {
        ready(Ok((self.0)().into_response()))
    }
}

/// The catalog body and its `ETag` are serialized once when the catalog
/// loads; each request shares their bytes (no copy, no allocation of ours).
/// An `ETag` lets platforms skip unchanged catalogs.
fn answer(broker: &Broker, req: &Request, checked: Option<&Checked>) -> Response {
    let Some(checked) = checked else {
        return ApiError::Broker(BrokerError::Internal(
            "the catalog ran without the edge's checks".into(),
        ))
        .into_response();
    };
    let version = checked.version;
    let catalog = broker.catalog();
    // `Catalog::etag` is already a quoted entity-tag; quoting it again sent
    // `""hex""`, which is not a valid ETag (RFC 7232 §2.3).
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, catalog.etag_for(version)));
    let etag = catalog.etag_header_for(version);
    if not_modified {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
        ],
        catalog.osb_body_for(version),
    )
        .into_response()
}

/// Whether an `If-None-Match` value matches `etag`. RFC 7232 §3.2 requires
/// the weak comparison here (a `W/` prefix is ignored, as proxies that
/// re-encode bodies weaken tags) and `*` matches any current representation.
fn none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.strip_prefix("W/").unwrap_or(etag)
    })
}
