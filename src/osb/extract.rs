//! Extractors whose rejections are OSB error bodies, so malformed requests
//! get the same shape of answer as every other failure.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::broker::BrokerError;

/// Largest request body accepted; OSB bodies are small.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body parsed whatever the `Content-Type` (the spec lets brokers
/// accept bodies without one). Unknown fields are ignored by the DTOs.
pub(crate) struct OsbJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OsbJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(BODY_LIMIT)
            } else {
                ApiError::BadRequest(format!("could not read the request body: {r}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(OsbJson)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
    }
}

/// Query parameters with an OSB-shaped rejection. `T`'s fields must all be
/// strings (as every OSB query parameter is).
///
/// A parameter repeated with the same value counts once: osb-checker-kotlin
/// sends `?service_id=X` in the path and adds `service_id=X` again when it
/// unbinds, and a plain struct deserializer refuses the duplicate. Repeated
/// with different values it is ambiguous, so still a 400.
pub(crate) struct OsbQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for OsbQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let invalid = |e: String| ApiError::BadRequest(format!("invalid query string: {e}"));
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| invalid(e.body_text()))?;
        let mut params = serde_json::Map::new();
        for (key, value) in pairs {
            match params.get(&key) {
                Some(seen) if seen.as_str() != Some(value.as_str()) => {
                    return Err(invalid(format!(
                        "parameter {key:?} is given more than once with different values"
                    )));
                }
                Some(_) => {}
                None => {
                    params.insert(key, serde_json::Value::String(value));
                }
            }
        }
        serde_json::from_value(serde_json::Value::Object(params))
            .map(OsbQuery)
            .map_err(|e| invalid(e.to_string()))
    }
}

/// Path parameters with an OSB-shaped rejection. axum's own `Path` answers
/// an id that is not UTF-8 once percent-decoded (`/v2/service_instances/%FF`)
/// with a `text/plain` 400, which breaks the rule that every error is an OSB
/// error body with a `description`.
pub(crate) struct OsbPath<T>(pub T);

impl<S, T> FromRequestParts<S> for OsbPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| OsbPath(p))
            .map_err(|e| {
                if e.status().is_client_error() {
                    ApiError::BadRequest(e.body_text())
                } else {
                    // A route whose parameters don't fit its handler: our bug.
                    ApiError::Broker(BrokerError::Internal(e.body_text()))
                }
            })
    }
}

/// Refuses, with 400, a request whose `instance_id` or `binding_id` path
/// segment (percent-decoded) could not safely name a record: see
/// [`crate::names::check_id`]. Runs on every instance and binding
/// route, GETs included, after authentication.
pub(crate) async fn valid_ids(
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    // Ids that are not UTF-8 once decoded get OsbPath's own 400.
    if let Ok(params) = params {
        for (name, value) in &params {
            if name == "instance_id" || name == "binding_id" {
                if let Err(why) = crate::names::check_id(name, value) {
                    return ApiError::BadRequest(why).into_response();
                }
            }
        }
    }
    next.run(req).await
}

/// `accepts_incomplete` as the spec means it: only `true` is true.
pub(crate) fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

/// Empty strings count as absent.
pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}
