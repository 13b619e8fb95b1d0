//! Rules on the raw text, before any YAML parsing: characters Go's reader
//! treats differently (line breaks it knows and the parser here doesn't,
//! byte-order marks, control characters), tabs in indentation, and how the
//! stream splits into documents. Kubernetes' readers split a stream on every
//! line that begins with `---` (kubectl's YAML reader, helm's
//! `SplitManifests`), whatever a YAML parser would say; here such a line must
//! be a bare `---`, and the text between two is parsed as one document.

use super::ReadError;

/// One document's text and where it starts.
pub(super) struct Chunk<'a> {
    pub(crate) text: &'a str,
    /// Line number (1-based) of the chunk's first line in the stream.
    pub(crate) first_line: usize,
    /// Its number among the stream's documents that hold more than
    /// comments and blank lines (1-based).
    pub(crate) number: usize,
    /// The template it came from: helm's `# Source:` comment among the
    /// comment lines before its content.
    pub(crate) source: Option<&'a str>,
}

/// The file a `# Source:` comment line before the content of `text` names.
fn source_of(text: &str) -> Option<&str> {
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() {
            continue;
        }
        let comment = t.strip_prefix('#')?;
        if let Some(file) = comment.trim().strip_prefix("Source:") {
            return Some(file.trim());
        }
    }
    None
}

/// Whether a chunk holds anything but blank lines and comments.
fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#')
    })
}

/// Adds `text` as a document if it has content.
fn push<'a>(chunks: &mut Vec<Chunk<'a>>, text: &'a str, first_line: usize) {
    if has_content(text) {
        let number = chunks.len() + 1;
        chunks.push(Chunk {
            text,
            first_line,
            number,
            source: source_of(text),
        });
    }
}

/// Whether Go's YAML reader takes `c` as an ordinary printable character,
/// and nothing else reads it as a line break or a byte-order mark.
fn plain_char(c: char) -> bool {
    matches!(c, '\n' | '\t' | ' '..='~')
        || matches!(c as u32, 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
            && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

fn describe(c: char) -> String {
    match c {
        '\u{2028}' => "U+2028 (line separator, a line break to Go's YAML 1.1 reader)".into(),
        '\u{2029}' => "U+2029 (paragraph separator, a line break to Go's YAML 1.1 reader)".into(),
        '\u{85}' => "U+0085 (next line, a line break to Go's YAML 1.1 reader)".into(),
        '\u{FEFF}' => "U+FEFF (a byte-order mark)".into(),
        '\r' => "a carriage return (only \\n ends a line here)".into(),
        c => format!("U+{:04X} (a control or non-character)", c as u32),
    }
}

/// Splits `text` into documents, refusing what the raw-text rules refuse.
pub(super) fn split(text: &str) -> Result<Vec<Chunk<'_>>, ReadError> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    let mut offset = 0;
    // The template being read, from helm's `# Source:` comments, for errors.
    let mut source: Option<&str> = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let number = i + 1;
        if let Some(file) = line.strip_prefix("# Source: ") {
            if file.chars().all(plain_char) {
                source = Some(file.trim_end());
            }
        }
        let fail = |message: String| ReadError {
            source: source.map(str::to_owned),
            document: chunks.len() + 1,
            line: number,
            message,
            syntax: false,
        };
        if let Some(c) = line.chars().find(|&c| !plain_char(c)) {
            return Err(fail(format!("the text holds {}", describe(c))));
        }
        let body = line.trim_end_matches('\n');
        let indent = &body[..body.len() - body.trim_start_matches([' ', '\t']).len()];
        if indent.contains('\t') {
            return Err(fail(
                "a tab in the indentation (YAML readers disagree on tabs there)".into(),
            ));
        }
        if body.starts_with("---") {
            if body.trim_end_matches(' ') != "---" {
                return Err(fail(
                    "a line starting with `---` that is not a bare document separator \
                     (Kubernetes splits documents on it wherever it is)"
                        .into(),
                ));
            }
            push(&mut chunks, &text[start..offset], first_line);
            start = offset + line.len();
            first_line = number + 1;
            source = None;
        } else if body.starts_with("...") {
            return Err(fail("a `...` document end marker".into()));
        } else if body.starts_with('%') {
            return Err(fail("a YAML directive (a line starting with `%`)".into()));
        }
        offset += line.len();
    }
    push(&mut chunks, &text[start..], first_line);
    Ok(chunks)
}
