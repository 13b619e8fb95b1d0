//! Finding a secret's characters however a template rearranged them.
//!
//! A chart's `fail` or a template error is text the chart author writes,
//! so a secret can reach it transformed: dots or zero-width characters
//! between its characters, split across lines, upper-cased, reversed,
//! spelled with look-alike letters, interleaved with filler at a fixed
//! step, or cut into short pieces. Exact string replacement misses all of
//! that. Here the message and each secret form are *folded* to the same
//! alphabet (ASCII letters and digits, lower case; look-alikes and
//! compatibility forms mapped to ASCII, everything else dropped as a
//! separator), and every run of [`MIN_RUN`] or more secret characters in
//! the folded message is masked in the original text, separators
//! included.
//!
//! What no matcher can undo is left: a chart can encrypt a secret
//! (`encryptAES`), hash it piece by piece, or map its characters through a
//! substitution of its own. Redaction keeps secrets out of messages by
//! accident or by cheap tricks; it is not a boundary against a chart
//! author who means to exfiltrate (the policy and the release identity
//! are).

use std::collections::HashSet;
use std::ops::Range;

use unicode_normalization::UnicodeNormalization as _;

/// Shortest run of a secret's characters that is masked.
pub(crate) const MIN_RUN: usize = 6;

/// Secret characters interleaved with filler at a fixed step (`a.b.c`
/// folds to `abc`, but `aXbXc` or Go's `%!d(string=a)` per character
/// keeps letters between them) are found up to this step.
const MAX_STEP: usize = 16;

/// Short pieces: [`PIECES`] or more separate pieces of [`PIECE`]
/// characters of a secret close together are masked too, so cutting a
/// secret into 5-character chunks with filler between them does not pass.
const PIECE: usize = 4;
const PIECES: usize = 3;
/// Pieces count together when each starts within this many folded
/// characters of the one before: a secret cut up for a reader stays
/// together, matches by chance across a long text don't.
const NEAR: usize = 32;

/// A secret form folded, with how many of its characters stand for
/// [`MIN_RUN`] characters of the secret (hex spells a byte with two).
pub(crate) struct Form {
    pub(crate) folded: Vec<u8>,
    pub(crate) window: usize,
    /// Whether interleaving and short pieces are looked for (the plain
    /// spelling only: encodings of encodings would only add noise).
    pub(crate) plain: bool,
}

impl Form {
    pub(crate) fn new(text: &str, window: usize, plain: bool) -> Self {
        Form {
            folded: fold(text).chars,
            window,
            plain,
        }
    }
}

/// A text reduced to folded characters, each with the byte range of the
/// original character it came from.
struct Folded {
    chars: Vec<u8>,
    spans: Vec<Range<usize>>,
}

fn fold(text: &str) -> Folded {
    let mut out = Folded {
        chars: Vec::with_capacity(text.len()),
        spans: Vec::with_capacity(text.len()),
    };
    let mut push = |c: char, span: &Range<usize>| {
        if c.is_ascii_alphanumeric() {
            out.chars.push(c.to_ascii_lowercase() as u8);
            out.spans.push(span.clone());
        }
    };
    for (at, c) in text.char_indices() {
        let span = at..at + c.len_utf8();
        if c.is_ascii() {
            push(c, &span);
        } else if let Some(a) = look_alike(c) {
            push(a, &span);
        } else {
            // Fullwidth, mathematical, circled and superscript letters and
            // digits, ligatures: their compatibility decomposition.
            for d in std::iter::once(c).nfkc() {
                push(d, &span);
            }
        }
    }
    out
}

/// Cyrillic and Greek letters drawn like Latin ones (NFKC keeps them).
fn look_alike(c: char) -> Option<char> {
    const PAIRS: &[(&str, char)] = &[
        ("аАαΑ", 'a'),
        ("вВβΒ", 'b'),
        ("сСϲϹ", 'c'),
        ("ԁ", 'd'),
        ("еЕεΕ", 'e'),
        ("һНΗ", 'h'),
        ("іІιΙӏ", 'i'),
        ("јЈ", 'j'),
        ("кКκΚ", 'k'),
        ("мМΜ", 'm'),
        ("ΝпП", 'n'),
        ("оОοΟσ", 'o'),
        ("рРρΡ", 'p'),
        ("ԛ", 'q'),
        ("ѕЅ", 's'),
        ("тТτΤ", 't'),
        ("υ", 'u'),
        ("ν", 'v'),
        ("ԝ", 'w'),
        ("хХχΧ", 'x'),
        ("уУүҮγΥ", 'y'),
        ("Ζ", 'z'),
    ];
    PAIRS
        .iter()
        .find(|(set, _)| set.contains(c))
        .map(|(_, a)| *a)
}

