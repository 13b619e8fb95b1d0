//! How the broker reads and writes manifests: helm's output in, judged
//! documents out, and one canonical form back to helm, to the render
//! folder and to every other manifest file the broker writes.
//!
//! Kubernetes (helm, kubectl, the API server) reads YAML with Go's go-yaml
//! v2 through `sigs.k8s.io/yaml`: YAML 1.1 scalars, its own line breaks,
//! its own merge-key rules. The policy must judge the objects the cluster
//! will get, so [`read`] accepts only what both readers are known to read
//! alike and refuses the rest with the file, document and line:
//!
//! - raw text (`scan.rs`): U+2028, U+2029, U+0085, byte-order marks, carriage
//!   returns and other control characters; tabs in indentation; lines
//!   starting with `---` that are not bare separators, `...`, directives;
//! - structure (`read.rs`, from the parser's events): anchors, aliases,
//!   explicit tags, merge keys, duplicate keys, keys that are not strings
//!   to Go or that are lists or maps, unquoted values over several lines,
//!   tabs outside quoted or block scalars, the escape `\/`;
//! - plain scalars (`resolve.rs`) mean what go-yaml v2 resolves them to
//!   (`yes` is true, `0777` is 511, `1.0` is 1); infinities, NaN and numbers
//!   out of 64-bit range are refused.
//!
//! [`emit`] (`emit.rs`) then writes the judged trees, never the original
//! bytes. tests/yaml_differential.rs checks both halves against Go's own
//! decoders.

mod emit;
mod read;
mod resolve;
mod scan;

use std::fmt;

use serde_json::Value;

/// One judged document.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// Its number among the stream's non-empty documents (1-based).
    pub(crate) number: usize,
    /// The line of the stream where its content starts.
    pub(crate) line: usize,
    /// The template it came from (helm's `# Source:` comment), if named.
    pub(crate) source: Option<String>,
    /// The object as Kubernetes reads it.
    pub value: Value,
}

impl Doc {
    /// How messages name this document: `templates/x.yaml (document 3)`.
    #[cfg(test)]
    pub(crate) fn describe(&self) -> String {
        match &self.source {
            Some(s) => format!("{s} (document {})", self.number),
            None => format!("document {}", self.number),
        }
    }
}

/// Why a stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The template the document came from, if named.
    pub(crate) source: Option<String>,
    /// The document's number (1-based, as in [`Doc::number`]).
    pub(crate) document: usize,
    /// The line of the stream.
    pub(crate) line: usize,
    /// What was refused.
    pub(crate) message: String,
    /// The text is not YAML at all (rather than YAML read two ways).
    pub(crate) syntax: bool,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.source {
            write!(f, "{s}, ")?;
        }
        write!(
            f,
            "document {}, line {}: {}",
            self.document, self.line, self.message
        )
    }
}

impl std::error::Error for ReadError {}

/// Reads helm's multi-document output; empty and null documents are left
/// out.
pub fn read(text: &str) -> Result<Vec<Doc>, ReadError> {
    let mut docs = Vec::new();
    for chunk in scan::split(text)? {
        if let Some(doc) = read::document(&chunk)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// The canonical stream of `docs`: what the broker hands to helm and
/// writes to files.
pub fn emit(docs: &[Doc]) -> String {
    emit::stream(docs)
}

/// One object the broker built itself (a binding Secret, a Namespace), in
/// the same canonical form. Its keys must be short enough to stay keys to
/// Go's reader.
pub fn emit_object(value: Value) -> Result<String, String> {
    let doc = Doc {
        number: 1,
        line: 1,
        source: None,
        value,
    };
    let text = emit(std::slice::from_ref(&doc));
    // What the broker writes must read back as itself.
    match read(&text) {
        Ok(back) if back.len() == 1 && back[0].value == doc.value => Ok(text),
        Ok(_) => Err("the object does not read back as itself".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
