//! Helpers of adapters/ui_detail.rs.

use crate::common;
use axum::http::StatusCode;
use base64::Engine as _;
use common::dashboard::*;
pub use common::example_catalog::{MYSQL, MYSQL_BASIC, WORDPRESS, WORDPRESS_STANDARD};
use common::*;
use serde_json::{Value, json};

pub fn body(service: &str, plan: &str, ns: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan,
        "context": {"platform": "kubernetes", "namespace": ns}, "parameters": params})
}

/// The example catalog with the dashboard on.
pub async fn example_ui() -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    ui_broker_from(data, cfg, false).await
}

/// Every value of every Secret in a rendered release folder, as written.
pub fn secret_values(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("manifests.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut out = Vec::new();
    for v in docs {
        if v["kind"] != "Secret" {
            continue;
        }
        for field in ["data", "stringData"] {
            for (_, x) in v[field].as_object().into_iter().flatten() {
                let s = x.as_str().unwrap().to_owned();
                if field == "data" {
                    let plain = base64::engine::general_purpose::STANDARD
                        .decode(&s)
                        .unwrap();
                    out.push(String::from_utf8(plain).unwrap());
                }
                out.push(s);
            }
        }
    }
    out.retain(|s| s.len() >= 8);
    out
}

pub fn assert_hidden(page: &str, secrets: &[String]) {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for s in secrets {
        assert!(!page.contains(s.as_str()), "a Secret value is on the page");
        assert!(
            !page.contains(&b64(s)),
            "a Secret value is on the page in base64"
        );
    }
}

/// MySQL `db-1` used by WordPress `wp-1` in `web`, and a binding of
/// `db-1`: every Secret value written and the binding's password.
pub async fn wordpress_on_mysql(b: &TestBroker) -> Vec<String> {
    let r = b
        .put(
            "/v2/service_instances/db-1",
            body(MYSQL, MYSQL_BASIC, "web", json!({"database": "blog"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = b
        .put(
            "/v2/service_instances/wp-1",
            body(
                WORDPRESS,
                WORDPRESS_STANDARD,
                "web",
                json!({"mysql_instance": "db-1"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = b
        .put(
            "/v2/service_instances/db-1/service_bindings/app-1",
            json!({"service_id": MYSQL, "plan_id": MYSQL_BASIC}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bound = r.json["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut secrets = secret_values(&b.data.path().join("render/web/cb-db-1"));
    secrets.extend(secret_values(&b.data.path().join("render/web/cb-wp-1")));
    assert!(secrets.len() >= 2, "the example charts hold Secrets");
    secrets.push(bound);
    secrets
}

/// A chart that writes its generated token where no name says secret:
/// base64-encoded, inside a longer string, upper-cased, beside a hostile
/// annotation.
pub fn spill_chart(data: &std::path::Path) {
    let catalog = data.join("test-fixtures/catalog");
    let chart = data.join("test-fixtures/charts/spill");
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        catalog.join("spill.yaml"),
        "services:\n  - id: svc-spill\n    name: spill\n    description: spills its token\n    bindable: false\n    plans:\n      - id: plan-spill\n        name: spill\n        description: spills\n        chart:\n          path: spill\n          values:\n            token: \"{{secrets.token}}\"\n          secrets:\n            token: {length: 24}\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: spill\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  annotations:\n    note: \"<script>alert('chart')</script>\"\ndata:\n  encoded: {{ b64enc .Values.token | quote }}\n  url: {{ printf \"mysql://app:%s@db:3306/app\" .Values.token | quote }}\n  shouted: {{ .Values.token | upper | quote }}\n",
    )
    .unwrap();
}
