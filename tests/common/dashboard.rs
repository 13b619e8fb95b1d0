//! The dashboard's test broker and requests (tests/edge/ui.rs).

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use chartbroker::runtime::Runtime;
use chartbroker::ui::{Ui, UiSettings};

use super::*;

pub const UI_USER: &str = "operator";
pub const UI_PASS: &str = "dashboard-password-1";
pub const PUBLIC: &str = "https://broker.example.test";
pub const KEY: [u8; 32] = [42; 32];

/// What a hostile chart prints when it fails.
pub const CHART_SCRIPT: &str = "<script>alert('chart')</script>";
/// What a hostile tenant sends as a parameter.
pub const TENANT_SCRIPT: &str = "<script>alert(\"tenant\")</script>";

/// The test catalog plus a service whose chart fails with hostile text.
pub fn hostile_catalog(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let catalog = dir.join("test-fixtures/catalog");
    let charts = dir.join("test-fixtures/charts");
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::copy(
        fixtures().join("catalog/test.yaml"),
        catalog.join("test.yaml"),
    )
    .unwrap();
    std::fs::write(
        catalog.join("hostile.yaml"),
        "services:\n  - id: svc-hostile\n    name: hostile\n    description: fails on purpose\n    bindable: false\n    plans:\n      - id: plan-hostile\n        name: loud\n        description: its chart fails\n        chart:\n          path: loud\n",
    )
    .unwrap();
    std::fs::create_dir_all(&charts).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(fixtures().join("charts/tiny"))
        .arg(charts.join("tiny"))
        .status()
        .unwrap();
    assert!(copied.success());
    let loud = charts.join("loud/templates");
    std::fs::create_dir_all(&loud).unwrap();
    let hostile = format!("{CHART_SCRIPT} <img src=x onerror=alert(1)>");
    for (path, text) in [
        (
            charts.join("loud/Chart.yaml"),
            "apiVersion: v2\nname: loud\nversion: 0.1.0\n".to_string(),
        ),
        (
            loud.join("fail.yaml"),
            format!("{{{{ fail {hostile:?} }}}}\n"),
        ),
    ] {
        std::fs::write(path, text).unwrap();
    }
    (catalog, charts)
}

/// A broker with the dashboard on, its own credential and signed links.
pub async fn ui_broker(broker_credentials: bool) -> TestBroker {
    ui_broker_with(broker_credentials, |_, _| {}).await
}

/// [`ui_broker`], its configuration changed by `edit` first.
pub async fn ui_broker_with(
    broker_credentials: bool,
    edit: impl FnOnce(&mut chartbroker::runtime::ServeConfig, &Path),
) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    edit(&mut cfg, data.path());
    let (catalog, charts) = hostile_catalog(data.path());
    cfg.catalog_dir = catalog;
    cfg.charts_dir = charts;
    ui_broker_from(data, cfg, broker_credentials).await
}

/// A broker of `cfg` (data in `data`) with the dashboard on: its own
/// credential and signed links.
pub async fn ui_broker_from(
    data: tempfile::TempDir,
    cfg: chartbroker::runtime::ServeConfig,
    broker_credentials: bool,
) -> TestBroker {
    let key = data.path().join("link.key");
    std::fs::write(&key, KEY).unwrap();
    let mut runtime = Runtime::start(&cfg).await.expect("broker starts");
    runtime.enable_ui(
        Ui::configure(UiSettings {
            username: Some(UI_USER.into()),
            password: Some(UI_PASS.into()),
            broker_credentials,
            public_url: Some(PUBLIC.into()),
            link_key_file: Some(key),
            link_key: None,
            link_ttl: Duration::from_secs(600),
        })
        .unwrap(),
    );
    TestBroker {
        app: runtime.app(),
        runtime,
        data,
    }
}

pub async fn get(b: &TestBroker, uri: &str, authorization: Option<&str>) -> Resp {
    let mut r = Request::builder().method(Method::GET).uri(uri);
    if let Some(a) = authorization {
        r = r.header("authorization", a);
    }
    b.send(r.body(Body::empty()).unwrap()).await
}

pub async fn page(b: &TestBroker, uri: &str) -> Resp {
    let r = get(b, uri, Some(&basic(UI_USER, UI_PASS))).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text);
    r
}

pub fn assert_strict(r: &Resp) {
    let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    let csp = h("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(h("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(h("cache-control").as_deref(), Some("no-store"));
    assert_eq!(h("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(h("referrer-policy").as_deref(), Some("no-referrer"));
}

pub fn enc(id: &str) -> String {
    chartbroker::ui::html::url_part(id).replace("&amp;", "&")
}

/// Provisions synchronously; returns the response.
pub async fn provision(b: &TestBroker, id: &str, plan: &str, ns: &str, params: Value) -> Resp {
    let mut body = provision_body_in(plan, ns, params);
    if plan == "plan-hostile" {
        body["service_id"] = json!("svc-hostile");
    }
    b.call(
        Method::PUT,
        &format!("/v2/service_instances/{}", enc(id)),
        Some(body),
    )
    .await
}

pub fn link_of(r: &Resp) -> String {
    let url = r.json["dashboard_url"]
        .as_str()
        .expect("a dashboard_url")
        .to_owned();
    assert!(url.starts_with(PUBLIC), "{url}");
    url[PUBLIC.len()..].to_owned()
}

pub fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub fn rows(text: &str) -> usize {
    text.matches("data-state-for=").count()
}

/// A provision or bind body for `service` and `plan` in namespace `ns`.
pub fn body(service: &str, plan: &str, ns: &str, params: Value) -> Value {
    json!({"service_id": service, "plan_id": plan,
        "context": {"platform": "kubernetes", "namespace": ns}, "parameters": params})
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
