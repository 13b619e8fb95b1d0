//! Helpers of adapters/ui_detail.rs.

use crate::common;
use base64::Engine as _;
use common::dashboard::*;
pub use common::example_catalog::{MYSQL, MYSQL_BASIC, WORDPRESS, WORDPRESS_STANDARD};
use common::*;
use serde_json::json;

/// The example catalog with the dashboard on.
pub async fn example_ui() -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    ui_broker_from(data, cfg, false).await
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
    let db = body(MYSQL, MYSQL_BASIC, "web", json!({"database": "blog"}));
    b.put_created("/v2/service_instances/db-1", db).await;
    let wp_on_db = json!({"mysql_instance": "db-1"});
    let wp = body(WORDPRESS, WORDPRESS_STANDARD, "web", wp_on_db);
    b.put_created("/v2/service_instances/wp-1", wp).await;
    let bind = json!({"service_id": MYSQL, "plan_id": MYSQL_BASIC});
    let r = b
        .put_created("/v2/service_instances/db-1/service_bindings/app-1", bind)
        .await;
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
    for (path, text) in [
        (
            catalog.join("spill.yaml"),
            "services:\n  - id: svc-spill\n    name: spill\n    description: spills its token\n    bindable: false\n    plans:\n      - id: plan-spill\n        name: spill\n        description: spills\n        chart:\n          path: spill\n          values:\n            token: \"{{secrets.token}}\"\n          secrets:\n            token: {length: 24}\n",
        ),
        (
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: spill\nversion: 0.1.0\n",
        ),
        (
            chart.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  annotations:\n    note: \"<script>alert('chart')</script>\"\ndata:\n  encoded: {{ b64enc .Values.token | quote }}\n  url: {{ printf \"mysql://app:%s@db:3306/app\" .Values.token | quote }}\n  shouted: {{ .Values.token | upper | quote }}\n",
        ),
    ] {
        std::fs::write(path, text).unwrap();
    }
}
