//! The loaded model, lookups and the `/v2/catalog` body.

use serde_json::json;

use super::*;
use crate::catalog::{Alphabet, NamespaceStrategy, SecretSpec, ServedBy, Teardown};

/// The keys of a JSON object, sorted.
fn sorted_keys(v: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn osb_json_has_exactly_the_osb_fields() {
    let catalog = load_value(&mk_catalog());
    let body = catalog.osb_json();
    let svc = &body["services"][0];
    let keys = sorted_keys(svc);
    assert_eq!(
        keys,
        [
            "allow_context_updates",
            "bindable",
            "bindings_retrievable",
            "description",
            "id",
            "instances_retrievable",
            "metadata",
            "name",
            "plan_updateable",
            "plans",
            "requires",
            "tags",
        ]
    );
    assert_eq!(svc["tags"], json!(["mysql", "relational"]));
    assert_eq!(svc["requires"], json!([]));
    assert_eq!(svc["metadata"], json!({"displayName": "MySQL"}));

    let basic = &svc["plans"][0];
    let keys = sorted_keys(basic);
    assert_eq!(
        keys,
        [
            "binding_rotatable",
            "description",
            "free",
            "id",
            "maintenance_info",
            "maximum_polling_duration",
            "metadata",
            "name",
            "schemas",
        ]
    );
    assert_eq!(
        basic["maintenance_info"],
        json!({"version": "1.0.0", "description": "MySQL 8.4"})
    );
    assert_eq!(basic["maximum_polling_duration"], json!(900));

    // Unset optional fields are omitted, not null.
    let premium = &svc["plans"][1];
    assert_eq!(
        premium,
        &json!({"id": "plan-premium", "name": "premium", "description": "Managed MySQL",
                "free": false, "binding_rotatable": false})
    );
}

#[test]
fn osb_json_never_leaks_broker_only_settings() {
    let catalog = load_value(&mk_catalog());
    let text = String::from_utf8(catalog.osb_body().to_vec()).unwrap();
    for leak in [
        "chart",
        "upstream",
        "async_required",
        "secrets",
        "root_password",
        "credentials",
        "values",
        "managed-mysql",
        "namespace",
    ] {
        assert!(!text.contains(leak), "{leak} leaked into {text}");
    }
}

#[test]
fn osb_json_passes_schemas_through_with_dialect() {
    let mut c = mk_catalog();
    let explicit = "http://json-schema.org/draft-07/schema#";
    c["services"][0]["plans"][0]["schemas"]["service_binding"]["create"]["parameters"]["$schema"] =
        json!(explicit);
    let catalog = load_value(&c);
    let schemas = &catalog.osb_json()["services"][0]["plans"][0]["schemas"];
    let mut expected = c["services"][0]["plans"][0]["schemas"].clone();
    expected["service_instance"]["create"]["parameters"]["$schema"] =
        json!("http://json-schema.org/draft-04/schema#");
    expected["service_instance"]["update"]["parameters"]["$schema"] =
        json!("http://json-schema.org/draft-04/schema#");
    assert_eq!(schemas, &expected);
}

#[test]
fn osb_body_is_cached_bytes_with_stable_etag() {
    let a = load_value(&mk_catalog());
    let b = load_value(&mk_catalog());
    assert_eq!(
        serde_json::from_slice::<Value>(&a.osb_body()).unwrap(),
        a.osb_json()
    );
    assert_eq!(a.etag(), b.etag());
    assert!(
        a.etag().starts_with('"') && a.etag().len() == 34,
        "{}",
        a.etag()
    );

    let mut c = mk_catalog();
    c["services"][0]["description"] = json!("changed");
    assert_ne!(load_value(&c).etag(), a.etag());
}

#[test]
fn lookups() {
    let catalog = load_value(&mk_catalog());
    let (svc, plan) = catalog.find_plan("svc-mysql", "plan-basic").unwrap();
    assert_eq!((svc.name.as_str(), plan.name.as_str()), ("mysql", "basic"));
    assert!(catalog.find_plan("svc-mysql", "nope").is_none());
    assert!(catalog.find_plan("nope", "plan-basic").is_none());
    assert_eq!(
        catalog.plan_by_id("plan-premium").unwrap().1.name,
        "premium"
    );
    assert!(catalog.plan_by_id("svc-mysql").is_none());
    assert_eq!(catalog.find_service("svc-mysql").unwrap().plans.len(), 2);
    assert_eq!(catalog.services().len(), 1);
    assert_eq!(
        catalog.upstream("managed-mysql").unwrap().settings["url"],
        json!("https://upstream.example")
    );
}

#[test]
fn plan_overrides_service_defaults() {
    let mut c = mk_catalog();
    c["services"][0]["plans"][1]["bindable"] = json!(false);
    c["services"][0]["plans"][1]["plan_updateable"] = json!(false);
    let catalog = load_value(&c);
    let svc = &catalog.services()[0];
    let (basic, premium) = (&svc.plans[0], &svc.plans[1]);
    assert!(basic.is_bindable(svc) && basic.is_updateable(svc));
    assert!(!premium.is_bindable(svc) && !premium.is_updateable(svc));
    assert!(premium.async_required && !basic.async_required);
}

#[test]
fn chart_backend_is_resolved() {
    let fx = Fixture::new();
    fx.write("c.yaml", &mk_catalog().to_string());
    let catalog = fx.load();
    let plan = &catalog.services()[0].plans[0];
    let ServedBy::Chart(chart) = &plan.served_by else {
        panic!("basic is a chart plan");
    };
    let path = chart.source.local_path().expect("a local chart");
    assert!(path.is_absolute());
    assert_eq!(path, fx.charts.join("mysql").canonicalize().unwrap());
    assert_eq!(chart.namespace, NamespaceStrategy::Context);
    assert_eq!(
        chart.secrets["root_password"],
        SecretSpec {
            length: 24,
            alphabet: Alphabet::Alphanumeric
        }
    );
    assert_eq!(
        chart.secrets["user_password"],
        SecretSpec {
            length: 32,
            alphabet: Alphabet::Hex
        }
    );
    assert_eq!(chart.values["primary"]["persistence"]["size"], json!("1Gi"));
    assert_eq!(plan.upstream(), None);
    assert_eq!(
        catalog.services()[0].plans[1].upstream().unwrap().plan_id,
        "up-plan"
    );
}

#[test]
fn yaml_document_from_the_format_doc_loads() {
    let fx = Fixture::new();
    fx.write(
        "mysql.yaml",
        r#"
services:
  - id: 3f6a3c4e-7c1b-4f7e-9d57-0d0f2b1a9e01
    name: mysql
    description: MySQL database server
    tags: [mysql, relational]
    requires: []
    bindable: true
    metadata: {displayName: MySQL}
    plans:
      - id: 0c5c9a1e-1f5b-4a3e-8f43-0f1d3c6a8b11
        name: basic
        description: Single MySQL server, 1 GiB storage
        maintenance_info: {version: 1.0.0, description: "MySQL 8.4"}
        schemas:
          service_instance:
            create: {parameters: {type: object, properties: {database: {type: string, default: app}}}}
        chart:
          path: mysql
          namespace: instance
          values:
            auth:
              rootPassword: "{{secrets.root_password}}"
              database: "{{parameters.database}}"
            primary:
              persistence: {size: 1Gi, enabled: true, replicas: 2}
          secrets:
            root_password: {length: 24}
          credentials:
            port: 3306
            password: "{{secrets.root_password}}"
"#,
    );
    let catalog = fx.load();
    let chart = catalog.services()[0].plans[0].chart().unwrap();
    assert_eq!(chart.namespace, NamespaceStrategy::Instance);
    assert_eq!(
        chart.values["primary"]["persistence"],
        json!({"size": "1Gi", "enabled": true, "replicas": 2})
    );
    assert_eq!(chart.credentials["port"], json!(3306));
}

#[test]
fn alphabets() {
    assert_eq!(Alphabet::Alphanumeric.chars().len(), 62);
    assert_eq!(Alphabet::Hex.chars().len(), 16);
    assert_eq!(Alphabet::Urlsafe.chars().len(), 64);
}

#[test]
fn a_teardown_reads_back_what_it_writes_and_what_the_tagged_derive_wrote() {
    let chart = Teardown::Chart {
        service: "mysql".into(),
        plan: "basic".into(),
        own_namespace: true,
        delete_pvcs: false,
        binding_users: None,
    };
    let upstream = Teardown::Upstream {
        service: "s3".into(),
        plan: "small".into(),
        upstream: serde_json::from_value(json!({
            "broker": "cloud", "service_id": "svc-1", "plan_id": "plan-1"
        }))
        .unwrap(),
    };
    for t in [&chart, &upstream] {
        let text = serde_json::to_string(t).unwrap();
        assert_eq!(
            &serde_json::from_str::<Teardown>(&text).unwrap(),
            t,
            "{text}"
        );
    }
    let read =
        |v: serde_json::Value| serde_json::from_value::<Teardown>(v).map_err(|e| e.to_string());
    // As records store it (a tagged object); unknown fields are ignored and
    // `binding_users` may be absent.
    let stored = json!({
        "served_by": "chart", "service": "mysql", "plan": "basic",
        "own_namespace": true, "delete_pvcs": false, "added_later": [1, 2]
    });
    assert_eq!(read(stored).unwrap(), chart);
    // A variant's own fields are required, the tag must be known.
    let missing =
        json!({"served_by": "chart", "service": "mysql", "plan": "basic", "own_namespace": true});
    assert!(read(missing).unwrap_err().contains("delete_pvcs"));
    let no_upstream = json!({"served_by": "upstream", "service": "s3", "plan": "small"});
    assert!(read(no_upstream).unwrap_err().contains("upstream"));
    let unknown = json!({"served_by": "lambda", "service": "s3", "plan": "small"});
    assert!(read(unknown).unwrap_err().contains("unknown variant"));
    let untagged = json!({"service": "s3", "plan": "small"});
    assert!(read(untagged).unwrap_err().contains("served_by"));
}
