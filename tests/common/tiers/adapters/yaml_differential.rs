//! Helpers of the tests in tests/adapters/yaml_differential.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};

use chartbroker::manifest::{self, Doc};
use common::goyaml::{GoYaml, same_list};
use proptest::prelude::*;
use serde_json::Value;

pub fn bypass() -> bool {
    std::env::var_os("CHARTBROKER_YAMLDIFF_BYPASS").is_some_and(|v| v == "1")
}

pub fn cases() -> u32 {
    std::env::var("CHARTBROKER_YAML_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The bytes the broker hands on for judged `docs` read from `text`.
pub fn emitted(text: &str, docs: &[Doc]) -> String {
    if bypass() {
        text.to_owned()
    } else {
        manifest::emit(docs)
    }
}

/// Checks the property on `text`; Some(judged trees) when it was accepted.
pub fn agree(go: &mut GoYaml, text: &str) -> Result<Option<Vec<Value>>, String> {
    let Ok(docs) = manifest::read(text) else {
        return Ok(None);
    };
    let judged: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
    let original = go.read(text.as_bytes());
    if !original.as_ref().is_ok_and(|o| same_list(o, &judged)) {
        return Err(format!(
            "accepted {text:?}\n judged {judged:?}\n Go reads the original as {original:?}"
        ));
    }
    let out = emitted(text, &docs);
    let back = go.read(out.as_bytes());
    if !back.as_ref().is_ok_and(|b| same_list(b, &judged)) {
        return Err(format!(
            "accepted {text:?}\n judged {judged:?}\n emitted {out:?}\n Go reads that as {back:?}"
        ));
    }
    Ok(Some(judged))
}

/// Every folder holding a Chart.yaml under `root`.
pub fn charts(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.join("Chart.yaml").is_file() {
            out.push(p);
        } else if p.is_dir() {
            charts(&p, out);
        }
    }
}

/// The corpus: hand-written hostile streams, and the pieces generated
/// documents are built from (tests/fixtures/yaml-corpus/corpus.json).
pub struct Corpus {
    pub hostile: Vec<String>,
    pub scalars: Vec<String>,
    pub keys: Vec<String>,
    pub spice: Vec<String>,
}

pub fn corpus() -> Corpus {
    let path = common::fixtures().join("yaml-corpus/corpus.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let list = |k: &str| -> Vec<String> { serde_json::from_value(v[k].clone()).unwrap() };
    Corpus {
        hostile: list("hostile"),
        scalars: list("scalars"),
        keys: list("keys"),
        spice: list("spice"),
    }
}

#[derive(Debug, Clone)]
pub enum Node {
    Scalar(String),
    Block(&'static str, Vec<String>),
    Map(Vec<(String, Node)>, bool),
    Seq(Vec<Node>, bool),
}

/// Mostly ordinary text, sometimes a spelling where readers part ways.
pub fn pick(
    exotic: &[String],
    plain: &'static str,
) -> impl Strategy<Value = String> + Clone + use<> {
    prop_oneof![
        3 => plain.prop_map(|s| s),
        1 => proptest::sample::select(exotic.to_vec()),
    ]
}

pub fn node(c: &Corpus) -> impl Strategy<Value = Node> + use<> {
    let line = prop_oneof![4 => "[ -~é]{0,10}", 1 => "[ -~é\u{2028}\u{85}\t#:]{0,10}"];
    let leaf = prop_oneof![
        4 => pick(&c.scalars, "[a-z][a-z0-9 ._/-]{0,8}|\"[ -~é]{0,6}\"|'[a-z ]{0,6}'|[0-9]{1,4}")
            .prop_map(Node::Scalar),
        1 => (proptest::sample::select(&["|", "|-", "|+", ">", ">-", ">+", "|2"][..]),
              proptest::collection::vec(line, 1..4))
            .prop_map(|(i, l)| Node::Block(i, l)),
    ];
    let key = pick(&c.keys, "[a-z][a-zA-Z0-9._/-]{0,6}");
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            (
                proptest::collection::vec((key.clone(), inner.clone()), 1..4),
                any::<bool>()
            )
                .prop_map(|(e, f)| Node::Map(e, f)),
            (proptest::collection::vec(inner, 1..4), any::<bool>())
                .prop_map(|(e, f)| Node::Seq(e, f)),
        ]
    })
}

pub fn flow(n: &Node) -> String {
    match n {
        Node::Scalar(s) => s.clone(),
        Node::Block(_, lines) => format!("{:?}", lines.join("\n")),
        Node::Map(e, _) => {
            let items: Vec<String> = e.iter().map(|(k, v)| format!("{k}: {}", flow(v))).collect();
            format!("{{{}}}", items.join(", "))
        }
        Node::Seq(e, _) => format!("[{}]", e.iter().map(flow).collect::<Vec<_>>().join(", ")),
    }
}

/// `n` as the value after `key: ` or `- ` at indentation `pad`.
pub fn value(n: &Node, pad: usize, out: &mut String) {
    match n {
        Node::Scalar(_) | Node::Map(_, true) | Node::Seq(_, true) => {
            out.push(' ');
            out.push_str(&flow(n));
            out.push('\n');
        }
        Node::Block(ind, lines) => {
            out.push_str(&format!(" {ind}\n"));
            for l in lines {
                out.push_str(&format!("{}{l}\n", " ".repeat(pad + 2)));
            }
        }
        _ => {
            out.push('\n');
            block(n, pad + 2, out);
        }
    }
}

pub fn block(n: &Node, pad: usize, out: &mut String) {
    let p = " ".repeat(pad);
    match n {
        Node::Map(e, _) => {
            for (k, v) in e {
                out.push_str(&format!("{p}{k}:"));
                value(v, pad, out);
            }
        }
        Node::Seq(e, _) => {
            for v in e {
                out.push_str(&format!("{p}-"));
                value(v, pad, out);
            }
        }
        other => {
            out.push_str(&format!("{p}v:"));
            value(other, pad, out);
        }
    }
}

pub fn document(c: &Corpus) -> impl Strategy<Value = String> + use<> {
    let key = pick(&c.keys, "[a-z][a-zA-Z0-9._/-]{0,6}");
    let entries = proptest::collection::vec((key, node(c)), 1..5);
    let spice = proptest::option::weighted(
        0.3,
        (proptest::sample::select(c.spice.clone()), 0.0..1.0f64),
    );
    (entries, spice, any::<bool>()).prop_map(|(entries, spice, two)| {
        let root = Node::Map(entries, false);
        let mut text = String::from("---\n# Source: c/templates/t.yaml\n");
        block(&root, 0, &mut text);
        if two {
            text.push_str("---\napiVersion: v1\nkind: ConfigMap\n");
        }
        if let Some((s, at)) = spice {
            let mut i = (text.len() as f64 * at) as usize;
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            text.insert_str(i, &s);
        }
        text
    })
}
