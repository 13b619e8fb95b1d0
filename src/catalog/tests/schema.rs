//! Parameter validation messages and schema defaults.

use serde_json::json;

use super::*;
use crate::catalog::{Plan, SchemaKind};

fn with_plan(schemas: Value, check: impl FnOnce(&Plan)) {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["schemas"] = schemas;
    c["services"][0]["plans"][0]["chart"]["values"] = json!({});
    c["services"][0]["plans"][0]["chart"]["credentials"] = json!({"port": 1});
    let catalog = load_value(&c);
    check(&catalog.services()[0].plans[0]);
}

#[test]
fn messages_name_the_failing_field() {
    let catalog = load_value(&mk_catalog());
    let plan = &catalog.services()[0].plans[0];
    let err = plan
        .validate_parameters(SchemaKind::InstanceCreate, &json!({"database": "bad name"}))
        .unwrap_err();
    assert_eq!(err, r#"parameters.database: must match ^[a-z]+$"#);

    let err = plan
        .validate_parameters(
            SchemaKind::InstanceCreate,
            &json!({"database": "ok", "replicas": "three"}),
        )
        .unwrap_err();
    assert_eq!(
        err,
        r#"parameters.replicas: must be an integer (got a string)"#
    );

    assert_eq!(
        plan.validate_parameters(SchemaKind::InstanceCreate, &json!({"database": "ok"})),
        Ok(())
    );
    // Each kind uses its own schema: update only knows `replicas`.
    assert!(
        plan.validate_parameters(SchemaKind::InstanceUpdate, &json!({"replicas": "x"}))
            .unwrap_err()
            .starts_with("parameters.replicas: ")
    );
    assert!(
        plan.validate_parameters(SchemaKind::BindingCreate, &json!({"readonly": 1}))
            .unwrap_err()
            .starts_with("parameters.readonly: ")
    );
}

#[test]
fn several_failures_nested_paths_and_required() {
    let schema = json!({"service_instance": {"create": {"parameters": {
        "type": "object",
        "required": ["name"],
        "properties": {"hosts": {"type": "array", "items": {"type": "string"}},
                       "tls": {"type": "object", "properties": {"on": {"type": "boolean"}}}}
    }}}});
    with_plan(schema, |plan| {
        let err = plan
            .validate_parameters(
                SchemaKind::InstanceCreate,
                &json!({"hosts": ["a", 2], "tls": {"on": "yes"}}),
            )
            .unwrap_err();
        let parts: Vec<&str> = err.split("; ").collect();
        assert_eq!(parts.len(), 3, "{err}");
        assert!(parts.contains(&r#"parameters.name: is required"#), "{err}");
        assert!(
            parts.contains(&r#"parameters.hosts[1]: must be a string (got 2)"#),
            "{err}"
        );
        assert!(
            parts.contains(&r#"parameters.tls.on: must be true or false (got a string)"#),
            "{err}"
        );

        // Absent parameters are validated as `{}`, so `required` still bites.
        let err = plan
            .validate_parameters(SchemaKind::InstanceCreate, &Value::Null)
            .unwrap_err();
        assert_eq!(err, r#"parameters.name: is required"#);
    });
}

#[test]
fn no_schema_accepts_any_object_but_not_other_json() {
    let catalog = load_value(&mk_catalog());
    let premium = &catalog.services()[0].plans[1];
    for kind in SchemaKind::ALL {
        assert_eq!(
            premium.validate_parameters(kind, &json!({"x": [1]})),
            Ok(())
        );
        assert_eq!(premium.validate_parameters(kind, &Value::Null), Ok(()));
        assert_eq!(
            premium.validate_parameters(kind, &json!([1])),
            Err("parameters: must be a JSON object".into())
        );
    }
}

#[test]
fn rejected_strings_are_never_quoted_back() {
    let catalog = load_value(&mk_catalog());
    let plan = &catalog.services()[0].plans[0];
    let long = "X".repeat(5000);
    let err = plan
        .validate_parameters(SchemaKind::InstanceCreate, &json!({"database": long}))
        .unwrap_err();
    assert_eq!(err, "parameters.database: must match ^[a-z]+$");
}

#[test]
fn long_schema_words_are_truncated_in_messages() {
    let schema = json!({"service_instance": {"create": {"parameters": {
        "type": "object",
        "properties": {"x": {"type": "string", "pattern": format!("^{}$", "a".repeat(1000))}}
    }}}});
    with_plan(schema, |plan| {
        let err = plan
            .validate_parameters(SchemaKind::InstanceCreate, &json!({"x": "b"}))
            .unwrap_err();
        assert!(err.chars().count() <= 301, "{}", err.len());
        assert!(err.ends_with('…'));
    });
}

/// Every rule a plan schema commonly uses, in words, with the property's
/// description when the schema gives one.
#[test]
fn violations_read_as_sentences() {
    let schema = json!({"service_instance": {"create": {"parameters": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": false,
        "required": ["size"],
        "properties": {
            "replicas": {"type": "integer", "description": "Number of replicas", "minimum": 1, "maximum": 5},
            "database": {"type": "string", "pattern": "^[a-z]+$", "not": {"enum": ["mysql", "sys"]}},
            "size": {"enum": ["small", "large"], "description": "Instance size"},
            "name": {"type": "string", "minLength": 3, "maxLength": 8},
            "ratio": {"type": "number", "exclusiveMaximum": 1, "multipleOf": 0.25},
            "tags": {"type": "array", "maxItems": 2, "uniqueItems": true},
            "mode": {"const": "fast"}
        }
    }}}});
    with_plan(schema, |plan| {
        let check = |params: Value, want: &str| {
            let err = plan
                .validate_parameters(SchemaKind::InstanceCreate, &params)
                .unwrap_err();
            assert_eq!(err, want, "{params}");
        };
        let size = json!("small");
        check(
            json!({"size": size, "replicas": 9}),
            r#"parameters.replicas: "Number of replicas" must be at most 5 (got 9)"#,
        );
        check(
            json!({"size": size, "replicas": 0}),
            r#"parameters.replicas: "Number of replicas" must be at least 1 (got 0)"#,
        );
        check(
            json!({"size": size, "foo": 1}),
            r#"parameters: unknown property "foo" (allowed: database, mode, name, ratio, replicas, size, tags)"#,
        );
        check(
            json!({"size": size, "database": "Shop1"}),
            "parameters.database: must match ^[a-z]+$",
        );
        check(
            json!({"size": size, "database": "mysql"}),
            "parameters.database: must not be mysql, sys",
        );
        check(json!({}), r#"parameters.size: "Instance size" is required"#);
        check(
            json!({"size": "huge"}),
            r#"parameters.size: "Instance size" must be one of small, large"#,
        );
        check(
            json!({"size": size, "name": "ab"}),
            "parameters.name: must be at least 3 characters long (got 2)",
        );
        check(
            json!({"size": size, "name": "abcdefghij"}),
            "parameters.name: must be at most 8 characters long (got 10)",
        );
        check(
            json!({"size": size, "ratio": 1}),
            "parameters.ratio: must be less than 1 (got 1)",
        );
        check(
            json!({"size": size, "ratio": 0.3}),
            "parameters.ratio: must be a multiple of 0.25 (got 0.3)",
        );
        check(
            json!({"size": size, "tags": [1, 1, 2]}),
            "parameters.tags: must have at most 2 items; parameters.tags: must not repeat items",
        );
        check(
            json!({"size": size, "mode": "slow"}),
            "parameters.mode: must be fast",
        );
        check(
            json!({"size": size, "replicas": "3"}),
            r#"parameters.replicas: "Number of replicas" must be an integer (got a string)"#,
        );
    });
}

#[test]
fn many_failures_are_bounded() {
    let props: serde_json::Map<String, Value> = (0..30)
        .map(|i| (format!("p{i:02}"), json!({"type": "integer"})))
        .collect();
    let schema = json!({"service_instance": {"create": {"parameters": {
        "type": "object", "properties": props
    }}}});
    with_plan(schema, |plan| {
        let params: serde_json::Map<String, Value> =
            (0..30).map(|i| (format!("p{i:02}"), json!("x"))).collect();
        let err = plan
            .validate_parameters(SchemaKind::InstanceCreate, &Value::Object(params))
            .unwrap_err();
        let parts: Vec<&str> = err.split("; ").collect();
        assert_eq!(parts.len(), 11, "{err}");
        assert_eq!(parts[10], "and 20 more");
    });
}

#[test]
fn explicit_draft_is_honoured() {
    // Draft-04 `exclusiveMinimum` is a boolean modifier of `minimum`.
    let schema = json!({"service_instance": {"create": {"parameters": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1, "exclusiveMinimum": true}}
    }}}});
    with_plan(schema, |plan| {
        let kind = SchemaKind::InstanceCreate;
        assert!(plan.validate_parameters(kind, &json!({"n": 1})).is_err());
        assert!(plan.validate_parameters(kind, &json!({"n": 2})).is_ok());
    });
}

#[test]
fn defaults_fill_missing_top_level_keys_only() {
    let catalog = load_value(&mk_catalog());
    let plan = &catalog.services()[0].plans[0];

    let mut params = json!({"replicas": 3});
    plan.apply_defaults(SchemaKind::InstanceCreate, &mut params);
    assert_eq!(params, json!({"replicas": 3, "database": "app"}));

    let mut params = Value::Null;
    plan.apply_defaults(SchemaKind::InstanceCreate, &mut params);
    assert_eq!(params, json!({"replicas": 1, "database": "app"}));

    // The update schema declares no defaults.
    let mut params = Value::Null;
    plan.apply_defaults(SchemaKind::InstanceUpdate, &mut params);
    assert_eq!(params, Value::Null);

    // Non-objects are left for validation to reject.
    let mut params = json!([1]);
    plan.apply_defaults(SchemaKind::InstanceCreate, &mut params);
    assert_eq!(params, json!([1]));
}

#[test]
fn nested_defaults_are_not_applied() {
    let schema = json!({"service_instance": {"create": {"parameters": {
        "type": "object",
        "properties": {"tls": {"type": "object", "properties": {"on": {"default": true}}}}
    }}}});
    with_plan(schema, |plan| {
        let mut params = json!({"tls": {}});
        plan.apply_defaults(SchemaKind::InstanceCreate, &mut params);
        assert_eq!(params, json!({"tls": {}}));
    });
}
