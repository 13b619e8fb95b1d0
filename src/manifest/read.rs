//! One document's text to a JSON tree, from the parser's events, so that
//! styles, tags, anchors and aliases are all visible and each is accepted
//! only where Go's reader is known to agree.

use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};
use serde_json::{Map, Value};

use super::resolve::{Plain, resolve};
use super::scan::Chunk;
use super::{Doc, ReadError};

/// The longest key accepted, as emitted: go-yaml stops treating a key as
/// one once it runs past 1024 characters.
const MAX_KEY_CHARS: usize = 1000;

/// A collection being read; `flow` is the line a `[`/`{` opened on.
enum Frame {
    Seq(Vec<Value>, Option<usize>),
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        flow: Option<usize>,
    },
}

struct Builder<'a> {
    chunk: &'a Chunk<'a>,
    stack: Vec<Frame>,
    root: Option<Value>,
    root_line: usize,
    source: Option<String>,
    documents: usize,
    /// Byte ranges of quoted and block scalars: the only places a tab may be.
    quoted: Vec<Range<usize>>,
    /// How many of the open collections are flow (`[...]`, `{...}`).
    flow: usize,
}

/// Whether a plain scalar inside `[...]` or `{...}` is plain text to every
/// reader: flow indicators, `:`, `?`, `#` and escapes there are read
/// differently (YAML 1.2 takes `a:1` as text, and libyaml stumbles on `\`).
fn flow_safe(text: &str) -> bool {
    let inner = |c: char| c.is_alphanumeric() || " ._/+-=@$()<>^;~".contains(c);
    let first = |c: char| c.is_alphanumeric() || "._/$(~".contains(c);
    // `-1`, `+.5`, `-c`, `--flag`: a sign or dash right before text.
    let signed = text.starts_with(['-', '+'])
        && text[1..].starts_with(|c: char| c.is_alphanumeric() || c == '.' || c == '-');
    text.is_empty()
        || text.chars().all(inner) && (text.starts_with(first) || signed) && !text.ends_with(' ')
}

