//! The manifest reader and emitter against Kubernetes' own YAML decoding
//! (tests/testenv/yamldiff: sigs.k8s.io/yaml and the apimachinery decoder
//! kubectl and helm use). Property, on every stream: when
//! `chartbroker::manifest::read` accepts it, Go's reading of the original
//! bytes equals the judged trees, and so does Go's reading of the bytes
//! `manifest::emit` writes from them. Streams: every chart of the example
//! catalog and the tests rendered with `helm template`, hand-written
//! hostile streams, and a generated corpus aimed at the known differences
//! (`CHARTBROKER_YAML_CASES` cases, default 256; more for a long run).
//!
//! `CHARTBROKER_YAMLDIFF_BYPASS=1` replaces the emitter with what the
//! broker wrote before it (helm's bytes, serde-saphyr's YAML for its own
//! objects), to show the property fail without it.

mod common;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use chartbroker::manifest::{self, Doc};
use common::goyaml::{GoYaml, same_list};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn bypass() -> bool {
    std::env::var_os("CHARTBROKER_YAMLDIFF_BYPASS").is_some_and(|v| v == "1")
}

fn cases() -> u32 {
    std::env::var("CHARTBROKER_YAML_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The bytes the broker hands on for judged `docs` read from `text`.
fn emitted(text: &str, docs: &[Doc]) -> String {
    if bypass() {
        text.to_owned()
    } else {
        manifest::emit(docs)
    }
}

/// Checks the property on `text`; Some(judged trees) when it was accepted.
fn agree(go: &mut GoYaml, text: &str) -> Result<Option<Vec<Value>>, String> {
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
fn charts(root: &Path, out: &mut Vec<PathBuf>) {
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

#[test]
fn every_fixture_and_example_chart_reads_as_go_reads_it() {
    let mut go = GoYaml::start();
    let mut all = Vec::new();
    charts(&common::repo().join("charts"), &mut all);
    charts(&common::fixtures(), &mut all);
    all.sort();
    let (mut rendered, mut accepted) = (0, 0);
    for chart in &all {
        let out = std::process::Command::new(common::helm_bin())
            .args(["template", "cb-diff"])
            .arg(chart)
            .args(["--namespace", "apps"])
            .output()
            .unwrap();
        if !out.status.success() {
            // Charts that need the catalog's values render in other tests.
            continue;
        }
        rendered += 1;
        let text = String::from_utf8(out.stdout).unwrap();
        match agree(&mut go, &text) {
            Ok(Some(_)) => accepted += 1,
            Ok(None) => {
                let e = manifest::read(&text).unwrap_err();
                let p = chart.to_string_lossy();
                let benign = !p.contains("hostile") && !p.contains("switch-charts");
                assert!(
                    !benign,
                    "{}: a benign chart is refused: {e}",
                    chart.display()
                );
            }
            Err(e) => panic!("{}: {e}", chart.display()),
        }
    }
    eprintln!(
        "{rendered} of {} charts rendered, {accepted} accepted",
        all.len()
    );
    assert!(
        rendered >= 20 && accepted >= 15,
        "{rendered} rendered, {accepted} accepted"
    );
}

/// The corpus: hand-written hostile streams, and the pieces generated
/// documents are built from (tests/fixtures/yaml-corpus/corpus.json).
struct Corpus {
    hostile: Vec<String>,
    scalars: Vec<String>,
    keys: Vec<String>,
    spice: Vec<String>,
}

fn corpus() -> Corpus {
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

#[test]
fn hostile_streams_are_refused_or_read_as_go_reads_them() {
    let mut go = GoYaml::start();
    let hostile = corpus().hostile;
    let mut failures = Vec::new();
    for text in &hostile {
        if let Err(e) = agree(&mut go, text) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The two seen in the wild (merge keys, U+2028/U+0085) are refused outright.
    for text in &hostile[..5] {
        assert!(manifest::read(text).is_err(), "{text:?}");
    }
}

/// Objects the broker builds itself (binding Secrets from credentials an
/// upstream broker chose) read back as themselves.
#[test]
fn objects_the_broker_builds_read_back_as_themselves() {
    let mut go = GoYaml::start();
    let strings =
        "[ -~\u{85}\u{a0}\u{2028}\u{2029}\u{feff}\u{fffe}é😀\t\r\n\u{0}\u{1b}\u{7f}]{0,24}";
    let strategy = proptest::collection::btree_map(strings, strings, 0..6);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let go = RefCell::new(&mut go);
    runner
        .run(&strategy, |data| {
            let obj = serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "annotations": data.clone()},
                "stringData": data,
            });
            let text = if bypass() {
                serde_saphyr::to_string(&obj).unwrap()
            } else {
                manifest::emit_object(obj.clone()).map_err(TestCaseError::fail)?
            };
            let back = go.borrow_mut().read(text.as_bytes());
            prop_assert!(
                back.as_ref()
                    .is_ok_and(|b| same_list(b, std::slice::from_ref(&obj))),
                "wrote {text:?}\nGo reads {back:?}"
            );
            Ok(())
        })
        .unwrap();
}

#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    Block(&'static str, Vec<String>),
    Map(Vec<(String, Node)>, bool),
    Seq(Vec<Node>, bool),
}

/// Mostly ordinary text, sometimes a spelling where readers part ways.
fn pick(exotic: &[String], plain: &'static str) -> impl Strategy<Value = String> + Clone + use<> {
    prop_oneof![
        3 => plain.prop_map(|s| s),
        1 => proptest::sample::select(exotic.to_vec()),
    ]
}

fn node(c: &Corpus) -> impl Strategy<Value = Node> + use<> {
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

fn flow(n: &Node) -> String {
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
fn value(n: &Node, pad: usize, out: &mut String) {
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

fn block(n: &Node, pad: usize, out: &mut String) {
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

fn document(c: &Corpus) -> impl Strategy<Value = String> + use<> {
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

#[test]
fn generated_documents_are_refused_or_read_as_go_reads_them() {
    let mut go = GoYaml::start();
    let go = RefCell::new(&mut go);
    let (accepted, total) = (Cell::new(0u32), Cell::new(0u32));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&document(&corpus()), |text| {
            total.set(total.get() + 1);
            match agree(&mut go.borrow_mut(), &text) {
                Ok(Some(_)) => accepted.set(accepted.get() + 1),
                Ok(None) => {}
                Err(e) => return Err(TestCaseError::fail(e)),
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "{} of {} generated streams accepted",
        accepted.get(),
        total.get()
    );
    // A corpus the reader refuses whole would prove nothing.
    assert!(
        accepted.get() * 10 >= total.get(),
        "{} of {}",
        accepted.get(),
        total.get()
    );
}
