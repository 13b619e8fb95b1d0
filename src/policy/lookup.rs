//! Reading untrusted manifests generously.
//!
//! The manifests come from a chart author we don't trust, and the API
//! server, not this module, decides what they mean:
//! - a *forbidden* value counts under every spelling of its key, ignoring
//!   ASCII case (older API servers decoded JSON case-insensitively);
//! - a *required* value counts only under its exact key, with its exact
//!   type, because that is the only spelling every API server reads;
//! - a boolean is true when it is `true` or a YAML 1.1 true word (`yes`,
//!   `on`, ...), which Kubernetes' YAML decoder turns into `true`.

use serde_json::Value;

/// Every value under `key` in `v`, ignoring ASCII case.
pub(super) fn fields<'a>(v: &'a Value, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    v.as_object()
        .into_iter()
        .flat_map(move |m| m.iter())
        .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Every value at `path` below `v` (every spelling at every step).
pub(super) fn descend<'a>(v: &'a Value, path: &[&'a str]) -> Vec<&'a Value> {
    path.iter().fold(vec![v], |acc, key| {
        acc.into_iter().flat_map(|v| fields(v, key)).collect()
    })
}

/// The value at `path` below `v` under exact keys, if set and not null.
pub(super) fn exact<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// The items of every array under `key`.
pub(super) fn list<'a>(v: &'a Value, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    fields(v, key).flat_map(|l| l.as_array().into_iter().flatten())
}

/// `true`, or a YAML 1.1 word Kubernetes reads as true.
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(
            s.as_str(),
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON"
        ),
        _ => false,
    }
}

/// Whether `v` is a number or numeric string equal to zero.
pub(super) fn is_zero(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.trim().parse::<f64>().ok() == Some(0.0),
        _ => false,
    }
}

/// A container or volume's quoted name, or its index.
pub(super) fn name_of(v: &Value, i: usize) -> String {
    match fields(v, "name").find_map(Value::as_str) {
        Some(name) => format!("{name:?}"),
        None => format!("#{i}"),
    }
}

/// A scalar as written (strings without JSON quotes).
pub(super) fn show(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}
