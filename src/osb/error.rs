//! The one place where errors become OSB responses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::broker::BrokerError;

/// Errors the edge answers with. Core errors pass through [`ApiError::Broker`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A core error; see each [`BrokerError`] variant for its status.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// 400 `{"error": "BadRequest", ...}`: malformed JSON, query or header.
    #[error("{0}")]
    BadRequest(String),
    /// 401 with `WWW-Authenticate`.
    #[error("authentication required")]
    Unauthorized {
        /// Whether bearer tokens are accepted too (adds a challenge).
        bearer: bool,
    },
    /// 412 `{"error": "PreconditionFailed"}`: missing or unsupported
    /// `X-Broker-API-Version`.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: the body exceeds the limit.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 404 for a route that does not exist.
    #[error("no such route")]
    NoRoute,
    /// 405 for a route that exists without this method (axum adds `Allow`).
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
}

/// The detail of a 500, kept in the response extensions so the logging
/// middleware can log what the client is not told.
#[derive(Clone, Debug)]
pub(crate) struct InternalDetail(pub String);

fn body(error: Option<&str>, description: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(e) = error {
        m.insert("error".into(), json!(e));
    }
    // The spec requires a non-empty description when present.
    let d = if description.trim().is_empty() {
        "request failed"
    } else {
        description
    };
    m.insert("description".into(), json!(d));
    m
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = self.to_string();
        let (status, map) = match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, body(Some("BadRequest"), &text)),
            ApiError::Unauthorized { bearer } => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    Json(body(Some("Unauthorized"), &text)),
                )
                    .into_response();
                let h = r.headers_mut();
                h.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"chartbroker\", charset=\"UTF-8\""),
                );
                if bearer {
                    h.append(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"chartbroker\""),
                    );
                }
                return r;
            }
            ApiError::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                body(Some("PreconditionFailed"), &text),
            ),
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(Some("PayloadTooLarge"), &text),
            ),
            ApiError::NoRoute => (StatusCode::NOT_FOUND, body(Some("NotFound"), &text)),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                body(Some("MethodNotAllowed"), &text),
            ),
            ApiError::Broker(BrokerError::Internal(detail)) => {
                // Never echo internals; the logging middleware picks the
                // detail up from the extensions.
                let mut r = (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(body(
                        Some("InternalError"),
                        "internal error in the broker; the broker's log has the details",
                    )),
                )
                    .into_response();
                r.extensions_mut().insert(InternalDetail(detail));
                return r;
            }
            ApiError::Broker(e) => broker_error(e),
        };
        (status, Json(map)).into_response()
    }
}

fn broker_error(e: BrokerError) -> (StatusCode, Map<String, Value>) {
    let text = e.to_string();
    match e {
        BrokerError::BadRequest(_) => (StatusCode::BAD_REQUEST, body(Some("BadRequest"), &text)),
        BrokerError::NotFound(_) => (StatusCode::NOT_FOUND, body(Some("NotFound"), &text)),
        BrokerError::Conflict(_) => (StatusCode::CONFLICT, body(Some("Conflict"), &text)),
        BrokerError::Forbidden(_) => (StatusCode::FORBIDDEN, body(Some("Forbidden"), &text)),
        BrokerError::Gone(_) => (StatusCode::GONE, body(Some("Gone"), &text)),
        BrokerError::AsyncRequired => (
            StatusCode::UNPROCESSABLE_ENTITY,
            body(Some("AsyncRequired"), &text),
        ),
        BrokerError::Concurrency(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            body(Some("ConcurrencyError"), &text),
        ),
        BrokerError::MaintenanceInfoConflict(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            body(Some("MaintenanceInfoConflict"), &text),
        ),
        BrokerError::PlanChangeNotSupported(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            body(Some("PlanChangeNotSupported"), &text),
        ),
        BrokerError::Unprocessable(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            body(Some("UnprocessableEntity"), &text),
        ),
        BrokerError::OperationFailed { error, with_flags } => {
            let mut m = body(Some("OperationFailed"), &error.message);
            if with_flags {
                if let Some(u) = error.instance_usable {
                    m.insert("instance_usable".into(), json!(u));
                }
                if let Some(r) = error.update_repeatable {
                    m.insert("update_repeatable".into(), json!(r));
                }
            }
            (StatusCode::INTERNAL_SERVER_ERROR, m)
        }
        BrokerError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            body(Some("ServiceUnavailable"), &text),
        ),
        BrokerError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            body(Some("InternalError"), "internal error"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    /// Every variant's wire result, in one place: status and `error` key.
    #[tokio::test]
    async fn every_broker_error_has_one_pinned_wire_result() {
        use crate::broker::ports::BackendError;
        let m = || "why".to_string();
        let table: Vec<(BrokerError, StatusCode, &str)> = vec![
            (
                BrokerError::BadRequest(m()),
                StatusCode::BAD_REQUEST,
                "BadRequest",
            ),
            (
                BrokerError::NotFound(m()),
                StatusCode::NOT_FOUND,
                "NotFound",
            ),
            (
                BrokerError::Forbidden(m()),
                StatusCode::FORBIDDEN,
                "Forbidden",
            ),
            (BrokerError::Conflict(m()), StatusCode::CONFLICT, "Conflict"),
            (BrokerError::Gone(m()), StatusCode::GONE, "Gone"),
            (
                BrokerError::AsyncRequired,
                StatusCode::UNPROCESSABLE_ENTITY,
                "AsyncRequired",
            ),
            (
                BrokerError::Concurrency(m()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "ConcurrencyError",
            ),
            (
                BrokerError::MaintenanceInfoConflict(m()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "MaintenanceInfoConflict",
            ),
            (
                BrokerError::PlanChangeNotSupported(m()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "PlanChangeNotSupported",
            ),
            (
                BrokerError::Unprocessable(m()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "UnprocessableEntity",
            ),
            (
                BrokerError::OperationFailed {
                    error: BackendError::new("helm said no"),
                    with_flags: false,
                },
                StatusCode::INTERNAL_SERVER_ERROR,
                "OperationFailed",
            ),
            (
                BrokerError::Unavailable(m()),
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
            ),
            (
                BrokerError::Internal(m()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
            ),
        ];
        for (e, status, key) in table {
            let name = format!("{e:?}");
            let resp = ApiError::Broker(e).into_response();
            assert_eq!(resp.status(), status, "{name}");
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"], key, "{name}: {body}");
            assert!(
                !body["description"].as_str().unwrap_or("").is_empty(),
                "{name}: an error says why: {body}"
            );
        }
    }

    #[tokio::test]
    async fn an_internal_error_body_names_nothing_of_its_detail() {
        let detail = "plan plan-large of instance i-secret-detail: corrupt record at key k";
        let resp = ApiError::Broker(BrokerError::Internal(detail.into())).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        assert!(
            keys.iter().all(|k| k == "error" || k == "description"),
            "{body}"
        );
        assert!(!body["description"].as_str().unwrap().is_empty());
        for leak in ["plan-large", "i-secret-detail", "corrupt", "key k"] {
            assert!(
                !body.to_string().contains(leak),
                "the 500 leaks {leak:?}: {body}"
            );
        }
    }
}
