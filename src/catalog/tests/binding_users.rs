//! Lint rules of `chart.binding_users`.

use serde_json::{Value, json};

use super::*;

const AT: &str = "services[0].plans[0].chart.binding_users";

/// The base catalog with a valid mysql `binding_users` section whose
/// credentials hand out the user.
fn with_users() -> Value {
    let mut c = mk_catalog();
    let chart = &mut c["services"][0]["plans"][0]["chart"];
    chart["binding_users"] = json!({
        "engine": "mysql",
        "admin": {"password": "{{secrets.root_password}}"},
        "database": "{{parameters.database}}",
        "shared": {"username": "app", "password": "{{secrets.user_password}}"},
        "fallback_to_shared": true
    });
    chart["credentials"]["username"] = json!("{{user.username}}");
    chart["credentials"]["password"] = json!("{{user.password}}");
    c
}

fn users(c: &mut Value) -> &mut Value {
    &mut c["services"][0]["plans"][0]["chart"]["binding_users"]
}

#[test]
fn a_valid_section_is_clean_and_loads() {
    let c = with_users();
    assert_eq!(lint_value(&c), Vec::<String>::new());
    let catalog = load_value(&c);
    let plan = catalog.services()[0].plans[0].clone();
    let spec = plan.chart().unwrap().binding_users.clone().unwrap();
    assert_eq!(spec.engine, crate::catalog::DbEngine::Mysql);
    assert_eq!(
        spec.connect_timeout_seconds.0,
        std::time::Duration::from_secs(5)
    );
}

#[test]
fn sql_engines_need_a_database_and_redis_has_none() {
    let mut c = with_users();
    users(&mut c).as_object_mut().unwrap().remove("database");
    assert_one_issue(&c, &format!("{AT}.database"), "set `database`");
    let mut c = with_users();
    users(&mut c)["engine"] = json!("redis");
    assert_one_issue(&c, &format!("{AT}.database"), "remove `database`");
}

#[test]
fn fallback_needs_a_shared_user() {
    let mut c = with_users();
    users(&mut c).as_object_mut().unwrap().remove("shared");
    assert_one_issue(&c, &format!("{AT}.shared"), "fallback_to_shared");
}

#[test]
fn ports_and_timeouts_are_bounded() {
    let mut c = with_users();
    users(&mut c)["admin"]["port"] = json!(70000);
    assert_one_issue(&c, &format!("{AT}.admin.port"), "not a port");
    let mut c = with_users();
    users(&mut c)["connect_timeout_seconds"] = json!(0);
    assert_one_issue(
        &c,
        &format!("{AT}.connect_timeout_seconds"),
        "0s must be between 1s and 5m",
    );
    // A duration text reads like a number of seconds.
    let mut c = with_users();
    users(&mut c)["connect_timeout_seconds"] = json!("2m");
    assert_eq!(lint_value(&c), Vec::<String>::new());
    users(&mut c)["connect_timeout_seconds"] = json!("2 minutes");
    let found = lint_value(&c);
    assert!(
        found.len() == 1 && found[0].contains("\"2 minutes\" is not a duration"),
        "{found:?}"
    );
}

#[test]
fn section_templates_see_the_instance_only() {
    let mut c = with_users();
    users(&mut c)["admin"]["host"] = json!("{{binding.id}}.example");
    assert_one_issue(
        &c,
        &format!("{AT}.admin.host"),
        "only available in credentials",
    );
    let mut c = with_users();
    users(&mut c)["admin"]["password"] = json!("{{secrets.nope}}");
    assert_one_issue(&c, &format!("{AT}.admin.password"), "not declared");
}

#[test]
fn credentials_must_hand_out_the_user() {
    let mut c = with_users();
    c["services"][0]["plans"][0]["chart"]["credentials"]["password"] =
        json!("{{secrets.user_password}}");
    assert_one_issue(
        &c,
        "services[0].plans[0].chart.credentials",
        "user.password",
    );
}

#[test]
fn user_variables_exist_only_with_the_section() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][0]["chart"]["credentials"]["username"] = json!("{{user.username}}");
    assert_one_issue(
        &c,
        "services[0].plans[0].chart.credentials.username",
        "only in credentials of a plan with chart.binding_users",
    );
    let mut c = with_users();
    c["services"][0]["plans"][0]["chart"]["values"]["u"] = json!("{{user.username}}");
    assert_one_issue(&c, "services[0].plans[0].chart.values.u", "user.*");
}

#[test]
fn an_unknown_engine_is_refused() {
    let mut c = with_users();
    users(&mut c)["engine"] = json!("oracle");
    let found = lint_value(&c);
    assert!(
        found
            .iter()
            .any(|i| i.contains("oracle") || i.contains("engine")),
        "{found:?}"
    );
}
