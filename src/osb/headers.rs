//! The OSB headers: `X-Broker-API-Version` (checked), the originating
//! identity (decoded after authentication) and the request identity
//! (echoed); [`super::edge`] applies them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use base64::Engine as _;
use serde_json::Value;

use super::auth::Caller;
use super::error::ApiError;
use crate::api_version::ApiVersion;
use crate::broker::BrokerError;
use crate::broker::model::OriginatingIdentity;

/// `X-Broker-API-Version`.
pub(crate) static API_VERSION: HeaderName = HeaderName::from_static("x-broker-api-version");
/// `X-Broker-API-Originating-Identity`.
pub(crate) static ORIGINATING_IDENTITY: HeaderName =
    HeaderName::from_static("x-broker-api-originating-identity");
/// `X-Broker-API-Request-Identity`.
pub(crate) static REQUEST_IDENTITY: HeaderName =
    HeaderName::from_static("x-broker-api-request-identity");

/// The request headers the edge reads, each the first of its name (as
/// [`HeaderMap::get`] gives it), found in one pass over the map: a lookup
/// apiece hashed each name again, and cost more than the pass.
#[derive(Default)]
pub(crate) struct Found<'a> {
    pub(crate) authorization: Option<&'a HeaderValue>,
    pub(crate) api_version: Option<&'a HeaderValue>,
    pub(crate) originating_identity: Option<&'a HeaderValue>,
    pub(crate) request_identity: Option<&'a HeaderValue>,
}

