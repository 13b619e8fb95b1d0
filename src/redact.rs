//! Keeping generated secrets out of messages.
//!
//! A chart can hand a secret back to us in any form a template produces:
//! `b64enc`, `toJson`, `urlquery`, `printf "%q"` or `"%x"`, or inside a
//! longer string (`b64enc (printf "user:%s" .password)`). Helm quotes such
//! values in its errors, and those reach `last_operation.description`,
//! error bodies and logs. So each secret is redacted in every encoding
//! that costs only a few string replacements to cover; in text a chart
//! writes ([`redact_chart_text`]), also every run of six or more of its
//! characters however the text was rearranged around them (separators,
//! case, reversal, look-alikes: see [`runs`]).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

mod runs;

const MASK: &str = "<redacted>";

/// Shorter secrets are not redacted: replacing them would garble messages
/// and they can't be real generated secrets (lint asks for 8 or more).
const MIN_LEN: usize = 4;

/// Replaces every secret string in `message`, in every encoding listed in
/// the module docs, with `<redacted>`: for credentials only helm itself
/// prints (a repository's password), which it quotes whole.
pub fn redact(message: &str, secrets: &[String]) -> String {
    replace_forms(message, secrets)
}

/// [`redact`], then every run of six or more of a secret's characters
/// however it was rearranged ([`runs`]): for text a chart writes (`fail`,
/// template errors), which can transform the generated secrets it gets as
/// values. Only for random secrets: a chosen password made of words would
/// mask those words wherever they appear.
pub(crate) fn redact_chart_text(message: &str, secrets: &[String]) -> String {
    mask_runs(&replace_forms(message, secrets), secrets)
}

