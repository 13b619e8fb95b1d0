//! Small charts of the `/metrics` counters for the health page: inline SVG
//! written on the server (no script, no style attribute: the page's CSP
//! allows neither), one horizontal bar per series of a family.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::esc;

/// Bars in one chart at most; the rest are counted in a note.
const MAX_BARS: usize = 16;
const WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 380.0;
const BAR_HEIGHT: f64 = 18.0;

/// One series: its labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// `{a="b",…}` as exposed, or empty.
    pub labels: String,
    /// Its value.
    pub value: f64,
}

/// The series of Prometheus text by family, histogram buckets and sums
/// left out (their `_count` is the number of observations).
pub fn families(text: &str) -> BTreeMap<String, Vec<Series>> {
    let mut out: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.find('{') {
            Some(i) => (&series[..i], &series[i..]),
            None => (series, ""),
        };
        if name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_created") {
            continue;
        }
        out.entry(name.to_owned()).or_default().push(Series {
            labels: labels.to_owned(),
            value,
        });
    }
    out
}

/// A bar chart of one family, or `None` when every value is zero (a chart
/// of nothing says nothing the table doesn't).
pub fn bars(name: &str, series: &[Series]) -> Option<String> {
    let shown: Vec<&Series> = series
        .iter()
        .filter(|s| s.value.is_finite() && s.value > 0.0)
        .take(MAX_BARS)
        .collect();
    if shown.is_empty() {
        return None;
    }
    let max = shown.iter().map(|s| s.value).fold(0.0_f64, f64::max);
    let height = BAR_HEIGHT * shown.len() as f64 + 4.0;
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" aria-label=\"{}\">",
        esc(name),
        esc(name)
    );
    for (i, s) in shown.iter().enumerate() {
        let y = i as f64 * BAR_HEIGHT + 2.0;
        let w = ((WIDTH - LABEL_WIDTH - 60.0) * s.value / max).max(1.0);
        let label = if s.labels.is_empty() {
            "total"
        } else {
            s.labels.trim_start_matches('{').trim_end_matches('}')
        };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.0}\" class=\"label\">{}</text>\
             <rect x=\"{LABEL_WIDTH}\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"{:.0}\" class=\"bar\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\" class=\"value\">{}</text>",
            y + 13.0,
            esc(&shorten(label, 54)),
            BAR_HEIGHT - 4.0,
            LABEL_WIDTH + w + 4.0,
            y + 13.0,
            esc(&number(s.value))
        );
    }
    svg.push_str("</svg>");
    let hidden = series.iter().filter(|s| s.value > 0.0).count() - shown.len();
    if hidden > 0 {
        let _ = write!(svg, "<p class=\"note\">and {hidden} more series</p>");
    }
    svg.push_str("</figure>");
    Some(svg)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A value as the page shows it (`-0` as `0`).
pub fn number(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v };
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_group_series_and_skip_buckets() {
        let text = "# HELP x y\nops_total{kind=\"provision\",state=\"failed\"} 2\n\
                    ops_total{kind=\"bind\",state=\"succeeded\"} 5\nd_bucket{le=\"1\"} 3\nd_count 3\nd_sum 0.5\nup 1\n";
        let f = families(text);
        assert_eq!(f["ops_total"].len(), 2);
        assert_eq!(f["d_count"][0].value, 3.0);
        assert!(!f.contains_key("d_bucket") && !f.contains_key("d_sum"));
        let svg = bars("ops_total", &f["ops_total"]).unwrap();
        assert!(svg.contains("kind=&quot;bind&quot;"), "{svg}");
        assert!(!svg.contains("style="));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(
            bars(
                "z",
                &[Series {
                    labels: String::new(),
                    value: 0.0
                }]
            )
            .is_none()
        );
    }
}
