//! One test (at least) per lint rule.

use serde_json::json;

use super::*;
use crate::catalog::CatalogError;

#[test]
fn base_catalog_is_clean() {
    assert_eq!(lint_value(&mk_catalog()), Vec::<String>::new());
}

#[test]
fn unknown_key_is_a_parse_error_with_line_and_column() {
    let fx = Fixture::new();
    fx.write(
        "a.yaml",
        "services:\n  - id: x\n    name: x\n    description: d\n    bindabel: true\n    plans: []\n",
    );
    let found = fx.lint();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "line 5, column 5");
    assert!(
        found[0].message.contains("bindabel"),
        "{}",
        found[0].message
    );
    assert!(found[0].to_string().contains("a.yaml: line 5, column 5: "));
}

#[test]
fn yaml_syntax_error_has_location() {
    let fx = Fixture::new();
    fx.write("a.yaml", "services:\n  - id: [unclosed\n");
    let found = fx.lint();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].path.starts_with("line "), "{found:?}");
}

#[test]
fn unknown_keys_rejected_in_broker_structs() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["valuez"] = json!({});
    let found = lint_value(&c);
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("valuez"), "{found:?}");
}

#[test]
fn duplicate_service_id_and_name_across_files() {
    let fx = Fixture::new();
    let c = mk_catalog();
    fx.write("a.yaml", &c.to_string());
    let mut other = json!({"services": [c["services"][0].clone()]});
    other["services"][0]["plans"][0]["id"] = json!("plan-other-1");
    other["services"][0]["plans"][1]["id"] = json!("plan-other-2");
    fx.write("b.yml", &other.to_string());
    let found = fx.lint();
    let msgs = issues(&found);
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(msgs[0].starts_with("services[0].id: duplicate service id `svc-mysql`"));
    assert!(msgs[0].contains("a.yaml: services[0].id"), "{msgs:?}");
    assert!(msgs[1].starts_with("services[0].name: duplicate service name `mysql`"));
    assert!(found[0].file.ends_with("b.yml"));
}

#[test]
fn duplicate_plan_id_across_services() {
    let mut c = mk_catalog();
    let mut svc = c["services"][0].clone();
    svc["id"] = json!("svc-2");
    svc["name"] = json!("mysql2");
    svc["plans"][1]["id"] = json!("plan-premium-2");
    c["services"].as_array_mut().unwrap().push(svc);
    assert_one_issue(
        &c,
        "services[1].plans[0].id",
        "duplicate plan id `plan-basic`",
    );
}

#[test]
fn duplicate_plan_name_within_a_service_only() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][1]["name"] = json!("basic");
    assert_one_issue(
        &c,
        "services[0].plans[1].name",
        "duplicate plan name `basic`",
    );

    // The same plan name in another service is fine.
    let mut c = mk_catalog();
    let mut svc = c["services"][0].clone();
    svc["id"] = json!("svc-2");
    svc["name"] = json!("mysql2");
    svc["plans"][0]["id"] = json!("p3");
    svc["plans"][1]["id"] = json!("p4");
    c["services"].as_array_mut().unwrap().push(svc);
    assert_eq!(lint_value(&c), Vec::<String>::new());
}

#[test]
fn schema_that_does_not_compile() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["schemas"]["service_instance"]["update"]["parameters"] =
        json!({"type": 12});
    assert_one_issue(
        &c,
        "services[0].plans[0].schemas.service_instance.update.parameters",
        "schema does not compile",
    );
}

#[test]
fn schema_with_external_ref_is_rejected() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["schemas"]["service_binding"]["create"]["parameters"] =
        json!({"$ref": "https://example.com/schema.json"});
    assert_one_issue(
        &c,
        "services[0].plans[0].schemas.service_binding.create.parameters",
        "does not compile",
    );
}