/// The byte ranges of `message` that carry a run of any form.
pub(crate) fn find(message: &str, forms: &[Form]) -> Vec<Range<usize>> {
    let text = fold(message);
    let c = &text.chars;
    let mut hits: Vec<Range<usize>> = Vec::new();
    let mut mark = |first: usize, last: usize| {
        hits.push(text.spans[first].start..text.spans[last].end);
    };
    let grams = Grams::of(forms);
    for (&window, set) in &grams.runs {
        for start in 0..c.len().saturating_sub(window - 1) {
            if grams.may_start(&c[start..start + 3]) && set.contains(&c[start..start + window]) {
                mark(start, start + window - 1);
            }
        }
    }
    let mut buf = [0u8; MIN_RUN];
    for step in 2..=MAX_STEP {
        for start in 0..c.len().saturating_sub((MIN_RUN - 1) * step) {
            if !grams.may_start(&[c[start], c[start + step], c[start + 2 * step]]) {
                continue;
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = c[start + i * step];
            }
            if grams.stepped.contains(&buf[..]) && steady_filler(c, start, step) {
                mark(start, start + (MIN_RUN - 1) * step);
            }
        }
    }
    let pieces: Vec<usize> = (0..c.len().saturating_sub(PIECE - 1))
        .filter(|&s| grams.may_start(&c[s..s + 3]) && grams.pieces.contains(&c[s..s + PIECE]))
        .collect();
    for cluster in pieces.chunk_by(|a, b| b - a <= NEAR) {
        // Separate pieces of different parts of the secret: one word
        // repeated ("command ... command") is not a secret cut up.
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut last_end = 0;
        for &s in cluster {
            let piece = &c[s..s + PIECE];
            if (seen.is_empty() || s >= last_end) && !seen.contains(&piece) {
                seen.push(piece);
                last_end = s + PIECE;
            }
        }
        if seen.len() >= PIECES {
            for &s in cluster {
                mark(s, s + PIECE - 1);
            }
        }
    }
    hits
}

/// Whether the filler between the characters of a stepped run could be
/// an interleaving: anything for steps up to 3, else the same filler in
/// every gap, digits aside (a counter). Without it, every sixteenth
/// letter of a long English text matches some secret now and then.
fn steady_filler(c: &[u8], start: usize, step: usize) -> bool {
    if step <= 3 {
        return true;
    }
    let shape = |gap: usize| {
        let from = start + gap * step + 1;
        c[from..from + step - 1]
            .iter()
            .map(|b| if b.is_ascii_digit() { b'0' } else { *b })
    };
    (1..MIN_RUN - 1).all(|gap| shape(gap).eq(shape(0)))
}

/// The index of a gram's first three (folded) characters.
fn prefix(w: &[u8]) -> usize {
    let digit = |b: u8| match b {
        b'0'..=b'9' => usize::from(b - b'0'),
        _ => usize::from(b - b'a') + 10,
    };
    (digit(w[0]) * 36 + digit(w[1])) * 36 + digit(w[2])
}

/// Every window of every form, forwards and reversed.
#[derive(Default)]
struct Grams {
    /// By window length.
    runs: std::collections::BTreeMap<usize, HashSet<Vec<u8>>>,
    /// [`MIN_RUN`] characters of a plain spelling, for interleaving.
    stepped: HashSet<Vec<u8>>,
    /// [`PIECE`] characters of a plain spelling.
    pieces: HashSet<Vec<u8>>,
    /// The first three characters of every gram: most windows of a
    /// message are turned away by this table before anything is hashed.
    starts: Vec<bool>,
}

impl Grams {
    fn may_start(&self, first: &[u8]) -> bool {
        self.starts[prefix(first)]
    }

    fn of(forms: &[Form]) -> Self {
        let mut g = Grams {
            starts: vec![false; 36 * 36 * 36],
            ..Grams::default()
        };
        for f in forms.iter().filter(|f| f.folded.len() >= f.window) {
            let reversed: Vec<u8> = f.folded.iter().rev().copied().collect();
            for spelling in [&f.folded, &reversed] {
                let set = g.runs.entry(f.window).or_default();
                set.extend(spelling.windows(f.window).map(<[u8]>::to_vec));
                if !f.plain {
                    continue;
                }
                g.stepped
                    .extend(spelling.windows(MIN_RUN).map(<[u8]>::to_vec));
                // Pieces made only of digits are too common in messages
                // (line numbers, ports) to mean anything.
                g.pieces.extend(
                    spelling
                        .windows(PIECE)
                        .filter(|w| !w.iter().all(u8::is_ascii_digit))
                        .map(<[u8]>::to_vec),
                );
            }
        }
        let firsts: Vec<usize> = g
            .runs
            .values()
            .flatten()
            .chain(&g.stepped)
            .chain(&g.pieces)
            .map(|w| prefix(w))
            .collect();
        for p in firsts {
            g.starts[p] = true;
        }
        g
    }
}
