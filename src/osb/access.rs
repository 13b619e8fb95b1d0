//! What the access log shows of a request beyond method, route and status:
//! the ids in its path, its request identity and the originating user's
//! name. Everything here comes from the client, so it is shown quoted and
//! escaped (`Debug`) and cut to a length.

use axum::http::HeaderValue;
use serde_json::Value;

/// Longest value shown; the rest is cut.
const MAX: usize = 128;

/// The instance and binding ids in a request's path.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Ids {
    pub(crate) instance_id: Option<String>,
    pub(crate) binding_id: Option<String>,
}

/// The segments of `path` where `route` (a template) has `{instance_id}`
/// and `{binding_id}`.
pub(crate) fn ids(route: &str, path: &str) -> Ids {
    let mut ids = Ids::default();
    let mut segments = path.split('/');
    for t in route.split('/') {
        let Some(seg) = segments.next() else { break };
        let seg = Some(cut(seg).to_string());
        match t {
            "{instance_id}" => ids.instance_id = seg,
            "{binding_id}" => ids.binding_id = seg,
            _ => {}
        }
    }
    ids
}

/// A header's text, cut; `None` when absent or not visible ASCII.
pub(crate) fn header_text(v: Option<&HeaderValue>) -> Option<String> {
    v.and_then(|v| v.to_str().ok()).map(|s| cut(s).to_string())
}

/// The user name of an originating identity: `username` (kubernetes) or
/// `user_id` (cloudfoundry), else the one of those present. Nothing else
/// of the identity (groups, extra fields, tokens) is shown.
pub(crate) fn user(v: Option<&HeaderValue>) -> Option<String> {
    let id = super::headers::parse_identity(v?.to_str().ok()?).ok()?;
    let name = ["username", "user_id"]
        .iter()
        .find_map(|k| id.value.get(*k).and_then(Value::as_str))?;
    Some(cut(name).to_string())
}

fn cut(s: &str) -> &str {
    match s.char_indices().nth(MAX) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn ids_from_the_route_template() {
        let r = "/v2/service_instances/{instance_id}/service_bindings/{binding_id}";
        assert_eq!(
            ids(r, "/v2/service_instances/i-1/service_bindings/b-2"),
            Ids {
                instance_id: Some("i-1".into()),
                binding_id: Some("b-2".into())
            }
        );
        assert_eq!(ids("unmatched", "/v2/x/y"), Ids::default());
        assert_eq!(ids("/v2/catalog", "/v2/catalog"), Ids::default());
    }

    #[test]
    fn only_the_user_name_of_an_identity() {
        let h = |platform: &str, v: serde_json::Value| {
            HeaderValue::from_str(&format!(
                "{platform} {}",
                base64::engine::general_purpose::STANDARD.encode(v.to_string())
            ))
            .unwrap()
        };
        let k = h(
            "kubernetes",
            serde_json::json!({"username": "alice", "groups": ["admins"], "extra": {"token": ["t"]}}),
        );
        assert_eq!(user(Some(&k)).as_deref(), Some("alice"));
        let cf = h("cloudfoundry", serde_json::json!({"user_id": "u-9"}));
        assert_eq!(user(Some(&cf)).as_deref(), Some("u-9"));
        let junk = HeaderValue::from_static("kubernetes !!!");
        assert_eq!(user(Some(&junk)), None);
        assert_eq!(user(None), None);
        let long = "x".repeat(500);
        assert_eq!(
            header_text(Some(&HeaderValue::from_str(&long).unwrap()))
                .unwrap()
                .len(),
            MAX
        );
    }
}