#[test]
fn schema_object_shape_is_checked() {
    let mut c = mk_catalog();
    let schemas = &mut c["services"][0]["plans"][0]["schemas"];
    schemas["service_instances"] = json!({});
    schemas["service_binding"]["update"] = json!({"parameters": {}});
    schemas["service_instance"]["create"]["params"] = json!({});
    assert_issues_at(
        &c,
        &[
            "services[0].plans[0].schemas.service_binding.update",
            "services[0].plans[0].schemas.service_instance.create.params",
            "services[0].plans[0].schemas.service_instances",
        ],
    );
}

#[test]
fn schema_over_64k_is_rejected() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["schemas"]["service_binding"]["create"]["parameters"] =
        json!({"description": "x".repeat(70_000)});
    assert_one_issue(
        &c,
        "services[0].plans[0].schemas.service_binding.create.parameters",
        "at most 65536",
    );
}

#[test]
fn template_that_does_not_compile() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["values"]["auth"]["database"] = json!("{{#if x}}");
    assert_one_issue(
        &c,
        "services[0].plans[0].chart.values.auth.database",
        "does not compile",
    );
}

#[test]
fn template_unknown_variables() {
    let cases = [
        ("{{secrets.admin}}", "secret `admin` is not declared"),
        ("{{secrets.root_password.x}}", "has no fields"),
        (
            "{{parameters.size}}",
            "parameter `size` is not in the plan's instance schema",
        ),
        ("{{instance.uuid}}", "unknown variable `instance.uuid`"),
        (
            "{{binding.id}}",
            "binding.* is only available in credentials",
        ),
        ("{{database}}", "unknown variable `database`"),
        ("{{#if parameters.nope}}x{{/if}}", "parameter `nope`"),
        ("{{shout parameters.database}}", "unknown helper `shout`"),
        ("{{> partial}}", "partials are not supported"),
    ];
    for (template, needle) in cases {
        let mut c = mk_catalog();
        c["services"][0]["plans"][0]["chart"]["values"]["extra"] = json!([1, template]);
        let found = lint_value(&c);
        assert_eq!(found.len(), 1, "{template}: {found:#?}");
        let expected = format!("{PLAN0}.chart.values.extra[1]: ");
        assert!(found[0].starts_with(&expected), "{template}: {found:?}");
        assert!(found[0].contains(needle), "{template}: {found:?}");
    }
}

#[test]
fn mistyped_variables_get_the_closest_known_name() {
    let cases = [
        (
            "values",
            "{{paramters.database}}",
            "unknown variable `paramters.database`; templates use instance.*, context.*, \
             parameters.*, secrets.* — did you mean `parameters.database`?",
        ),
        (
            "values",
            "{{parameters.databse}}",
            "`parameters.databse`: parameter `databse` is not in the plan's instance schema \
             properties — did you mean `parameters.database`?",
        ),
        (
            "values",
            "{{secrets.rootpassword}}",
            "`secrets.rootpassword`: secret `rootpassword` is not declared under chart.secrets \
             — did you mean `secrets.root_password`?",
        ),
        (
            "values",
            "{{instance.namspace}}",
            "unknown variable `instance.namspace`; instance has id, service_id, plan_id, \
             service_name, plan_name, release, namespace — did you mean `instance.namespace`?",
        ),
        (
            "credentials",
            "{{binding.parameters.readonyl}}",
            "`binding.parameters.readonyl`: parameter `readonyl` is not in the plan's binding \
             schema properties — did you mean `binding.parameters.readonly`?",
        ),
        // Nothing close: no guess.
        (
            "values",
            "{{database}}",
            "unknown variable `database`; templates use instance.*, context.*, parameters.*, \
             secrets.*",
        ),
    ];
    for (tree, template, want) in cases {
        let mut c = mk_catalog();
        c["services"][0]["plans"][0]["chart"][tree]["extra"] = json!(template);
        let found = lint_value(&c);
        assert_eq!(
            found,
            [format!("{PLAN0}.chart.{tree}.extra: {want}")],
            "{template}"
        );
    }
}

