//! HTML helpers: the one escaping function every page uses for text it did
//! not write itself, the page frame, and times as people read them.

use crate::broker::model::InstanceState;
use percent_encoding::{AsciiSet, CONTROLS};

/// What a path segment or query value must have percent-encoded.
pub(crate) const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'+')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'=')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// Text as HTML text or attribute value (quoted with `"`).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value for a URL path segment or query, already HTML-escaped.
pub fn url_part(s: &str) -> String {
    esc(&percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string())
}

/// A whole page. `nav` is false for pages reached by a signed link, which
/// may show nothing but their instance. `body` is HTML built with [`esc`].
pub(crate) fn page(title: &str, nav: bool, body: &str) -> String {
    let nav = if nav {
        r#"<nav><a href="/ui/instances">Instances</a> <a href="/ui/catalog">Catalog</a> <a href="/ui/health">Health</a></nav>"#
    } else {
        ""
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · chartbroker</title><link rel=\"stylesheet\" href=\"/ui/static/ui.css\"><link rel=\"icon\" href=\"/ui/static/icon.svg\">\
         <script src=\"/ui/static/live.js\" defer></script></head>\
         <body><header><strong>chartbroker</strong> {nav}</header><main>\n<h1>{}</h1>\n{body}\n</main></body></html>\n",
        esc(title),
        esc(title)
    )
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SSZ`.
pub(crate) fn time(secs: u64) -> String {
    crate::duration::utc_time(secs)
}

/// A span of seconds, short (`42s`, `3m 5s`, `2h 1m`, `4d 3h`).
pub(crate) fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// An instance state as the pages and their filters name it.
pub(crate) fn state_name(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Provisioning => "provisioning",
        InstanceState::ProvisionFailed => "provision_failed",
        InstanceState::Ready => "ready",
        InstanceState::Deleted => "deleted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            esc(r#"<script>alert('x')</script>&"q""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;q&quot;"
        );
        assert_eq!(url_part("a/b\"<"), "a%2Fb%22%3C");
    }

    #[test]
    fn times_read_as_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00Z");
        assert_eq!(time(1_796_486_400), "2026-12-05 16:00:00Z");
        assert_eq!(span(3725), "1h 2m");
    }
}
