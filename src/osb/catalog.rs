//! `GET /v2/catalog`

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::api_version::ApiVersion;
use crate::broker::Broker;

/// Routes of this resource group.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v2/catalog", get(catalog))
}

/// The catalog body and its `ETag` are serialized once when the catalog
/// loads; each request shares their bytes (no copy, no allocation of ours).
/// An `ETag` lets platforms skip unchanged catalogs.
async fn catalog(State(broker): State<Broker>, version: ApiVersion, req: Request) -> Response {
    let catalog = broker.catalog();
    // `Catalog::etag` is already a quoted entity-tag; quoting it again sent
    // `""hex""`, which is not a valid ETag (RFC 7232 §2.3).
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, catalog.etag_for(version)));
    let etag = HeaderValue::from_maybe_shared(catalog.etag_bytes_for(version))
        .expect("an ETag is a valid header value");
    if not_modified {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
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
