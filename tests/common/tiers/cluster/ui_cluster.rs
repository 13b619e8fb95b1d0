//! Helpers of cluster/ui_cluster.rs.

use crate::common;
pub use crate::common::dashboard::{UI_PASS, UI_USER};
use base64::Engine as _;
use common::cluster::{Cluster, chart_template, kubectl, secret_value};
use common::process::{Proc, broker_bin, osb};
use common::{PASS, USER, helm_bin, repo};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A dashboard page with `auth` (user, password); (status, body).
pub async fn ui_get(url: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut r = reqwest::Client::new().get(url);
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    let resp = r.send().await.expect("the broker answers");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Polls `last_operation` until the instance's operation succeeded.
pub async fn settle(base: &str, id: &str) {
    let uri = format!("{base}/v2/service_instances/{id}/last_operation");
    for _ in 0..1200 {
        let (_, r) = osb(Method::GET, uri.clone(), None).await;
        match r["state"].as_str() {
            Some("in progress") => tokio::time::sleep(Duration::from_millis(100)).await,
            Some("succeeded") => return,
            _ => panic!("{id}: {r}"),
        }
    }
    panic!("{id} still in progress");
}

/// The part of `page` from `open` to the next `</table>`.
pub fn table<'a>(page: &'a str, open: &str) -> &'a str {
    page.split(open)
        .nth(1)
        .unwrap_or_else(|| panic!("no {open} in {page}"))
        .split("</table>")
        .next()
        .unwrap()
}

/// Provisions `h-1` in `ns`, then updates it with hostile text: two
/// helm revisions.
pub async fn install_and_upgrade(base: &str, ns: &str) {
    let uri = format!("{base}/v2/service_instances/h-1?accepts_incomplete=true");
    let first = json!({"service_id": "svc-cluster", "plan_id": "plan-tiny",
        "context": {"platform": "kubernetes", "namespace": ns}, "parameters": {"message": "first"}});
    let (status, r) = osb(Method::PUT, uri.clone(), Some(first)).await;
    assert_eq!(status, 202, "{r}");
    settle(base, "h-1").await;
    let update = json!({"service_id": "svc-cluster",
        "parameters": {"message": "<script>alert('second')</script>"}});
    let (status, r) = osb(Method::PATCH, uri, Some(update)).await;
    assert_eq!(status, 202, "{r}");
    settle(base, "h-1").await;
}

/// How many `helm <command>` calls the broker at `base` made.
pub async fn helm_calls(base: &str, command: &str) -> f64 {
    let (_, text) = ui_get(&format!("{base}/metrics"), None).await;
    let prefix = format!("chartbroker_helm_call_duration_seconds_count{{command=\"{command}\"");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Replica `port`'s health page lists both replicas' Leases, live.
pub async fn assert_leases(port: u16) {
    let url = format!("http://127.0.0.1:{port}/ui/health");
    let (status, h) = ui_get(&url, Some((UI_USER, UI_PASS))).await;
    assert_eq!(status, 200, "{h}");
    let rows = table(&h, "<table id=\"replicas\">");
    assert_eq!(
        rows.matches("<tr class=\"succeeded\">").count(),
        2,
        "{rows}"
    );
    assert_eq!(rows.matches("<td>this replica</td>").count(), 1, "{rows}");
    assert_eq!(rows.matches("<td>live</td>").count(), 1, "{rows}");
    assert!(h.contains("<td>kube</td>"), "{h}");
}

/// The chart's objects for a broker with the dashboard on.
pub fn chart_yaml(ns: &str) -> String {
    let values = json!({
        "fullnameOverride": "cbui",
        "targetNamespaces": [],
        "defaultNamespace": "default",
        "engine": "render",
        "tls": {"enabled": false},
        "ui": {"enabled": true, "publicURL": "https://broker.example.test", "linkTTL": "2h"},
    });
    chart_template(ns, &values, &["deployment.yaml", "service.yaml"])
}

/// Applies the chart's Deployment and Service to `ns` (strict server-side
/// apply) and checks what was applied: one Service port, probes off the
/// dashboard, the UI credential by reference to its own Secret. Returns the
/// container's environment.
pub async fn apply_chart(k: &Cluster, ns: &str) -> Vec<Value> {
    let yaml = chart_yaml(ns);
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &["apply", "--server-side", "--validate=strict", "-f", "-"],
        &yaml,
    );
    assert!(ok, "{out}\n{yaml}");
    let dep = k
        .get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/cbui"))
        .await
        .expect("the Deployment was applied");
    let svc = k
        .get(&format!("/api/v1/namespaces/{ns}/services/cbui"))
        .await
        .expect("the Service was applied");
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    // One Service port, the broker's: the dashboard has no port of its own.
    let ports = svc["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1, "{svc}");
    assert_eq!(
        ports[0]["targetPort"], c["ports"][0]["name"],
        "the Service reaches the broker's port"
    );
    assert_eq!(c["ports"].as_array().unwrap().len(), 1);
    // Probes stay on the unauthenticated endpoints, not the dashboard.
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let path = c[probe]["httpGet"]["path"].as_str().unwrap_or("");
        assert!(!path.starts_with("/ui"), "{probe}: {path}");
    }
    // The credential comes from the dashboard's own Secret, never a value.
    let env = c["env"].as_array().unwrap().clone();
    for (name, key) in [
        ("CHARTBROKER_UI_USERNAME", "username"),
        ("CHARTBROKER_UI_PASSWORD", "password"),
        ("CHARTBROKER_UI_LINK_KEY", "link-key"),
    ] {
        let e = env
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {env:?}"));
        assert!(e.get("value").is_none(), "{e}");
        assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "cbui-ui", "{e}");
        assert_eq!(e["valueFrom"]["secretKeyRef"]["key"], key, "{e}");
    }
    env
}

/// The `CHARTBROKER_UI*` variables of `env` as a kubelet resolves them
/// (Secrets read from the API server).
pub async fn resolve_ui_env(k: &Cluster, ns: &str, env: &[Value]) -> Vec<(String, String)> {
    let mut resolved = Vec::new();
    for e in env.iter().filter(|e| {
        e["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("CHARTBROKER_UI"))
    }) {
        let name = e["name"].as_str().unwrap().to_owned();
        let value = match e["value"].as_str() {
            Some(v) => v.to_owned(),
            None => {
                let r = &e["valueFrom"]["secretKeyRef"];
                let path = format!(
                    "/api/v1/namespaces/{ns}/secrets/{}",
                    r["name"].as_str().unwrap()
                );
                let s = k.get(&path).await.expect("the Secret exists");
                secret_value(&s, r["key"].as_str().unwrap()).unwrap()
            }
        };
        resolved.push((name, value));
    }
    resolved
}

/// The real binary (render engine, test catalog) with `env` on `port`.
pub fn serve_with(env: Vec<(String, String)>, port: u16, data: &std::path::Path) -> Proc {
    let fixtures = repo().join("tests/fixtures");
    let flags = [
        ("--catalog", fixtures.join("catalog")),
        ("--charts", fixtures.join("charts")),
        ("--data-dir", data.to_path_buf()),
        ("--helm", helm_bin()),
    ];
    let mut broker = Command::new(broker_bin());
    broker.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    for (flag, path) in flags {
        broker.arg(flag).arg(path);
    }
    let credentials = [
        ("CHARTBROKER_USERNAME", USER),
        ("CHARTBROKER_PASSWORD", PASS),
    ];
    broker.envs(env).envs(credentials);
    broker.stdout(Stdio::null()).stderr(Stdio::null());
    Proc(broker.spawn().expect("chartbroker starts"))
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}
