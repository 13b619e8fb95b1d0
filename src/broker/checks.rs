//! Checks of the fields every request carries, before anything is read
//! or written.

use serde_json::Value;

use super::{BrokerError, Result};

/// 400 unless `id` may name a record ([`crate::names::check_id`]).
pub(super) fn valid_id(id: &str, what: &str) -> Result<()> {
    crate::names::check_id(what, id).map_err(BrokerError::BadRequest)
}

/// A required string field: empty counts as missing, because conformance
/// suites and some platforms send `""` for absent fields.
pub(super) fn required<'a>(value: &'a str, what: &str) -> Result<&'a str> {
    if value.trim().is_empty() {
        Err(BrokerError::BadRequest(format!("{what} is required")))
    } else {
        Ok(value)
    }
}

/// Parameters must be a JSON object when present.
pub(super) fn parameters_object(p: &Option<Value>) -> Result<Value> {
    json_object(p, "parameters")
}

/// Context must be a JSON object when present.
pub(super) fn context_object(c: &Option<Value>) -> Result<Value> {
    json_object(c, "context")
}

/// `value` (the request's `what`) when it is an object; absent or `null`
/// is an empty one.
fn json_object(value: &Option<Value>, what: &str) -> Result<Value> {
    match value {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(BrokerError::BadRequest(format!(
            "{what} must be a JSON object"
        ))),
    }
}
