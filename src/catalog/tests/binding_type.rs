//! The service's `binding:` (Service Binding for Kubernetes type and
//! provider) and the credentials it keeps clear of.

use serde_json::json;

use super::*;

#[test]
fn binding_type_loads_with_provider_defaulted() {
    let mut c = mk_catalog();
    c["services"][0]["binding"] = json!({"type": "mysql"});
    assert_eq!(lint_value(&c), Vec::<String>::new());
    let cat = load_value(&c);
    let b = cat.services()[0].binding.clone().expect("binding type");
    assert_eq!(
        (b.kind.as_str(), b.provider.as_str()),
        ("mysql", "chartbroker")
    );
    assert_eq!(
        crate::catalog::binding_secret_type(&cat.services()[0]),
        "servicebinding.io/mysql"
    );
}

#[test]
fn binding_type_and_provider_must_be_lowercase_entry_names() {
    for (field, bad) in [
        ("type", "MySQL"),
        ("type", ""),
        ("type", "my sql"),
        ("type", "-mysql"),
        ("provider", "Bitnami"),
        ("provider", "a/b"),
    ] {
        let mut c = mk_catalog();
        c["services"][0]["binding"] = json!({"type": "mysql", "provider": "acme"});
        c["services"][0]["binding"][field] = json!(bad);
        assert_one_issue(
            &c,
            &format!("services[0].binding.{field}"),
            "lowercase letters, digits",
        );
    }
    let mut c = mk_catalog();
    c["services"][0]["binding"] = json!({"type": "mysql", "kind": "x"});
    let found = lint_value(&c);
    assert!(found.len() == 1 && found[0].contains("kind"), "{found:?}");
}

#[test]
fn credentials_may_not_hide_the_binding_entries() {
    let mut c = mk_catalog();
    c["services"][0]["binding"] = json!({"type": "mysql"});
    c["services"][0]["plans"][0]["chart"]["credentials"]["type"] = json!("db");
    assert_one_issue(
        &c,
        &format!("{PLAN0}.chart.credentials.type"),
        "comes from the service's `binding:` (`mysql`)",
    );
    // Without binding: the credential is the Secret's only `type` entry.
    c["services"][0].as_object_mut().unwrap().remove("binding");
    assert_eq!(lint_value(&c), Vec::<String>::new());
}
