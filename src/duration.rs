//! Durations as people write them, everywhere the broker takes one (flags,
//! environment, catalog): `300`, `300s`, `5m`, `1h30m`, `1.5h`, `250ms`.
//!
//! The grammar is Go's `time.ParseDuration` (what helm's own `--timeout`
//! takes), plus the broker's older form: a bare number is seconds. Words
//! (`5 minutes`), signs and absurd lengths are refused with a message that
//! shows the accepted forms.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// The longest duration accepted: past it a value is a typo (and a deadline
/// that far away would overflow clock arithmetic).
pub(crate) const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

const FORMS: &str = "write it like 300, 300s, 5m or 1h30m (units h, m, s, ms, us, ns; \
                     a bare number is seconds)";

/// Why a text is not a duration; its `Display` is meant for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the accepted forms.
    #[error("{0:?} is not a duration: {FORMS}")]
    Invalid(String),
    /// A minus sign.
    #[error("{0:?} is negative: a duration is 0 or more")]
    Negative(String),
    /// Longer than [`MAX`].
    #[error("{0:?} is longer than the maximum of 8784h (366 days)")]
    TooLong(String),
}

/// Parses `text` (surrounding whitespace ignored).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let invalid = || DurationError::Invalid(text.to_owned());
    if s.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    // Nanoseconds in u128, saturating, checked against MAX after each part.
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            // A bare number is seconds, but only alone: `1h30` is a typo.
            "" if rest.len() == s.len() => 1_000_000_000,
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            _ => return Err(invalid()),
        };
        total = total.saturating_add(number(num, scale).ok_or_else(invalid)?);
        if total > MAX.as_nanos() {
            return Err(DurationError::TooLong(text.to_owned()));
        }
        rest = after;
    }
    Ok(Duration::from_nanos(
        u64::try_from(total).expect("MAX fits in u64 nanoseconds"),
    ))
}

/// `int[.frac]` times `scale` nanoseconds, fractions below 1 ns dropped,
/// saturating (the caller refuses anything past [`MAX`]).
fn number(num: &str, scale: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().unwrap_or(u128::MAX)
    };
    let mut frac_ns = 0u128;
    let mut place = scale;
    for b in frac.bytes() {
        place /= 10;
        frac_ns += u128::from(b - b'0') * place;
    }
    Some(int.saturating_mul(scale).saturating_add(frac_ns))
}

/// Formats `d` the way [`parse`] reads it back, Go style (`1h30m`, `90s`,
/// `250ms`), for messages and `--help` defaults.
pub(crate) fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 && nanos == 0 {
        return "0s".into();
    }
    if secs == 0 {
        return if nanos % 1_000_000 == 0 {
            format!("{}ms", nanos / 1_000_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let mut out = String::new();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || nanos > 0 {
        if nanos > 0 {
            let frac = format!("{:09}", nanos);
            out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

/// A duration in a document (catalog YAML, upstream config): a number of
/// seconds (`30`, `0.5`) or a duration text (`"5m"`, `"1h30m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Secs(pub Duration);

impl<'de> serde::Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds (300) or a text like 5m or 1h30m")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secs, E> {
                parse(&v.to_string()).map(Secs).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secs, E> {
                parse(&v.to_string()).map(Secs).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Secs, E> {
                if !v.is_finite() {
                    return Err(E::custom(DurationError::Invalid(v.to_string())));
                }
                if v < 0.0 {
                    return Err(E::custom(DurationError::Negative(v.to_string())));
                }
                if v > MAX.as_secs_f64() {
                    return Err(E::custom(DurationError::TooLong(v.to_string())));
                }
                Ok(Secs(Duration::from_secs_f64(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secs, E> {
                parse(v).map(Secs).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// As seconds, which [`Secs`] reads back (records keep catalog sections).
impl serde::Serialize for Secs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SSZ`.
pub(crate) fn utc_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn accepts_go_durations_and_bare_seconds() {
        assert_eq!(ok("300"), Duration::from_secs(300));
        assert_eq!(ok(" 300 "), Duration::from_secs(300));
        assert_eq!(ok("300s"), Duration::from_secs(300));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h0m30s"), Duration::from_secs(3630));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("0.5"), Duration::from_millis(500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1m0.001s"), Duration::from_millis(60_001));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("10µs"), Duration::from_micros(10));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("8784h"), MAX);
    }

    #[test]
    fn refuses_words_signs_and_typos_with_the_accepted_forms() {
        for bad in [
            "",
            " ",
            "5 minutes",
            "5min",
            "5x",
            "1h30",
            "h",
            "1..5s",
            "1.2.3s",
            "+5s",
            "5 m",
            "1d",
            "5M",
            "s5",
            ".s",
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e, DurationError::Invalid(bad.into()));
            assert!(
                e.to_string()
                    .contains("write it like 300, 300s, 5m or 1h30m"),
                "{e}"
            );
        }
        assert_eq!(
            parse("5 minutes").unwrap_err().to_string(),
            "\"5 minutes\" is not a duration: write it like 300, 300s, 5m or 1h30m \
             (units h, m, s, ms, us, ns; a bare number is seconds)"
        );
        let e = parse("-3s").unwrap_err();
        assert_eq!(e, DurationError::Negative("-3s".into()));
        assert_eq!(
            e.to_string(),
            "\"-3s\" is negative: a duration is 0 or more"
        );
    }

    #[test]
    fn refuses_overflow_and_absurd_lengths() {
        for bad in [
            "8785h",
            "99999999999999999999",
            "18446744073709551616s",
            "9999999999999999999999999h",
            "8784h1ns",
        ] {
            assert_eq!(parse(bad), Err(DurationError::TooLong(bad.into())), "{bad}");
        }
        let long = format!("{}h", "1".repeat(60));
        assert_eq!(parse(&long), Err(DurationError::TooLong(long.clone())));
        assert!(
            parse("8785h")
                .unwrap_err()
                .to_string()
                .contains("maximum of 8784h")
        );
    }

    #[test]
    fn format_reads_back() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(3601), "1h1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_nanos(7), "7ns"),
        ] {
            assert_eq!(format(d), text);
            assert_eq!(parse(text), Ok(d));
        }
    }

    #[test]
    fn documents_take_numbers_or_texts() {
        let v: Vec<Secs> = serde_json::from_str(r#"[30, 0.5, "5m", "1h30m", "90"]"#).unwrap();
        let secs: Vec<f64> = v.iter().map(|s| s.0.as_secs_f64()).collect();
        assert_eq!(secs, [30.0, 0.5, 300.0, 5400.0, 90.0]);
        for (bad, needle) in [
            ("-1", "negative"),
            ("-0.5", "negative"),
            ("\"5 minutes\"", "not a duration"),
            ("1e12", "maximum"),
            ("true", "a duration: seconds"),
        ] {
            let e = serde_json::from_str::<Secs>(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
