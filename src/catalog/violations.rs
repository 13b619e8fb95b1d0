//! Parameter schema violations in words a platform user reads: the
//! parameter's path, its `description` from the schema when it has one, and
//! the rule broken (`parameters.replicas: "Number of replicas" must be at
//! most 5 (got 9)`), instead of the validator's JSON Schema vocabulary.
//!
//! Rejected strings are never quoted back (a parameter may be a password);
//! numbers are, and so are lengths and types.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{JsonType, ValidationError};
use serde_json::Value;

/// A description longer than this is cut (schemas are the admin's, but a
/// paragraph per error would bury the rule).
const MAX_DESCRIPTION_CHARS: usize = 120;
/// Enum options and allowed property names listed before "…".
const MAX_LISTED: usize = 12;

/// One sentence for `e`, found at `path` (`parameters.x`), against `schema`
/// (the root parameters schema, for descriptions and allowed names).
pub(super) fn describe(path: &str, e: &ValidationError<'_>, schema: &Value) -> String {
    // The subschema holding the failed keyword: the keyword's location
    // minus the keyword itself.
    let segs: Vec<String> = e
        .schema_path()
        .segments()
        .map(|s| match s {
            LocationSegment::Property(p) => p.to_string(),
            LocationSegment::Index(i) => i.to_string(),
        })
        .collect();
    let parent = subschema(schema, &segs[..segs.len().saturating_sub(1)]);
    match e.kind() {
        ValidationErrorKind::Required { property } => required(path, parent, property),
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            unknown(path, parent, unexpected)
        }
        kind => match rule(kind, e.instance()) {
            Some(rule) => match parent.and_then(description) {
                Some(d) => format!("{path}: {d} {rule}"),
                None => format!("{path}: {rule}"),
            },
            // Rare keywords: the validator's own words.
            None => format!("{path}: {e}"),
        },
    }
}

/// A missing required property, with its own description when it has one.
fn required(path: &str, parent: Option<&Value>, property: &Value) -> String {
    let name = property.as_str().unwrap_or_default();
    let child = parent
        .and_then(|p| p.get("properties"))
        .and_then(|p| p.get(name));
    let at = crate::template::join_key(path, name);
    match child.and_then(description) {
        Some(d) => format!("{at}: {d} is required"),
        None => format!("{at}: is required"),
    }
}

/// Properties the schema does not declare, with the ones it allows.
fn unknown(path: &str, parent: Option<&Value>, unexpected: &[String]) -> String {
    let allowed: Vec<&str> = parent
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let noun = if unexpected.len() == 1 {
        "property"
    } else {
        "properties"
    };
    let names = unexpected
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let allowed = if allowed.is_empty() {
        "none".to_owned()
    } else {
        list(allowed.iter().map(|s| s.to_string()))
    };
    let mut out = format!("{path}: unknown {noun} {names} (allowed: {allowed})");
    // An object's own description often says why (the update
    // schema of a plan whose settings are fixed at creation).
    if let Some(d) = parent.and_then(description) {
        out.push_str(&format!(" — {}", d.trim_matches('"')));
    }
    out
}

/// The rule `kind` states about `instance`, for the keywords worded here.
fn rule(kind: &ValidationErrorKind, instance: &Value) -> Option<String> {
    match kind {
        ValidationErrorKind::Type { kind } => {
            let want = match kind {
                TypeKind::Single(t) => a(*t).to_owned(),
                TypeKind::Multiple(set) => set.iter().map(a).collect::<Vec<_>>().join(" or "),
            };
            Some(format!("must be {want} (got {})", type_of(instance)))
        }
        ValidationErrorKind::Maximum { limit } => {
            Some(format!("must be at most {limit} (got {instance})"))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            Some(format!("must be less than {limit} (got {instance})"))
        }
        ValidationErrorKind::Minimum { limit } => {
            Some(format!("must be at least {limit} (got {instance})"))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            Some(format!("must be more than {limit} (got {instance})"))
        }
        ValidationErrorKind::MultipleOf { multiple_of } => Some(format!(
            "must be a multiple of {multiple_of} (got {instance})"
        )),
        ValidationErrorKind::MaxLength { limit } => Some(format!(
            "must be at most {limit} characters long (got {})",
            chars(instance)
        )),
        ValidationErrorKind::MinLength { limit } => Some(format!(
            "must be at least {limit} characters long (got {})",
            chars(instance)
        )),
        ValidationErrorKind::Pattern { pattern } => Some(format!("must match {pattern}")),
        ValidationErrorKind::Format { format } => Some(format!("must be a valid {format}")),
        ValidationErrorKind::Enum { options } => Some(format!(
            "must be one of {}",
            list(options.as_array().into_iter().flatten().map(shown))
        )),
        ValidationErrorKind::Constant { expected_value } => {
            Some(format!("must be {}", shown(expected_value)))
        }
        ValidationErrorKind::Not { schema } => {
            let rule = match (schema.get("enum"), schema.get("const")) {
                (Some(Value::Array(o)), _) => {
                    format!("must not be {}", list(o.iter().map(shown)))
                }
                (_, Some(c)) => format!("must not be {}", shown(c)),
                _ => "must not match the schema under `not`".to_owned(),
            };
            Some(rule)
        }
        ValidationErrorKind::MaxItems { limit } => Some(format!("must have at most {limit} items")),
        ValidationErrorKind::MinItems { limit } => {
            Some(format!("must have at least {limit} items"))
        }
        ValidationErrorKind::UniqueItems => Some("must not repeat items".into()),
        ValidationErrorKind::Contains => {
            Some("must contain at least one item the schema allows".into())
        }
        ValidationErrorKind::MaxProperties { limit } => {
            Some(format!("must have at most {limit} properties"))
        }
        ValidationErrorKind::MinProperties { limit } => {
            Some(format!("must have at least {limit} properties"))
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            Some("must match one of the forms the schema allows".into())
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            Some("matches more than one of the forms the schema allows (oneOf)".into())
        }
        ValidationErrorKind::FalseSchema => Some("is not allowed".into()),
        ValidationErrorKind::PropertyNames { .. } => {
            Some("has a property name the schema does not allow".into())
        }
        _ => None,
    }
}

fn subschema<'a>(root: &'a Value, segs: &[String]) -> Option<&'a Value> {
    segs.iter().try_fold(root, |v, s| match v {
        Value::Object(m) => m.get(s),
        Value::Array(a) => a.get(s.parse::<usize>().ok()?),
        _ => None,
    })
}

/// The subschema's `description`, quoted and cut.
fn description(schema: &Value) -> Option<String> {
    let d = schema.get("description")?.as_str()?.trim();
    if d.is_empty() {
        return None;
    }
    let cut = match d.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((i, _)) => format!("{}…", &d[..i]),
        None => d.to_owned(),
    };
    Some(format!("{cut:?}"))
}

fn a(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "an array",
        JsonType::Boolean => "true or false",
        JsonType::Integer => "an integer",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a string",
    }
}

fn type_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "true or false".into(),
        Value::Number(n) => n.to_string(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn chars(v: &Value) -> String {
    let n = v.as_str().map_or(0, |s| s.chars().count());
    format!("{n}")
}

/// An allowed value as the schema author wrote it: strings bare, the rest
/// as JSON (the schema is the admin's, not the user's secret).
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let mut all: Vec<String> = items.collect();
    if all.len() > MAX_LISTED {
        all.truncate(MAX_LISTED);
        all.push("…".into());
    }
    all.join(", ")
}
