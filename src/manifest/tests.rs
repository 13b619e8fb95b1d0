use serde_json::json;

use super::*;

fn refused(text: &str) -> ReadError {
    match read(text) {
        Ok(docs) => panic!("accepted {text:?} as {docs:?}"),
        Err(e) => e,
    }
}

fn values(text: &str) -> Vec<Value> {
    read(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .into_iter()
        .map(|d| d.value)
        .collect()
}

#[test]
fn helm_output_reads_with_file_document_and_line() {
    let text = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\n\
                metadata:\n  name: a\ndata:\n  mode: 0644\n  on: \"x\"\n---\n\
                # Source: c/templates/empty.yaml\n---\n# Source: c/templates/b.yaml\n\
                kind: Secret\n";
    let err = refused(text);
    assert_eq!((err.document, err.line), (1, 9), "{err}");
    assert!(
        err.to_string()
            .starts_with("c/templates/a.yaml, document 1, line 9: the key `on`")
    );
    let docs = read(&text.replace("  on:", "  \"on\":")).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].value["data"], json!({"mode": 420, "on": "x"}));
    assert_eq!(docs[0].source.as_deref(), Some("c/templates/a.yaml"));
    assert_eq!(docs[1].number, 2);
    assert_eq!(docs[1].line, 14);
    assert_eq!(docs[1].describe(), "c/templates/b.yaml (document 2)");
}

#[test]
fn the_known_disagreements_are_refused() {
    for (text, says) in [
        ("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n", "anchor"),
        ("c:\n  <<: {b: 1}\n", "merge key"),
        ("a: 1 # x\u{2028}b: 2\n", "U+2028"),
        ("a: 1\u{85}b: 2\n", "U+0085"),
        ("a: \"x\u{2029}y\"\n", "U+2029"),
        ("\u{feff}a: 1\n", "U+FEFF"),
        ("a: 1\r\n", "carriage return"),
        ("a: \u{1}\n", "U+0001"),
        ("a: 1\na: 2\n", "twice"),
        ("a: !!str 1\n", "tag"),
        ("a: !foo {}\n", "tag"),
        ("a: *x\n", "unknown anchor"),
        ("a: &x 1\nb: *x\n", "anchor"),
        ("a:\n\t- 1\n", "tab in the indentation"),
        ("a:\tb\n", "tab outside"),
        ("a: \"x\n--- y\"\n", "---"),
        ("a: 1\n...\nb: 2\n", "..."),
        ("%YAML 1.1\n---\na: 1\n", "directive"),
        ("a: .inf\n", "infinity"),
        ("a: 9223372036854775808\n", "64-bit"),
        ("a: b\n  c\n", "several lines"),
        ("yes: 1\n", "not a string"),
        ("~: 1\n", "not a string"),
        ("1: 1\n", "not a string"),
        ("? [a]\n: 1\n", "list or a map"),
        ("a: \"\\/\"\n", "\\/"),
        ("a: {b: 1\n", "line 1: "),
    ] {
        let e = refused(text);
        assert!(e.to_string().contains(says), "{text:?}: {e}");
    }
}

#[test]
fn plain_scalars_resolve_as_go_yaml_v2() {
    assert_eq!(values("\"<<\": {b: 1}\n"), vec![json!({"<<": {"b": 1}})]);
    assert_eq!(
        values("a: yes\nb: 0x10\nc: 1_000\nd: 2001-01-01\ne: 1.5\nf: '0777'\ng: ~\nh: \"yes\"\n"),
        vec![
            json!({"a": true, "b": 16, "c": 1000, "d": "2001-01-01", "e": 1.5,
                    "f": "0777", "g": null, "h": "yes"})
        ]
    );
}

#[test]
fn block_and_quoted_scalars_keep_their_text() {
    assert_eq!(
        values("a: |\n  x\n  y\tz\nb: >-\n  p\n  q\nc: 'it''s'\nd: \"t\\tx\\u00e9\"\n"),
        vec![json!({"a": "x\ny\tz\n", "b": "p q", "c": "it's", "d": "t\tx\u{e9}"})]
    );
}

#[test]
fn empty_and_null_documents_are_left_out() {
    assert!(values("---\n# only a comment\n---\n~\n---\n\n").is_empty());
}

#[test]
fn the_emitter_writes_one_json_line_per_document_and_escapes_every_break() {
    let text = "# Source: c/t.yaml\na: \"x\\u2028y\\N\\nz --- \\\" \\\\ \\t\"\nb: [1, 1.5, true, null]\n\
                ---\n# Source: a file/with space\nc: \"\\U0001F600 \\u00e9\"\n";
    let docs = read(text).unwrap();
    let out = emit(&docs);
    assert_eq!(
        out,
        "---\n# Source: c/t.yaml\n{\"a\":\"x\\u2028y\\u0085\\nz --- \\\" \\\\ \\t\",\"b\":[1,1.5,true,null]}\n\
         ---\n{\"c\":\"\u{1F600} \\u00e9\"}\n"
    );
    // The emitted stream reads back as the same trees.
    let back: Vec<Value> = read(&out).unwrap().into_iter().map(|d| d.value).collect();
    assert_eq!(back, docs.into_iter().map(|d| d.value).collect::<Vec<_>>());
}

#[test]
fn broker_objects_are_emitted_in_the_same_form() {
    let text = emit_object(json!({"kind": "Secret", "stringData": {"p": "a\u{2028}b"}})).unwrap();
    assert_eq!(
        text,
        "---\n{\"kind\":\"Secret\",\"stringData\":{\"p\":\"a\\u2028b\"}}\n"
    );
    let long = "k".repeat(2000);
    assert!(emit_object(json!({ long: 1 })).is_err());
}

#[test]
fn the_source_is_helms_comment_before_the_content_only() {
    let docs = read(
        "---\n# a note\n#   Source: c/templates/a.yaml\nkind: A\n---\nkind: B\n\
         data:\n  script: |\n    # Source: c/templates/fake.yaml\n# Source: late.yaml\n",
    )
    .unwrap();
    assert_eq!(docs[0].source.as_deref(), Some("c/templates/a.yaml"));
    // A line inside a block scalar, or a comment after the content, names
    // nothing.
    assert_eq!(docs[1].source, None);
    assert_eq!(
        docs[1].value["data"]["script"],
        "# Source: c/templates/fake.yaml\n"
    );
}
