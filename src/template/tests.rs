use serde_json::{Value, json};

use super::*;

fn data(parameters: Value) -> Value {
    json!({
        "instance": {"id": "i-1", "release": "cb-i-1", "namespace": "apps"},
        "parameters": parameters,
        "secrets": {"root_password": "s3cr3t"},
    })
}

fn render(tree: Value, parameters: Value) -> Result<Value, TemplateError> {
    render_tree(&tree, &data(parameters))
}

#[test]
fn yaml_injection_stays_inside_the_leaf() {
    for hostile in [
        "x\nkey: evil",
        "{a: 1}",
        "- item",
        "x\n  nested: {evil: true}\n",
    ] {
        let out = render(
            json!({"auth": {"database": "{{parameters.db}}", "dsn": "db={{parameters.db}}"}}),
            json!({"db": hostile}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"auth": {"database": hostile, "dsn": format!("db={hostile}")}}),
            "hostile value {hostile:?}"
        );
    }
}

#[test]
fn parameter_values_are_not_re_evaluated() {
    let hostile = "{{secrets.root_password}}";
    let out = render(
        json!({"a": "{{parameters.x}}", "b": "pre-{{parameters.x}}", "c": "{{{parameters.x}}}"}),
        json!({"x": hostile}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"a": hostile, "b": format!("pre-{hostile}"), "c": hostile})
    );
    assert!(!out.to_string().contains("s3cr3t"));
}

#[test]
fn newlines_and_html_pass_through_unescaped() {
    let value = "line1\nline2\r\n<b>&amp;'\"</b>";
    let out = render(
        json!({"a": "[{{parameters.v}}]", "b": "{{parameters.v}}"}),
        json!({"v": value}),
    )
    .unwrap();
    assert_eq!(out, json!({"a": format!("[{value}]"), "b": value}));
}

#[test]
fn single_variable_leaf_keeps_its_json_type() {
    let out = render(
        json!({"replicas": "{{parameters.replicas}}", "tls": "{{ parameters.tls }}",
               "name": "{{parameters.name}}", "ratio": "{{{parameters.ratio}}}",
               "first": "{{parameters.hosts.[0]}}"}),
        json!({"replicas": 3, "tls": false, "name": "007", "ratio": 0.5, "hosts": ["h0"]}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"replicas": 3, "tls": false, "name": "007", "ratio": 0.5, "first": "h0"})
    );
}

#[test]
fn mixed_leaf_renders_to_string() {
    let out = render(
        json!({"host": "{{instance.release}}.{{instance.namespace}}.svc", "n": " {{parameters.n}}"}),
        json!({"n": 3}),
    )
    .unwrap();
    assert_eq!(out, json!({"host": "cb-i-1.apps.svc", "n": " 3"}));
}

#[test]
fn absent_or_null_variable_removes_the_key_or_item() {
    let out = render(
        json!({"size": "{{parameters.size}}", "nil": "{{parameters.nil}}",
               "keep": 1, "list": ["a", "{{parameters.missing}}", "{{parameters.b}}"]}),
        json!({"nil": null, "b": "b"}),
    )
    .unwrap();
    assert_eq!(out, json!({"keep": 1, "list": ["a", "b"]}));
}

#[test]
fn absent_variable_in_mixed_leaf_renders_empty() {
    let out = render(json!({"a": "x-{{parameters.none}}-y"}), json!({})).unwrap();
    assert_eq!(out, json!({"a": "x--y"}));
}

#[test]
fn object_in_single_variable_leaf_is_an_error_naming_the_path() {
    let err = render(
        json!({"auth": {"hosts": ["ok", "x", "{{parameters.obj}}"]}}),
        json!({"obj": {"a": 1}}),
    )
    .unwrap_err();
    assert_eq!(err.path, "auth.hosts[2]");
    assert_eq!(err.kind, TemplateErrorKind::NotScalar);
    assert!(
        err.to_string()
            .starts_with("auth.hosts[2]: `parameters.obj` is an object")
    );

    let err = render(json!({"a": "{{parameters.arr}}"}), json!({"arr": [1]})).unwrap_err();
    assert!(err.message.contains("an array"), "{err}");
}

#[test]
fn keys_are_never_templated_and_non_strings_pass_through() {
    let tree = json!({"{{parameters.k}}": 1, "n": null, "b": true, "f": 1.5});
    let out = render(tree.clone(), json!({"k": "evil"})).unwrap();
    assert_eq!(out, tree);
}

#[test]
fn helpers_work_and_see_root_variables() {
    let out = render(
        json!({"a": "{{#if parameters.tls}}on{{else}}off{{/if}}",
               "b": "{{#each parameters.hosts}}{{this}},{{/each}}"}),
        json!({"tls": true, "hosts": ["x", "y"]}),
    )
    .unwrap();
    assert_eq!(out, json!({"a": "on", "b": "x,y,"}));
}

#[test]
fn compile_errors_name_the_leaf() {
    let err = render(json!({"a": {"b": "{{#if x}}"}}), json!({})).unwrap_err();
    assert_eq!(err.path, "a.b");
    assert_eq!(err.kind, TemplateErrorKind::Compile);
}

#[test]
fn render_errors_do_not_leak_data() {
    let err = render(
        json!({"a": "{{nohelper parameters.x}}"}),
        json!({"x": "s3cr3t"}),
    );
    let err = err.unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Render);
    assert!(!err.to_string().contains("s3cr3t"));
}

#[test]
fn variables_lists_root_paths_including_helper_params() {
    let vars = variables(
        "{{instance.release}}:{{#if parameters.tls}}{{secrets.a}}{{/if}}\
         {{#each parameters.hosts}}{{this}}{{name}}{{@index}}{{@root.context.ns}}{{../parameters.up}}{{/each}}\
         {{lookup parameters 'x'}}{{eq (lookup secrets 'y') binding.id}}{{instance.release}}",
    )
    .unwrap();
    assert_eq!(
        vars,
        [
            "instance.release",
            "parameters.tls",
            "secrets.a",
            "parameters.hosts",
            "context.ns",
            "parameters.up",
            "parameters",
            "secrets",
            "binding.id",
        ]
    );
}

#[test]
fn variables_rejects_unsupported_constructs() {
    for t in [
        "{{> partial}}",
        "{{*inline \"x\"}}",
        "{{shout parameters.x}}",
        "{{#if}",
    ] {
        let err = variables(t).unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::Compile, "{t}: {err}");
    }
    assert_eq!(variables("plain text").unwrap(), Vec::<String>::new());
}

#[test]
fn string_leaves_paths() {
    let tree = json!({"a": {"b": "x", "c": 1}, "l": ["y", {"z": "w"}], "app.k8s/name": "q"});
    let leaves = string_leaves(&tree);
    assert_eq!(
        leaves,
        [
            ("a.b".to_owned(), "x"),
            ("[\"app.k8s/name\"]".to_owned(), "q"),
            ("l[0]".to_owned(), "y"),
            ("l[1].z".to_owned(), "w"),
        ]
    );
}

#[test]
fn a_cached_template_renders_each_call_with_its_own_data() {
    let tree = json!({"url": "mysql://{{user}}@{{host}}", "port": "{{port}}"});
    let a = render_tree(&tree, &json!({"user": "a", "host": "h1", "port": 1})).unwrap();
    let b = render_tree(&tree, &json!({"user": "b", "host": "h2"})).unwrap();
    assert_eq!(a, json!({"url": "mysql://a@h1", "port": 1}));
    assert_eq!(b, json!({"url": "mysql://b@h2"}));
}