#[test]
fn template_known_variables_pass() {
    let mut c = mk_catalog();
    let chart = &mut c["services"][0]["plans"][0]["chart"];
    chart["values"]["ok"] = json!([
        "{{context.namespace}}",
        "{{context.anything.deep}}",
        "{{instance.id}}",
        "{{instance.plan_name}}",
        "{{parameters.replicas}}",
        "{{#each parameters.database}}{{this}}{{undeclared}}{{/each}}",
        "{{@root.instance.id}}"
    ]);
    chart["credentials"]["ok"] = json!([
        "{{binding.id}}",
        "{{binding.app_guid}}",
        "{{binding.parameters.readonly}}",
    ]);
    assert_eq!(lint_value(&c), Vec::<String>::new());

    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["credentials"]["bad"] =
        json!("{{binding.parameters.nope}}{{binding.guid}}");
    let found = lint_value(&c);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("parameter `nope` is not in the plan's binding schema"));
    assert!(found[1].contains("unknown variable `binding.guid`"));
}

#[test]
fn any_parameter_allowed_when_schema_lists_no_properties() {
    let mut c = mk_catalog();
    let plan = &mut c["services"][0]["plans"][0];
    plan["schemas"] = json!({"service_instance": {"create": {"parameters": {"type": "object"}}}});
    plan["chart"]["values"]["x"] = json!("{{parameters.whatever}}");
    plan["chart"]["credentials"]["y"] = json!("{{binding.parameters.anything}}");
    assert_eq!(lint_value(&c), Vec::<String>::new());
}

#[test]
fn chart_folder_must_exist_with_chart_yaml() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["path"] = json!("postgres");
    assert_one_issue(&c, "services[0].plans[0].chart.path", "does not exist");

    let fx = Fixture::new();
    std::fs::create_dir_all(fx.charts.join("empty")).unwrap();
    c["services"][0]["plans"][0]["chart"]["path"] = json!("empty");
    fx.write("c.yaml", &c.to_string());
    let found = issues(&fx.lint());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("has no Chart.yaml"), "{found:?}");

    for escape in ["../charts/mysql", "/etc", ""] {
        c["services"][0]["plans"][0]["chart"]["path"] = json!(escape);
        assert_one_issue(
            &c,
            "services[0].plans[0].chart.path",
            "must be a folder name",
        );
    }
}

#[test]
fn bindable_chart_plan_needs_credentials() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]
        .as_object_mut()
        .unwrap()
        .remove("credentials");
    assert_one_issue(&c, "services[0].plans[0].chart.credentials", "bindable");

    // Not bindable (plan override): empty credentials are fine.
    c["services"][0]["plans"][0]["bindable"] = json!(false);
    assert_eq!(lint_value(&c), Vec::<String>::new());
}

#[test]
fn values_and_credentials_must_be_mappings() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["values"] = json!(["a"]);
    assert_one_issue(&c, "services[0].plans[0].chart.values", "must be a mapping");
}

#[test]
fn maintenance_info_version() {
    for (version, needle) in [("", "non-empty"), ("1.0", "not a semantic version")] {
        let mut c = mk_catalog();
        c["services"][0]["plans"][0]["maintenance_info"]["version"] = json!(version);
        assert_one_issue(&c, "services[0].plans[0].maintenance_info.version", needle);
    }
}

#[test]
fn secret_length_and_name() {
    for length in [7, 257] {
        let mut c = mk_catalog();
        c["services"][0]["plans"][0]["chart"]["secrets"]["root_password"]["length"] = json!(length);
        assert_one_issue(
            &c,
            "services[0].plans[0].chart.secrets.root_password.length",
            "out of range 8..=256",
        );
    }
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["secrets"]["bad.name"] = json!({});
    assert_one_issue(
        &c,
        "services[0].plans[0].chart.secrets[\"bad.name\"]",
        "letters, digits",
    );
}

