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

use crate::common;
use crate::helpers::ui_cluster::*;
use base64::Engine as _;
use common::cluster::{Cluster, secret_value};
use common::process::{Proc, broker_bin, free_port, osb, ready};
use common::{PASS, USER, helm_bin};
use reqwest::Method;
use serde_json::json;
use std::process::Stdio;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_release_shows_its_revisions_and_the_replicas_their_leases() {
    let k = Cluster::admin().await;
    let (id, ns) = k.broker_and_target("uih").await;
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
