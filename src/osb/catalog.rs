//! `GET /v2/catalog`

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::broker::Broker;

/// Routes of this resource group.
pub fn router() -> Router<AppState> {
    Router::new().route("/v2/catalog", get(catalog))
}

/// The catalog body is serialized once when the catalog loads; each request
/// only copies bytes. An `ETag` lets platforms skip unchanged catalogs.
async fn catalog(State(broker): State<Broker>, headers: HeaderMap) -> Response {
    let catalog = broker.catalog();
    let etag = format!("\"{}\"", catalog.etag());
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::ETAG, etag),
        ],
        axum::body::Bytes::copy_from_slice(&catalog.osb_body()),
    )
        .into_response()
}