/// Whole encodings, replaced as they are.
fn replace_forms(message: &str, secrets: &[String]) -> String {
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

/// Masks every run of a secret's characters, in its plain spelling and in
/// the encodings a template produces without effort, found by
/// [`runs::find`].
fn mask_runs(message: &str, secrets: &[String]) -> String {
    // Encoded then reversed is covered by `runs` (each form is searched
    // both ways); reversed then encoded needs the reversed secret's forms.
    let forms: Vec<runs::Form> = secrets
        .iter()
        .flat_map(|s| [s.clone(), s.chars().rev().collect()])
        .flat_map(|s| run_forms(&s))
        .collect();
    let mut hits = runs::find(message, &forms);
    if hits.is_empty() {
        return message.to_string();
    }
    hits.sort_by_key(|h| h.start);
    let mut out = String::with_capacity(message.len());
    // `at`: where the text not yet copied or masked starts.
    let mut at = 0;
    for h in hits {
        if h.end <= at {
            continue;
        }
        if h.start >= at {
            out.push_str(&message[at..h.start]);
            out.push_str(MASK);
        }
        at = h.end;
    }
    out.push_str(&message[at..]);
    out
}

/// The spellings of `secret` searched for runs, each with how many of its
/// characters stand for [`runs::MIN_RUN`] of the secret's.
fn run_forms(secret: &str) -> Vec<runs::Form> {
    let bytes = secret.as_bytes();
    let per = |num: usize, den: usize| (runs::MIN_RUN * num).div_ceil(den);
    let mut out = vec![runs::Form::new(secret, runs::MIN_RUN, true)];
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    out.push(runs::Form::new(&hex, per(2, 1), false));
    for b64 in [STANDARD_NO_PAD.encode(bytes)]
        .into_iter()
        .chain(embedded_base64(bytes))
    {
        out.push(runs::Form::new(&b64, per(4, 3), false));
    }
    out.push(runs::Form::new(&base32(bytes), per(8, 5), false));
    out
}

/// RFC 4648 base32 (sprig's `b32enc`), without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
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

    /// The longest run of `secret`'s characters (case-folded, forwards or
    /// reversed) left in `out` once everything but letters and digits is
    /// dropped: what a reader could still piece together.
    fn longest_run(out: &str, secret: &str) -> usize {
        let fold = |t: &str| -> Vec<u8> {
            t.bytes()
                .filter(u8::is_ascii_alphanumeric)
                .map(|b| b.to_ascii_lowercase())
                .collect()
        };
        // What a mask hides is not a character a reader can join runs over.
        let segments: Vec<Vec<u8>> = out.split(MASK).map(fold).collect();
        let s = fold(secret);
        let r: Vec<u8> = s.iter().rev().copied().collect();
        (1..=s.len())
            .rev()
            .find(|&n| {
                [&s, &r].iter().any(|sp| {
                    sp.windows(n)
                        .any(|w| segments.iter().any(|t| t.windows(n).any(|t| t == w)))
                })
            })
            .unwrap_or(0)
    }

    const SECRET: &str = "Xk9qTr2mWv7bLp4z";

    fn spaced(s: &str, sep: &str) -> String {
        s.chars().map(String::from).collect::<Vec<_>>().join(sep)
    }

    #[test]
    fn transformed_secrets_leave_no_run_of_six() {
        let rev: String = SECRET.chars().rev().collect();
        let fullwidth: String = SECRET
            .chars()
            .map(|c| match c {
                'a'..='z' => char::from_u32(c as u32 - 'a' as u32 + 0xFF41).unwrap(),
                'A'..='Z' => char::from_u32(c as u32 - 'A' as u32 + 0xFF21).unwrap(),
                '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
                c => c,
            })
            .collect();
        let cases: Vec<(&str, String)> = vec![
            ("plain", SECRET.into()),
            ("dots", spaced(SECRET, ".")),
            ("spaces", spaced(SECRET, " ")),
            ("dashes", spaced(SECRET, "-")),
            ("mixed separators", spaced(SECRET, ".-_ /|")),
            ("zero-width joiners", spaced(SECRET, "\u{200d}")),
            ("zero-width spaces", spaced(SECRET, "\u{200b}")),
            ("combining marks", spaced(SECRET, "\u{0301}")),
            ("one per line", spaced(SECRET, "\n")),
            ("upper", SECRET.to_uppercase()),
            ("lower", SECRET.to_lowercase()),
            ("reversed", rev.clone()),
            ("reversed, dotted, upper", spaced(&rev.to_uppercase(), ".")),
            (
                "split in two lines",
                format!("{}\n  {}", &SECRET[..8], &SECRET[8..]),
            ),
            ("a partial run of six", SECRET[5..11].into()),
            ("interleaved with x", spaced(SECRET, "x")),
            ("interleaved with digits", spaced(SECRET, "00")),
            (
                "go's %!d per character",
                SECRET.chars().map(|c| format!("%!d(string={c})")).collect(),
            ),
            ("fullwidth", fullwidth),
            (
                "cyrillic look-alikes",
                SECRET.replace('p', "р").replace('k', "к"),
            ),
            (
                "hex with colons",
                spaced(
                    &SECRET
                        .bytes()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>(),
                    ":",
                ),
            ),
            (
                "hex reversed",
                SECRET.bytes().rev().map(|b| format!("{b:02X}")).collect(),
            ),
            ("base64 with dots", spaced(&STANDARD.encode(SECRET), ".")),
            ("base64, lowercased", STANDARD.encode(SECRET).to_lowercase()),
            ("base32", base32(SECRET.as_bytes())),
            ("base32 spaced", spaced(&base32(SECRET.as_bytes()), " ")),
            (
                "chunks of five with filler",
                SECRET
                    .as_bytes()
                    .chunks(5)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("QQQQQQQQ"),
            ),
        ];
        for (name, leaked) in cases {
            for msg in [
                leaked.clone(),
                format!(
                    "Error: execution error at (c/templates/x.yaml:3:4): bad value {leaked} here"
                ),
            ] {
                let out = redact_chart_text(&msg, &[SECRET.to_owned()]);
                assert!(out.contains(MASK), "{name}: {out}");
                // Chunks of five leave five at most, by construction.
                assert!(longest_run(&out, SECRET) < 5, "{name}: {out}");
                // Encoded spellings go whole too (the filler between chunks
                // is not the secret's and stays).
                if !name.starts_with("chunks") {
                    assert!(longest_run(&out, &leaked) < 8, "{name}: {out}");
                }
                assert!(
                    out.contains("Error") || !msg.contains("Error"),
                    "{name}: {out}"
                );
            }
        }
    }

    #[test]
    fn the_whole_transformed_run_is_masked_and_nothing_else() {
        let fullwidth: String = "Ｘｋ９ｑＴｒ２ｍＷｖ７ｂＬｐ４ｚ".into();
        let cyrillic = "Xк9qTr2mWv7bLр4z";
        let math = "𝐗𝐤𝟗𝐪𝐓𝐫𝟐𝐦𝐖𝐯𝟕𝐛𝐋𝐩𝟒𝐳";
        for (leaked, want) in [
            (fullwidth.as_str(), "a <redacted> b"),
            (cyrillic, "a <redacted> b"),
            (math, "a <redacted> b"),
            ("X.k.9.q.T.r", "a <redacted> b"),
            ("z4pLb7", "a <redacted> b"),
            (
                "X\u{200b}k\u{200b}9\u{200b}q\u{200b}T\u{200b}r",
                "a <redacted> b",
            ),
            // Five characters are not a run.
            ("Xk9qT", "a Xk9qT b"),
        ] {
            assert_eq!(
                redact_chart_text(&format!("a {leaked} b"), &[SECRET.to_owned()]),
                want,
                "{leaked}"
            );
        }
    }

    #[test]
    fn ordinary_messages_are_left_alone() {
        let secrets = [
            SECRET.to_owned(),
            "0123456789abcdef0123456789abcdef".to_owned(),
        ];
        for msg in [
            "Error: INSTALLATION FAILED: 1 error occurred: * Deployment.apps \"web\" is invalid",
            "execution error at (mysql/templates/secret.yaml:12:14): password is required",
            "context deadline exceeded after 300s; release cb-9c2d6d8e-3f7e-4c53 at revision 12",
            "listening on 0.0.0.0:8443, uid 1000, gid 1000, port 5432",
            "resource mapping not found for name: \"x\" namespace: \"apps\" from \"\": no matches for kind \"Foo\"",
        ] {
            assert_eq!(redact_chart_text(msg, &secrets), msg);
        }
    }

    /// Generated secrets of each alphabet, derived from `i` (no RNG in tests).
    fn generated(i: usize) -> [String; 2] {
        let d = ring::digest::digest(&ring::digest::SHA256, &i.to_be_bytes());
        let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let alnum: String = STANDARD_NO_PAD
            .encode(d.as_ref())
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect();
        [hex, alnum]
    }

    #[test]
    fn prose_and_logs_are_not_mistaken_for_secrets() {
        // This crate's README and sources: long, varied, full of hex,
        // numbers and identifiers, and none of it a generated secret.
        let text = [
            include_str!("../README.md"),
            include_str!("helm.rs"),
            include_str!("redact/runs.rs"),
        ]
        .concat();
        let mut masked = 0;
        for i in 0..12 {
            let out = redact_chart_text(&text, &generated(i));
            masked += out.matches(MASK).count();
        }
        // A false match costs a few garbled characters; they must stay rare.
        assert!(masked <= 2, "{masked} false matches");
    }

    #[test]
    fn base32_matches_rfc4648() {
        for (plain, want) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), want);
        }
    }
}
