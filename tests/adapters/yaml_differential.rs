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

use crate::common;

use std::cell::{Cell, RefCell};

use crate::helpers::yaml_differential::*;
use chartbroker::manifest::{self};
use common::goyaml::{GoYaml, same_list};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

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
