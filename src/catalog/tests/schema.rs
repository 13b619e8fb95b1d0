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
    assert_eq!(
        err,
        r#"parameters.database: "bad name" does not match "^[a-z]+$""#
    );

    let err = plan
        .validate_parameters(
            SchemaKind::InstanceCreate,
            &json!({"database": "ok", "replicas": "three"}),
        )
        .unwrap_err();
    assert_eq!(
        err,
        r#"parameters.replicas: "three" is not of type "integer""#
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
        assert!(
            parts.contains(&r#"parameters: "name" is a required property"#),
            "{err}"
        );
        assert!(
            parts.contains(&r#"parameters.hosts[1]: 2 is not of type "string""#),
            "{err}"
        );
        assert!(
            parts.contains(&r#"parameters.tls.on: "yes" is not of type "boolean""#),
            "{err}"
        );

        // Absent parameters are validated as `{}`, so `required` still bites.
        let err = plan
            .validate_parameters(SchemaKind::InstanceCreate, &Value::Null)
            .unwrap_err();
        assert_eq!(err, r#"parameters: "name" is a required property"#);
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
fn long_values_are_truncated_in_messages() {
    let catalog = load_value(&mk_catalog());
    let plan = &catalog.services()[0].plans[0];
    let long = "X".repeat(5000);
    let err = plan
        .validate_parameters(SchemaKind::InstanceCreate, &json!({"database": long}))
        .unwrap_err();
    assert!(err.len() < 400, "{}", err.len());
    assert!(err.ends_with('…'));
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