#[test]
fn plan_needs_exactly_one_backend() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][1]["chart"] = json!({"path": "mysql"});
    assert_one_issue(&c, "services[0].plans[1]", "not both");
    c["services"][0]["plans"][1]
        .as_object_mut()
        .unwrap()
        .remove("chart");
    c["services"][0]["plans"][1]
        .as_object_mut()
        .unwrap()
        .remove("upstream");
    assert_one_issue(
        &c,
        "services[0].plans[1]",
        "needs a `chart:` or an `upstream:`",
    );
}

#[test]
fn upstream_broker_must_be_declared_in_any_file() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][1]["upstream"]["broker"] = json!("nope");
    assert_one_issue(
        &c,
        "services[0].plans[1].upstream.broker",
        "no upstream broker named `nope`",
    );

    // Declared in another file: fine.
    let fx = Fixture::new();
    let mut c = mk_catalog();
    let upstreams = c.as_object_mut().unwrap().remove("upstreams").unwrap();
    fx.write("a.yaml", &c.to_string());
    fx.write("z.yaml", &json!({ "upstreams": upstreams }).to_string());
    assert_eq!(issues(&fx.lint()), Vec::<String>::new());
}

#[test]
fn osb_field_rules() {
    let mut c = mk_catalog();
    let svc = &mut c["services"][0];
    svc["requires"] = json!(["volume_mount", "root_access"]);
    svc["name"] = json!("my sql");
    svc["description"] = json!("");
    svc["metadata"] = json!("text");
    svc["plans"][1]["id"] = json!(" ");
    assert_issues_at(
        &c,
        &[
            "services[0].name",
            "services[0].description",
            "services[0].requires[1]",
            "services[0].metadata",
            "services[0].plans[1].id",
        ],
    );

    let mut c = mk_catalog();
    c["services"][0]["plans"] = json!([]);
    assert_one_issue(&c, "services[0].plans", "at least one plan");
}

#[test]
fn load_lists_every_issue() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["path"] = json!("nope");
    c["services"][0]["plans"][0]["maintenance_info"]["version"] = json!("");
    c["services"][0]["plans"][1]["upstream"]["broker"] = json!("nope");
    let fx = Fixture::new();
    fx.write("c.yaml", &c.to_string());
    let err = Catalog::load(&fx.catalog, &fx.charts).unwrap_err();
    let CatalogError::Invalid(found) = &err;
    assert_eq!(found.len(), 3, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("invalid catalog (3 problem(s)):\n"),
        "{text}"
    );
    assert!(
        text.contains("c.yaml: services[0].plans[0].chart.path: "),
        "{text}"
    );
}

#[test]
fn empty_or_missing_catalog_dir_is_an_issue_but_comment_files_are_fine() {
    let fx = Fixture::new();
    let found = fx.lint();
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("no *.yaml"));

    fx.write("notes.txt", "ignored");
    fx.write("empty.yaml", "# nothing yet\n");
    fx.write("c.yaml", &mk_catalog().to_string());
    assert_eq!(issues(&fx.lint()), Vec::<String>::new());

    let missing = super::super::lint(&fx.catalog.join("nope"), &fx.charts);
    assert!(missing[0].message.contains("cannot read catalog directory"));
}

#[test]
fn maximum_polling_duration_takes_a_duration_text_in_whole_seconds() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["maximum_polling_duration"] = json!("15m");
    let cat = load_value(&c);
    assert_eq!(
        cat.services()[0].plans[0].maximum_polling_duration,
        Some(900)
    );
    c["services"][0]["plans"][0]["maximum_polling_duration"] = json!("1.5s");
    assert_one_issue(
        &c,
        &format!("{PLAN0}.maximum_polling_duration"),
        "1.5s is not whole seconds",
    );
    c["services"][0]["plans"][0]["maximum_polling_duration"] = json!("-3s");
    let found = lint_value(&c);
    assert!(
        found.len() == 1 && found[0].contains("\"-3s\" is negative"),
        "{found:?}"
    );
}
