//! The one canonical form of every manifest the broker writes or hands to
//! helm: each document one line of compact JSON, after a `---` line. JSON is
//! YAML, so helm, kubectl and the API server read it as it was judged; the
//! stream starts with `---`, so no reader takes it for a JSON stream; every
//! line break and every character a YAML 1.1 reader might treat specially
//! is escaped, so no document marker or comment can hide in a string.

use std::fmt::Write as _;

use serde_json::Value;

use super::Doc;

/// The stream of `docs`, each after a `---` line (and its source file as a
/// comment, when that is plain text).
pub(super) fn stream(docs: &[Doc]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        if let Some(file) = doc.source.as_deref().filter(|f| safe_comment(f)) {
            let _ = writeln!(out, "# Source: {file}");
        }
        value(&mut out, &doc.value);
        out.push('\n');
    }
    out
}

/// A comment that can only be a comment: printable ASCII, no `#` games.
fn safe_comment(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 512
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/@+".contains(&b))
}

/// Writes `v` as compact JSON.
pub(super) fn value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, k);
                out.push(':');
                value(out, item);
            }
            out.push('}');
        }
    }
}

/// A double-quoted string readable alike as JSON and as YAML 1.1: printable
/// ASCII as it is, everything else in the Basic Multilingual Plane as
/// `\uXXXX` (YAML 1.1 folds U+0085, U+2028 and U+2029 in quoted text),
/// characters beyond it as UTF-8 (go-yaml refuses surrogate escapes).
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) > 0xFFFF => out.push(c),
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// How many characters `s` takes once emitted, quotes included.
pub(super) fn quoted_chars(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\t' => 2,
            ' '..='~' => 1,
            c if (c as u32) > 0xFFFF => 1,
            _ => 6,
        })
        .sum::<usize>()
}