impl Builder<'_> {
    fn line(&self, span: &Span) -> usize {
        self.chunk.first_line + span.start.line() - 1
    }

    fn refuse(&self, span: &Span, message: String) -> ReadError {
        self.fail(self.line(span), message, false)
    }

    fn fail(&self, line: usize, message: String, syntax: bool) -> ReadError {
        ReadError {
            source: self.source.clone(),
            document: self.chunk.number,
            line,
            message,
            syntax,
        }
    }

    fn in_key_position(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// Anchors, aliases and tags are refused wherever they are.
    fn plain_node(
        &self,
        span: &Span,
        anchor: usize,
        tag: bool,
        what: &str,
    ) -> Result<(), ReadError> {
        if anchor != 0 {
            return Err(self.refuse(span, format!("an anchor (`&`) on a {what}")));
        }
        if tag {
            return Err(self.refuse(span, format!("an explicit tag (`!`) on a {what}")));
        }
        Ok(())
    }

    /// Adds a finished node to its parent (or makes it the document).
    fn add(&mut self, span: &Span, value: Value) -> Result<(), ReadError> {
        if self.stack.is_empty() && !matches!(value, Value::Array(_) | Value::Object(_)) {
            self.root_line = self.line(span);
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map { map, key, .. }) => {
                let k = key.take().expect("a value follows its key");
                map.insert(k, value);
            }
        }
        Ok(())
    }

    fn key(&mut self, span: &Span, text: &str, style: ScalarStyle) -> Result<(), ReadError> {
        let key = match style {
            ScalarStyle::Plain => match resolve(text) {
                Plain::Value(Value::String(s)) => s,
                Plain::Merge => {
                    return Err(self.refuse(
                        span,
                        "a merge key (`<<`): YAML readers disagree on which value wins".into(),
                    ));
                }
                Plain::Value(v) => {
                    return Err(self.refuse(
                        span,
                        format!(
                            "the key `{text}` is not a string to Kubernetes' YAML 1.1 reader \
                             (it reads {v}); quote it"
                        ),
                    ));
                }
                Plain::Refused(why) => return Err(self.refuse(span, why)),
            },
            // Quoted, `<<` is text to go-yaml too (its merge needs a plain key).
            _ => text.to_owned(),
        };
        if span.start.line() != span.end.line() {
            return Err(self.refuse(span, "a key over several lines".into()));
        }
        if super::emit::quoted_chars(&key) > MAX_KEY_CHARS {
            return Err(self.refuse(
                span,
                format!("a key longer than {MAX_KEY_CHARS} characters"),
            ));
        }
        let Some(Frame::Map { map, key: slot, .. }) = self.stack.last_mut() else {
            unreachable!("keys are read in maps")
        };
        if map.contains_key(&key) {
            let line = self.line(span);
            // YAML forbids it; Go keeps the last one.
            return Err(self.fail(line, format!("the key {key:?} appears twice"), true));
        }
        *slot = Some(key);
        Ok(())
    }

    fn scalar(&mut self, span: &Span, text: &str, style: ScalarStyle) -> Result<(), ReadError> {
        if style != ScalarStyle::Plain {
            if let Some(r) = span.byte_range() {
                self.quoted.push(r);
            }
        }
        if style == ScalarStyle::Plain && self.flow > 0 && !flow_safe(text) {
            return Err(self.refuse(
                span,
                format!("the unquoted `{text}` inside `[...]` or `{{...}}` (quote it)"),
            ));
        }
        if self.in_key_position() {
            return self.key(span, text, style);
        }
        if self.stack.is_empty() && matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            // Its lines may start at column 0, which go-yaml doesn't take.
            return Err(self.refuse(span, "a document that is a block scalar".into()));
        }
        let value = match style {
            ScalarStyle::Plain => {
                if span.start.line() != span.end.line() {
                    return Err(self.refuse(
                        span,
                        "an unquoted value over several lines (quote it)".into(),
                    ));
                }
                match resolve(text) {
                    Plain::Value(v) => v,
                    Plain::Merge => Value::String(text.to_owned()),
                    Plain::Refused(why) => return Err(self.refuse(span, why)),
                }
            }
            ScalarStyle::DoubleQuoted => {
                let raw = span.slice(self.chunk.text).unwrap_or_default();
                if has_escaped_slash(raw) {
                    return Err(self.refuse(
                        span,
                        "the escape `\\/`, which Kubernetes' YAML reader does not know".into(),
                    ));
                }
                Value::String(text.to_owned())
            }
            _ => Value::String(text.to_owned()),
        };
        self.add(span, value)
    }

    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), ReadError> {
        let map = matches!(event, Event::MappingStart(..));
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(explicit, version) => {
                self.documents += 1;
                if explicit || version.is_some() || self.documents > 1 {
                    return Err(self.refuse(span, "a second document marker".into()));
                }
                Ok(())
            }
            // Not emitted ([`document`] turns them off).
            Event::Comment(..) => Ok(()),
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                Err(self.refuse(span, "an alias (`*`)".into()))
            }
            Event::Anchor(..) => Err(self.refuse(span, "an anchor (`&`)".into())),
            Event::Scalar(text, style, anchor, tag) => {
                self.plain_node(span, anchor, tag.is_some(), "value")?;
                self.scalar(span, &text, style)
            }
            Event::SequenceStart(style, anchor, tag) | Event::MappingStart(style, anchor, tag) => {
                let flow = (style == StructureStyle::Flow).then(|| span.start.line());
                if flow.is_some() {
                    self.flow += 1;
                }
                self.plain_node(span, anchor, tag.is_some(), "collection")?;
                if self.in_key_position() {
                    return Err(self.refuse(span, "a key that is a list or a map".into()));
                }
                if self.stack.is_empty() {
                    self.root_line = self.line(span);
                }
                self.stack.push(if map {
                    Frame::Map {
                        map: Map::new(),
                        key: None,
                        flow,
                    }
                } else {
                    Frame::Seq(Vec::new(), flow)
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, flow) = match self.stack.pop().expect("balanced events") {
                    Frame::Seq(items, flow) => (Value::Array(items), flow),
                    Frame::Map { map, flow, .. } => (Value::Object(map), flow),
                };
                if let Some(line) = flow {
                    self.flow -= 1;
                    if span.end.line() != line {
                        return Err(
                            self.refuse(span, "a `[...]` or `{...}` over several lines".into())
                        );
                    }
                }
                self.add(span, value)
            }
            // The event list may grow: what isn't known is refused.
            _ => Err(self.refuse(span, "YAML this reader does not know".into())),
        }
    }

    /// Tabs are content only inside quoted and block scalars.
    fn check_tabs(&self) -> Result<(), ReadError> {
        for (at, _) in self.chunk.text.match_indices('\t') {
            if !self.quoted.iter().any(|r| r.contains(&at)) {
                let line = self.chunk.first_line + self.chunk.text[..at].matches('\n').count();
                return Err(self.fail(
                    line,
                    "a tab outside a quoted or block scalar (YAML readers disagree on tabs)".into(),
                    false,
                ));
            }
        }
        Ok(())
    }
}

/// Whether a double-quoted scalar's source uses `\/` (YAML 1.2 only).
fn has_escaped_slash(raw: &str) -> bool {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.next() == Some('/') {
            return true;
        }
    }
    false
}

/// Reads one document; None when it is empty or null.
pub(super) fn document(chunk: &Chunk<'_>) -> Result<Option<Doc>, ReadError> {
    let mut b = Builder {
        chunk,
        stack: Vec::new(),
        root: None,
        root_line: chunk.first_line,
        source: chunk.source.map(str::to_owned),
        documents: 0,
        quoted: Vec::new(),
        flow: 0,
    };
    // Comment events cost the parser a tenth of its time (callgrind, a
    // provision), and the one comment wanted, helm's `# Source:`, the
    // raw-text scan found already.
    let options = granit_parser::options! { emit_comments: false };
    for item in Parser::new_from_str_with_options(chunk.text, options) {
        let (event, span) = item.map_err(|e| {
            let line = chunk.first_line + e.marker().line().saturating_sub(1);
            b.fail(line, e.info(), true)
        })?;
        b.event(event, &span)?;
    }
    b.check_tabs()?;
    Ok(match b.root {
        None | Some(Value::Null) => None,
        Some(value) => Some(Doc {
            number: chunk.number,
            line: b.root_line,
            source: b.source,
            value,
        }),
    })
}
