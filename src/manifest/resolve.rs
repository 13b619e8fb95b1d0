//! What a plain (unquoted) scalar means to Kubernetes' Go reader:
//! go-yaml v2's `resolve` (go.yaml.in/yaml/v2 resolve.go, YAML 1.1 types)
//! followed by sigs.k8s.io/yaml's conversion to JSON. Mirrored rule by rule;
//! where Go's meaning can't be carried in JSON, or depends on details this
//! mirror does not reproduce (numbers out of range), the value is refused.

use serde_json::{Number, Value};

/// A plain scalar's meaning.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Plain {
    /// Anything Go reads as a JSON value (null, bool, number, the text itself).
    Value(Value),
    /// `<<`: a merge key.
    Merge,
    /// Refused, with why.
    Refused(String),
}

/// go-yaml v2's booleans, nulls and special floats, looked up before any
/// other rule (its `resolveMap`).
fn lookup(s: &str) -> Option<Plain> {
    let v = match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Value::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            return Some(Plain::Refused(format!(
                "`{s}` is a YAML 1.1 infinity or NaN, which JSON can't carry; quote it"
            )));
        }
        "<<" => return Some(Plain::Merge),
        _ => return None,
    };
    Some(Plain::Value(v))
}

/// The meaning of plain scalar `s`.
pub(super) fn resolve(s: &str) -> Plain {
    if let Some(p) = lookup(s) {
        return p;
    }
    let text = || Plain::Value(Value::String(s.to_owned()));
    match s.as_bytes().first() {
        Some(b'.') => float(s).unwrap_or_else(text),
        Some(b'0'..=b'9' | b'+' | b'-') => number(s).unwrap_or_else(text),
        _ => text(),
    }
}

/// A number, or None when Go reads `s` as text.
fn number(s: &str) -> Option<Plain> {
    // Go tries timestamps first (`YYYY-...`); decoded into an interface
    // they stay the original text, and nothing of that shape is a number.
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 4 && s.as_bytes().get(4) == Some(&b'-') {
        return None;
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    match go_parse_int(&plain) {
        IntParse::Ok(i) => return Some(Plain::Value(Value::Number(i.into()))),
        IntParse::OutOfRange => {
            return Some(Plain::Refused(format!(
                "`{s}` is an integer outside the signed 64-bit range; quote it"
            )));
        }
        IntParse::Syntax => {}
    }
    if yaml_style_float(&plain) {
        return float_value(s, &plain);
    }
    None
}

/// After a leading `.`: Go's `strconv.ParseFloat` on the text as it is.
fn float(s: &str) -> Option<Plain> {
    let b = s.as_bytes();
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || !exponent_only(&b[1 + digits..]) {
        return None;
    }
    float_value(s, s)
}

fn float_value(original: &str, text: &str) -> Option<Plain> {
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() {
        // Go's ParseFloat fails on overflow and the value stays text;
        // nobody means that: refuse rather than guess.
        return Some(Plain::Refused(format!(
            "`{original}` is a number too large for a 64-bit float; quote it"
        )));
    }
    Some(Plain::Value(float_json(f)))
}

/// A float as the API server receives it: Go's `encoding/json` writes a
/// float below 1e21 in plain decimal (its shortest round-trip digits,
/// padded with zeros), and Kubernetes' unstructured decoding reads that text
/// as an integer when it parses as one in 64 bits. Rust's `Display` writes
/// the same digits.
pub(super) fn float_json(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if let Ok(i) = format!("{f}").parse::<i64>() {
            return Value::Number(i.into());
        }
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `([eE][-+]?[0-9]+)?` and nothing else.
fn exponent_only(rest: &[u8]) -> bool {
    match rest {
        [] => true,
        [b'e' | b'E', tail @ ..] => {
            let tail = match tail {
                [b'+' | b'-', t @ ..] => t,
                t => t,
            };
            !tail.is_empty() && tail.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

/// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let b = match b {
        [b'+' | b'-', rest @ ..] => rest,
        rest => rest,
    };
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let rest = &b[int_digits..];
    let rest = if int_digits == 0 {
        let [b'.', frac @ ..] = rest else {
            return false;
        };
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        &frac[n..]
    } else if let [b'.', frac @ ..] = rest {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        &frac[n..]
    } else {
        rest
    };
    exponent_only(rest)
}

enum IntParse {
    Ok(i64),
    OutOfRange,
    Syntax,
}

/// Go's `strconv.ParseInt(s, 0, 64)` on text without underscores: an
/// optional sign, then `0x`/`0o`/`0b` (either case), a leading `0` for
/// octal, or decimal. A valid number that doesn't fit is OutOfRange (Go then
/// tries unsigned 64 bits; both are refused here).
fn go_parse_int(s: &str) -> IntParse {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &body[2..]),
        Some("0o") => (8, &body[2..]),
        Some("0b") => (2, &body[2..]),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
        _ => (10, body),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return IntParse::Syntax;
    }
    match u128::from_str_radix(digits, radix) {
        Ok(m) if neg && m <= 1u128 << 63 => IntParse::Ok((m as i128).wrapping_neg() as i64),
        Ok(m) if !neg && m < 1u128 << 63 => IntParse::Ok(m as i64),
        _ => IntParse::OutOfRange,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> Value {
        match resolve(s) {
            Plain::Value(v) => v,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn yaml_1_1_scalars_mean_what_go_yaml_v2_reads() {
        for (s, want) in [
            ("yes", json!(true)),
            ("Off", json!(false)),
            ("y", json!(true)),
            ("N", json!(false)),
            ("~", json!(null)),
            ("", json!(null)),
            ("0777", json!(511)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("0b101", json!(5)),
            ("-0b101", json!(-5)),
            ("1_000", json!(1000)),
            ("+12", json!(12)),
            ("08", json!(8)),
            ("09.5", json!(9.5)),
            ("1.0", json!(1)),
            ("-0.0", json!(0)),
            (".5", json!(0.5)),
            ("1e3", json!(1000)),
            ("1e21", json!(1e21)),
            ("2001-12-14", json!("2001-12-14")),
            (
                "2001-12-14t21:59:43.10-05:00",
                json!("2001-12-14t21:59:43.10-05:00"),
            ),
            ("190:20:30", json!("190:20:30")),
            ("0x", json!("0x")),
            ("-", json!("-")),
            ("1.2.3", json!("1.2.3")),
            ("yEs", json!("yEs")),
            ("-9223372036854775808", json!(i64::MIN)),
            ("-9223372036854775808.0", json!(-9.223372036854776e18)),
            ("9007199254740993.0", json!(9007199254740992i64)),
        ] {
            assert_eq!(v(s), want, "{s}");
        }
    }

    #[test]
    fn what_json_or_this_mirror_cannot_carry_is_refused() {
        for s in [
            ".inf",
            "-.Inf",
            ".NaN",
            "9223372036854775808",
            "0xFFFFFFFFFFFFFFFFF",
            "1e400",
        ] {
            assert!(matches!(resolve(s), Plain::Refused(_)), "{s}");
        }
        assert_eq!(resolve("<<"), Plain::Merge);
    }
}
