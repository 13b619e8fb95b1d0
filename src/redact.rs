//! Keeping generated secrets out of messages.
//!
//! A chart can hand a secret back to us in any form a template produces:
//! `b64enc`, `toJson`, `urlquery`, `printf "%q"` or `"%x"`, or inside a
//! longer string (`b64enc (printf "user:%s" .password)`). Helm quotes such
//! values in its errors, and those reach `last_operation.description`,
//! error bodies and logs. So each secret is redacted in every encoding
//! that costs only a few string replacements to cover.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

const MASK: &str = "<redacted>";

/// Shorter secrets are not redacted: replacing them would garble messages
/// and they can't be real generated secrets (lint asks for 8 or more).
const MIN_LEN: usize = 4;

/// Replaces every secret string in `message`, in every form listed in the
/// module docs, with `<redacted>`.
pub fn redact(message: &str, secrets: &[String]) -> String {
    let mut forms: Vec<String> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_LEN)
        .flat_map(|s| forms(s))
        .filter(|f| f.len() >= MIN_LEN)
        .collect();
    // Longest first, so a form that contains another is replaced whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let mut out = message.to_string();
    for f in forms {
        out = out.replace(f.as_str(), MASK);
    }
    out
}

/// The forms `secret` may take in a message.
fn forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut out = vec![secret.to_owned()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(bytes));
    }
    out.extend(embedded_base64(bytes));
    let json = serde_json::to_string(secret).expect("strings serialize");
    out.push(json[1..json.len() - 1].to_owned());
    out.push(percent_encode(bytes, false));
    out.push(percent_encode(bytes, true));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    out.push(hex.to_ascii_uppercase());
    out.push(hex);
    out
}

/// The base64 characters that depend on `secret` alone when it sits at
/// each of the three byte offsets inside a longer encoded string, in both
/// alphabets; the one or two characters it shares with its neighbours are
/// left, which reveal a few bits at most.
fn embedded_base64(secret: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 0..3 {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(secret);
        let first = (offset * 8).div_ceil(6);
        let last = padded.len() * 8 / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&padded);
            if let Some(middle) = encoded.get(first..last) {
                out.push(middle.to_owned());
            }
        }
    }
    out
}

/// RFC 3986 percent-encoding of everything but unreserved characters;
/// `plus` writes spaces as `+` the way query strings do.
fn percent_encode(bytes: &[u8], plus: bool) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' if plus => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_and_short_strings_left() {
        let msg = "value \"abcd1234\" and abcd are bad";
        assert_eq!(
            redact(msg, &["abcd".into(), "abcd1234".into()]),
            "value \"<redacted>\" and <redacted> are bad"
        );
        assert_eq!(redact("x", &["ab".into()]), "x");
    }

    #[test]
    fn every_encoding_a_template_can_produce() {
        let secret = "pa ss\"w/rd?+é~0123456789";
        let b = secret.as_bytes();
        let json = serde_json::to_string(secret).unwrap();
        let hex: String = b.iter().map(|b| format!("{b:02x}")).collect();
        let encoded = [
            secret.to_owned(),
            STANDARD.encode(b),
            STANDARD_NO_PAD.encode(b),
            URL_SAFE.encode(b),
            URL_SAFE_NO_PAD.encode(b),
            json.clone(),
            "pa%20ss%22w%2Frd%3F%2B%C3%A9~0123456789".to_owned(),
            "pa+ss%22w%2Frd%3F%2B%C3%A9~0123456789".to_owned(),
            hex.clone(),
            hex.to_ascii_uppercase(),
        ];
        for e in &encoded {
            let msg = format!("error: value {e} is invalid");
            let out = redact(&msg, &[secret.to_owned()]);
            assert!(out.contains(MASK), "{e} -> {out}");
            assert!(!out.contains(e.trim_matches('"')), "{e} -> {out}");
        }
        // Inside a longer encoded string, at every byte offset.
        for prefix in ["", "u", "us", "user:"] {
            let whole = STANDARD.encode(format!("{prefix}{secret}"));
            let out = redact(&format!("auth {whole}"), &[secret.to_owned()]);
            assert!(out.contains(MASK), "{prefix}: {out}");
            // What is left is at most the prefix and a character or two.
            let left = out.replace("auth ", "").replace(MASK, "");
            assert!(left.len() <= prefix.len() * 4 / 3 + 4, "{prefix}: {out}");
        }
    }

    #[test]
    fn other_text_is_untouched() {
        let out = redact("no secrets here: c2VjcmV0", &["hunter22".into()]);
        assert_eq!(out, "no secrets here: c2VjcmV0");
    }
}
