//! Parameters as the dashboard shows them: a field is masked when its
//! schema marks it secret (`writeOnly`, `format: password`), when its name
//! says so, or when its value holds one of the instance's generated
//! secrets.

use serde_json::Value;

/// What a masked value shows.
pub(crate) const MASK: &str = "••••••";

/// Names that hold secrets whatever the schema says.
pub fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "private",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|w| k.contains(w))
}

fn schema_secret(schema: Option<&Value>) -> bool {
    schema.is_some_and(|s| {
        s.get("writeOnly").and_then(Value::as_bool) == Some(true)
            || s.get("format").and_then(Value::as_str) == Some("password")
    })
}

/// `params` with secret fields masked; `schema` is the plan's parameters
/// schema (or `None`), `secrets` the strings generated for the instance.
pub(crate) fn mask(params: &Value, schema: Option<&Value>, secrets: &[String]) -> Value {
    match params {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let sub = schema
                        .and_then(|s| s.get("properties"))
                        .and_then(|p| p.get(k));
                    let v = if secret_name(k) || schema_secret(sub) {
                        Value::String(MASK.into())
                    } else {
                        mask(v, sub, secrets)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => {
            let items = schema.and_then(|s| s.get("items"));
            Value::Array(a.iter().map(|v| mask(v, items, secrets)).collect())
        }
        Value::String(s) => Value::String(mask_text(s, secrets)),
        other => other.clone(),
    }
}

/// `text` with every occurrence of a secret replaced by [`MASK`].
pub(crate) fn mask_text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_names_and_generated_values_are_masked() {
        let schema = json!({"properties": {
            "a": {"type": "string", "writeOnly": true},
            "b": {"type": "string", "format": "password"},
            "nested": {"properties": {"c": {"writeOnly": true}}}
        }});
        let params = json!({"a": "x", "b": "y", "nested": {"c": 1, "d": "keep"},
            "adminPassword": "z", "note": "uses gen-secret-1 inside", "list": ["gen-secret-1"]});
        let out = mask(&params, Some(&schema), &["gen-secret-1".into()]);
        assert_eq!(
            out,
            json!({"a": MASK, "b": MASK, "nested": {"c": MASK, "d": "keep"},
            "adminPassword": MASK, "note": format!("uses {MASK} inside"), "list": [MASK]})
        );
    }
}
