//! Names derived from OSB ids: stable across restarts, valid DNS-1123 labels,
//! and distinct for distinct ids.

use ring::digest::{SHA256, digest};

/// Longest instance or binding id accepted (platforms send UUIDs).
pub(crate) const MAX_ID_LEN: usize = 255;

/// Whether an OSB id may name a record: ids become store keys (where NUL
/// separates an instance from its bindings), file names (render engine),
/// annotations and log fields, so control characters, `/` and the path
/// names `.` and `..` are refused rather than escaped.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{what} is required"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "{what} is {} bytes long; at most {MAX_ID_LEN} are accepted",
            id.len()
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("{what} {id:?} is not a valid id"));
    }
    if let Some(c) = id.chars().find(|c| c.is_control() || *c == '/') {
        return Err(format!(
            "{what} contains {c:?}; ids may not contain control characters or '/'"
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Short hex digest of a string, used where ids can't be used verbatim.
pub(crate) fn short_hash(s: &str) -> String {
    hex(&digest(&SHA256, s.as_bytes()).as_ref()[..8])
}

/// Whether `s` is a DNS-1123 label of at most `max` characters.
pub(crate) fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// Helm release name for an instance: `cb-<id>` when the id is already a short
/// DNS label (UUIDs are), otherwise `cbx-<hash>`. Kept at 40 characters or
/// fewer so chart resource names with suffixes stay under Kubernetes limits.
/// The two prefixes differ so a verbatim id can never equal a hashed one.
pub(crate) fn release_name(instance_id: &str) -> String {
    if is_dns_label(instance_id, 37) {
        format!("cb-{instance_id}")
    } else {
        format!("cbx-{}", short_hash(instance_id))
    }
}

/// Default name of the Secret that carries a binding's credentials.
pub(crate) fn binding_secret_name(binding_id: &str) -> String {
    if is_dns_label(binding_id, 50) {
        format!("cb-bind-{binding_id}")
    } else {
        format!("cbx-bind-{}", short_hash(binding_id))
    }
}

/// A label value from an id: the id when it is a valid label value, else a
/// hash (the full id goes in an annotation beside it).
pub(crate) fn label_value(id: &str) -> String {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.as_bytes()[id.len() - 1].is_ascii_alphanumeric();
    if ok { id.to_string() } else { short_hash(id) }
}

/// SHA-256 of canonical JSON: requests that mean the same thing hash the
/// same, whatever the key order they were sent in.
pub(crate) fn fingerprint(v: &serde_json::Value) -> String {
    fn canonical(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&m[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    canonical(v, &mut s);
    hex(digest(&SHA256, s.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn release_names_are_dns_labels_and_distinct() {
        let uuid = "9c2d6d8e-3f7e-4c53-a3c2-5a6f0d1a2b3c";
        assert_eq!(release_name(uuid), format!("cb-{uuid}"));
        for id in ["Upper-Case", "a/b", "x".repeat(80).as_str(), "-lead", ""] {
            let n = release_name(id);
            assert!(is_dns_label(&n, 40), "{n}");
            assert!(n.starts_with("cbx-"));
        }
        assert_ne!(release_name("A"), release_name("a"));
    }

    #[test]
    fn ids_that_could_alias_are_refused() {
        for ok in [
            "9c2d6d8e-3f7e-4c53-a3c2-5a6f0d1a2b3c",
            "a.b",
            "...",
            "x y",
            "é",
        ] {
            assert!(check_id("instance_id", ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\0b",
            "a\nb",
            "\u{7f}",
            long.as_str(),
        ] {
            assert!(check_id("instance_id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprint_ignores_key_order() {
        assert_eq!(
            fingerprint(&json!({"a": 1, "b": {"c": [1, 2], "d": null}})),
            fingerprint(&json!({"b": {"d": null, "c": [1, 2]}, "a": 1}))
        );
        assert_ne!(
            fingerprint(&json!({"a": 1})),
            fingerprint(&json!({"a": "1"}))
        );
    }
}
