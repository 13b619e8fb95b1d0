//! The dashboard against the real API server (tests/testenv) and the real
//! helm: a helm-engine instance's page shows its release history and
//! manifests as the release identity reads them (generated secrets
//! redacted), the health page shows the replicas sharing the Kubernetes
//! store by their Leases, and the broker's own chart serves the dashboard
//! on the broker's Service with a credential Secret of its own.
//!
//! Pods never run here (no kubelet): the chart test applies the chart's
//! objects to the API server, then starts the real binary with the UI
//! environment resolved from the applied Deployment and the Secret in the
//! cluster, as a kubelet would.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use common::cluster::{Cluster, chart_template, kubectl, secret_value};
use common::process::{Proc, broker_bin, free_port, osb, ready};
use common::{PASS, USER, helm_bin, repo};

const UI_USER: &str = "operator";
const UI_PASS: &str = "dashboard-password-1";

/// A dashboard page with `auth` (user, password); (status, body).
async fn ui_get(url: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut r = reqwest::Client::new().get(url);
    if let Some((u, p)) = auth {
        r = r.basic_auth(u, Some(p));
    }
    let resp = r.send().await.expect("the broker answers");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Polls `last_operation` until the instance's operation succeeded.
async fn settle(base: &str, id: &str) {
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
fn table<'a>(page: &'a str, open: &str) -> &'a str {
    page.split(open)
        .nth(1)
        .unwrap_or_else(|| panic!("no {open} in {page}"))
        .split("</table>")
        .next()
        .unwrap()
}

/// Provisions `h-1` in `ns`, then updates it with hostile text: two
/// helm revisions.
async fn install_and_upgrade(base: &str, ns: &str) {
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
async fn helm_calls(base: &str, command: &str) -> f64 {
    let (_, text) = ui_get(&format!("{base}/metrics"), None).await;
    let prefix = format!("chartbroker_helm_call_duration_seconds_count{{command=\"{command}\"");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Replica `port`'s health page lists both replicas' Leases, live.
async fn assert_leases(port: u16) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_release_shows_its_revisions_and_the_replicas_their_leases() {
    let k = Cluster::admin().await;
    let id = k.install_broker(false).await;
    let ns = k.namespace("uih").await;
    k.grant_target(&id, &ns);
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let root = tempfile::tempdir().unwrap();
    let ui = ["--ui", "--ui-username", UI_USER, "--ui-password", UI_PASS];
    let (pa, pb) = (free_port(), free_port());
    let start = |name: &str, port: u16| {
        let data = root.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let log: Stdio = std::fs::File::create(data.with_extension("log"))
            .unwrap()
            .into();
        Proc(
            id.replica(broker_bin(), &data, &helm_bin(), &key, port, 5)
                .args(ui)
                .stderr(log)
                .spawn()
                .expect("chartbroker starts"),
        )
    };
    let (_a, _b) = (start("a", pa), start("b", pb));
    ready(pa).await;
    ready(pb).await;
    let base = format!("http://127.0.0.1:{pa}");
    install_and_upgrade(&base, &ns).await;
    let secret = k
        .get(&format!("/api/v1/namespaces/{ns}/secrets/cb-h-1"))
        .await
        .expect("the release's Secret");
    let password = secret_value(&secret, "password").unwrap();
    assert!(password.len() >= 24);

    let histories = helm_calls(&base, "history").await;
    let url = format!("{base}/ui/instances/h-1");
    let loads = (0..8).map(|_| ui_get(&url, Some((UI_USER, UI_PASS))));
    let pages = futures::future::join_all(loads).await;
    // Eight loads at once, one `helm history`: answers are cached.
    assert_eq!(helm_calls(&base, "history").await, histories + 1.0);
    let (status, t) = &pages[0];
    assert_eq!(*status, 200, "{t}");
    let revisions = table(t, "<table id=\"revisions\">");
    assert_eq!(revisions.matches("<tr><td>").count(), 2, "{revisions}");
    assert!(
        revisions.find("<tr><td>2</td>").unwrap() < revisions.find("<tr><td>1</td>").unwrap(),
        "newest first: {revisions}"
    );
    assert!(revisions.contains("<td>deployed</td>") && revisions.contains("<td>superseded</td>"));
    assert!(revisions.contains("tiny-"), "{revisions}");
    assert!(t.contains("<summary>ConfigMap cb-h-1"), "{t}");
    assert!(t.contains("<summary>Secret cb-h-1"), "{t}");
    assert!(t.contains("&lt;script&gt;alert(&#39;second&#39;)"), "{t}");
    assert!(!t.contains("<script>alert"));
    assert!(
        !t.contains(&password),
        "the generated password is on the page"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(&password);
    assert!(
        !t.contains(&b64),
        "the generated password is on the page in base64"
    );
    // Both replicas by their Leases, live, from either replica.
    assert_leases(pa).await;
    assert_leases(pb).await;
}

/// The chart's objects for a broker with the dashboard on.
fn chart_yaml(ns: &str) -> String {
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
async fn apply_chart(k: &Cluster, ns: &str) -> Vec<Value> {
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
async fn resolve_ui_env(k: &Cluster, ns: &str, env: &[Value]) -> Vec<(String, String)> {
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
fn serve_with(env: Vec<(String, String)>, port: u16, data: &std::path::Path) -> Proc {
    Proc(
        Command::new(broker_bin())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--catalog")
            .arg(repo().join("tests/fixtures/catalog"))
            .arg("--charts")
            .arg(repo().join("tests/fixtures/charts"))
            .arg("--data-dir")
            .arg(data)
            .arg("--helm")
            .arg(helm_bin())
            .envs(env)
            .env("CHARTBROKER_USERNAME", USER)
            .env("CHARTBROKER_PASSWORD", PASS)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chartbroker starts"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_serves_the_dashboard_on_its_service_with_its_own_secret() {
    let k = Cluster::admin().await;
    let ns = k.namespace("uic").await;
    let env = apply_chart(&k, &ns).await;
    let data = json!({"username": b64(UI_USER), "password": b64(UI_PASS), "link-key": b64(&"k".repeat(32))});
    k.create(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cbui-ui", "namespace": ns},
               "type": "Opaque", "data": data}),
    )
    .await;
    let resolved = resolve_ui_env(&k, &ns, &env).await;
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let _broker = serve_with(resolved, port, dir.path());
    ready(port).await;
    let url = format!("http://127.0.0.1:{port}/ui/instances");
    assert_eq!(ui_get(&url, Some((UI_USER, UI_PASS))).await.0, 200);
    // Its own credential only: the broker's is not the dashboard's.
    assert_eq!(ui_get(&url, Some((USER, PASS))).await.0, 401);
    assert_eq!(ui_get(&url, None).await.0, 401);
    // The public URL from the values and the Secret's link key sign links
    // that open the instance's page without a credential.
    let (status, r) = osb(
        Method::PUT,
        format!("http://127.0.0.1:{port}/v2/service_instances/c-1"),
        Some(common::provision_body("plan-small", json!({}))),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let link = r["dashboard_url"].as_str().expect("a dashboard_url");
    let path = link
        .strip_prefix("https://broker.example.test")
        .unwrap_or_else(|| panic!("{link}"));
    assert!(path.starts_with("/ui/instances/c-1?"), "{link}");
    let (status, page) = ui_get(&format!("http://127.0.0.1:{port}{path}"), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Instance c-1</h1>"), "{page}");
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}