impl<'a> Found<'a> {
    /// The headers of `map` the edge reads.
    pub(crate) fn scan(map: &'a HeaderMap) -> Found<'a> {
        let mut found = Found::default();
        for (name, value) in map {
            let slot = if name == header::AUTHORIZATION {
                &mut found.authorization
            } else if name == API_VERSION {
                &mut found.api_version
            } else if name == ORIGINATING_IDENTITY {
                &mut found.originating_identity
            } else if name == REQUEST_IDENTITY {
                &mut found.request_identity
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        found
    }
}

/// Lowest supported minor version of API major 2.
pub(crate) const MIN_MINOR: u32 = ApiVersion::MIN_MINOR;

/// The platform's supported `X-Broker-API-Version` (2.13 up to, not
/// including, 3.0), or 412, which conformance suites and the reference
/// frameworks expect (the spec also allows 400 for a missing header).
/// Responses carry only the fields the platform's version defines.
pub fn api_version(header: Option<&HeaderValue>) -> Result<ApiVersion, ApiError> {
    if let Some(v) = header.and_then(|h| ApiVersion::parse_usual(h.as_bytes())) {
        return Ok(v);
    }
    let value = header
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    ApiVersion::parse(value).ok_or_else(|| {
        let shown = if value.is_empty() {
            "none".to_string()
        } else {
            format!("{value:?}")
        };
        ApiError::PreconditionFailed(format!(
            "X-Broker-API-Version {shown} is not supported; this broker supports 2.{MIN_MINOR} up to 2.17 (any 2.x from 2.{MIN_MINOR})"
        ))
    })
}

/// The decoded originating identity, if the request carries one; a
/// malformed header is a 400. Checked after authentication so an
/// unauthenticated request is always a 401.
pub fn originating_identity(
    header: Option<&HeaderValue>,
) -> Result<Option<OriginatingIdentity>, ApiError> {
    // An empty header carries no identity; treat it as absent rather than
    // failing requests from clients that always send the header.
    let header = header.filter(|h| !h.as_bytes().iter().all(u8::is_ascii_whitespace));
    let Some(h) = header else {
        return Ok(None);
    };
    h.to_str()
        .map_err(|_| "not ASCII".to_string())
        .and_then(parse_identity)
        .map(Some)
        .map_err(|why| {
            ApiError::BadRequest(format!(
                "malformed X-Broker-API-Originating-Identity header: {why}"
            ))
        })
}

/// The decoded identity and the trust of the credential that
/// authenticated the request, as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct OriginIdentity(
    pub(crate) Option<OriginatingIdentity>,
    pub(crate) std::sync::Arc<crate::broker::trust::Trust>,
);

/// What [`super::edge::V2`] established about a request, as one request
/// extension (each extension is an allocation per request); handlers take
/// its parts as the extractors [`ApiVersion`], [`OriginIdentity`] and
/// [`Caller`].
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    pub(crate) version: ApiVersion,
    pub(crate) identity: OriginIdentity,
}

fn checked(parts: &Parts) -> Result<&Checked, ApiError> {
    parts.extensions.get::<Checked>().ok_or_else(|| {
        ApiError::Broker(BrokerError::Internal(
            "a /v2 route ran without the edge's checks".into(),
        ))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        checked(parts).map(|c| c.version)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OriginIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        checked(parts).map(|c| c.identity.clone())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        checked(parts).map(|c| Caller(c.identity.1.clone()))
    }
}

/// Parses `platform base64(json-object)` and checks the profile's required
/// properties for the platforms it defines.
pub(crate) fn parse_identity(header: &str) -> Result<OriginatingIdentity, String> {
    let (platform, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or("expected \"<platform> <base64 JSON object>\"")?;
    if platform.is_empty() {
        return Err("the platform is empty".into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded.trim()))
        .map_err(|_| "the value is not base64")?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| "the value is not base64-encoded JSON")?;
    let obj = value.as_object().ok_or("the value is not a JSON object")?;
    let need_string = |k: &str| -> Result<(), String> {
        match obj.get(k) {
            Some(Value::String(_)) => Ok(()),
            _ => Err(format!("the {platform} identity needs a string {k:?}")),
        }
    };
    match platform {
        "cloudfoundry" => need_string("user_id")?,
        "kubernetes" => need_string("username")?,
        _ => {}
    }
    Ok(OriginatingIdentity {
        platform: platform.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_finds_what_a_lookup_finds() {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("broker"));
        map.append("X-Broker-API-Version", HeaderValue::from_static("2.17"));
        map.append("x-broker-api-version", HeaderValue::from_static("2.13"));
        map.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic a"));
        map.append(header::AUTHORIZATION, HeaderValue::from_static("Basic b"));
        map.insert(&REQUEST_IDENTITY, HeaderValue::from_static("r-1"));
        map.insert(
            "x-broker-api-originating-identity-extra",
            HeaderValue::from_static("no"),
        );
        let found = Found::scan(&map);
        // The first value of each name, as `get` gives it.
        for (got, name) in [
            (found.authorization, header::AUTHORIZATION),
            (found.api_version, API_VERSION.clone()),
            (found.originating_identity, ORIGINATING_IDENTITY.clone()),
            (found.request_identity, REQUEST_IDENTITY.clone()),
        ] {
            assert_eq!(got, map.get(&name), "{name}");
        }
        assert_eq!(found.api_version.unwrap(), "2.17");
        assert_eq!(found.authorization.unwrap(), "Basic a");
        assert!(found.originating_identity.is_none());
    }

    #[test]
    fn a_version_is_read_from_visible_ascii_only() {
        let v = |b: &[u8]| api_version(Some(&HeaderValue::from_bytes(b).unwrap())).is_ok();
        assert!(v(b"2.17") && v(b" 2.15 ") && v(b"2.013"));
        // Unicode whitespace around it (a no-break space) is not trimmed:
        // a header value that is not visible ASCII names no version.
        assert!(!v(b"\xc2\xa02.17") && !v(b"2.17\xc2\xa0"));
        assert!(!v(b"2.12") && !v(b"2.1\xff"));
        assert!(api_version(None).is_err());
    }

    #[test]
    fn identities() {
        let k = "kubernetes ew0KICAidXNlcm5hbWUiOiAiZHVrZSIsDQogICJ1aWQiOiAiYzJkZGUyNDItNWNlNC0xMWU3LTk4OGMtMDAwYzI5NDZmMTRmIiwNCiAgImdyb3VwcyI6IFsgImFkbWluIiwgImRldiIgXSwNCiAgImV4dHJhIjogew0KICAgICJteWRhdGEiOiBbICJkYXRhMSIsICJkYXRhMyIgXQ0KICB9DQp9";
        let id = parse_identity(k).unwrap();
        assert_eq!(id.platform, "kubernetes");
        assert_eq!(id.value["username"], "duke");
        let cf = "cloudfoundry eyANCiAgInVzZXJfaWQiOiAiNjgzZWE3NDgtMzA5Mi00ZmY0LWI2NTYtMzljYWNjNGQ1MzYwIg0KfQ==";
        assert_eq!(
            parse_identity(cf).unwrap().value["user_id"],
            "683ea748-3092-4ff4-b656-39cacc4d5360"
        );
        assert!(parse_identity("kubernetes").is_err());
        assert!(parse_identity("kubernetes !!!").is_err());
        assert!(parse_identity("kubernetes e30=").is_err()); // {} lacks username
        assert!(parse_identity("other e30=").is_ok());
        assert!(parse_identity("other WzFd").is_err()); // [1]
    }
}
