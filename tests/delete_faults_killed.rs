//! The delete fault matrix's "broker killed mid-delete" cell on the helm
//! engine: two real broker processes (`--store kube`) on the real API
//! server; the one running a deprovision is SIGKILLed while `helm
//! uninstall` runs, and the survivor finishes it. The platform's poll sees
//! `succeeded`, and nothing of the instance is left: release records,
//! release objects, the binding Secret. The same for an upstream plan: the
//! broker killed while it polls the upstream's deprovision. (The render
//! engine's cells are in tests/delete_faults.rs.)

mod common;
#[path = "upstream/support.rs"]
mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::cluster::{BrokerIdentity, Cluster, release_records};
use common::process::*;
use common::*;
use serde_json::{Value, json};

use chartbroker::store::seal::Sealer;

fn spawn(id: &BrokerIdentity, data: &Path, helm: &Path, key: &str, port: u16) -> Proc {
    std::fs::create_dir_all(data).unwrap();
    let log: Stdio = std::fs::File::create(data.with_extension("log"))
        .unwrap()
        .into();
    Proc(
        id.replica(broker_bin(), data, helm, key, port, 2)
            .stderr(log)
            .spawn()
            .expect("chartbroker starts"),
    )
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    http(method, url, body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_uninstall_has_its_deprovision_finished() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let k = Cluster::admin().await;
    let id = k.install_broker(false).await;
    let ns = k.namespace("apps").await;
    k.grant_target(&id, &ns);
    let dir = tempfile::tempdir().unwrap();
    let key = Sealer::generate_base64();
    // Replica A's helm says where it is, then hangs in uninstall.
    let pidfile = dir.path().join("a-helm.pid");
    let slow = dir.path().join("slow-helm");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\ncase \"$1\" in uninstall) echo $$ > '{}'; sleep 60;; esac\nexec {} \"$@\"\n",
            pidfile.display(),
            helm_bin().display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (pa, pb) = (free_port(), free_port());
    let mut a = spawn(&id, &dir.path().join("a"), &slow, &key, pa);
    let _b = spawn(&id, &dir.path().join("b"), &helm_bin(), &key, pb);
    ready(pa).await;
    ready(pb).await;
    let (a_url, b_url) = (
        format!("http://127.0.0.1:{pa}/v2/service_instances/k1"),
        format!("http://127.0.0.1:{pb}/v2/service_instances/k1"),
    );

    let body = json!({
        "service_id": "svc-cluster", "plan_id": "plan-tiny",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": {"message": "m"},
    });
    let put = reqwest::Method::PUT;
    let (s, r) = call(
        put.clone(),
        format!("{a_url}?accepts_incomplete=true"),
        Some(body),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    assert_eq!(
        poll(&format!("{a_url}/last_operation?operation={op}")).await["state"],
        "succeeded"
    );
    let bind = json!({"service_id": "svc-cluster", "plan_id": "plan-tiny"});
    let (s, r) = call(put, format!("{a_url}/service_bindings/b1"), Some(bind)).await;
    assert_eq!(s, 201, "{r}");
    let secret = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-b1");
    assert!(k.get(&secret).await.is_some());

    let query = "service_id=svc-cluster&plan_id=plan-tiny&accepts_incomplete=true";
    let (s, r) = call(reqwest::Method::DELETE, format!("{a_url}?{query}"), None).await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let mut helm_pid = None;
    for _ in 0..400 {
        helm_pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if helm_pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let helm_pid = helm_pid.expect("A is inside helm uninstall");
    a.0.kill().unwrap(); // SIGKILL, mid-delete
    a.0.wait().unwrap();

    // The platform keeps polling (any replica answers): the survivor takes
    // the operation over and finishes it.
    let last = poll(&format!("{b_url}/last_operation?operation={op}")).await;
    if last["state"] != "succeeded" {
        let log = |r: &str| std::fs::read_to_string(dir.path().join(r).with_extension("log"));
        panic!(
            "not finished: {last}\n--- A ---\n{:?}\n--- B ---\n{:?}",
            log("a"),
            log("b")
        );
    }
    assert!(
        release_records(&k, &ns, "cb-k1").await.is_empty(),
        "release records left"
    );
    let cm = format!("/api/v1/namespaces/{ns}/configmaps/cb-k1");
    assert!(
        k.get(&cm).await.is_none(),
        "the release's ConfigMap is left"
    );
    assert!(k.get(&secret).await.is_none(), "the binding Secret is left");
    let (s, r) = call(reqwest::Method::DELETE, format!("{b_url}?{query}"), None).await;
    assert_eq!(s, 410, "{r}");
    // A's helm child must not outlive it (it would act later, behind B's back).
    let alive = std::fs::read_to_string(format!("/proc/{helm_pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    });
    assert!(!alive, "A's helm uninstall outlived A");
}

/// Polls a `last_operation` URL until it leaves `in progress` (or a minute
/// passed, the lease being 2 s); returns the last body.
async fn poll(url: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (status, body) = call(reqwest::Method::GET, url.to_string(), None).await;
        assert_eq!(status, 200, "{body}");
        last = body;
        if last["state"] != "in progress" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// The upstream cell: the broker is SIGKILLed while it polls the upstream
/// broker's asynchronous deprovision; the restarted broker resumes polling
/// from its checkpoint (never sending the delete twice), the platform's
/// poll sees `succeeded`, and the upstream no longer has the instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_upstream_deprovision_resumes_it() {
    use support::{
        CatalogOpts, Cloud, MYSQL_PREMIUM, MYSQL_SERVICE, provision_body, write_catalog,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cloud = Cloud::start("async", 10, &[]);
    let dir = tempfile::tempdir().unwrap();
    let catalog = write_catalog(dir.path(), &CatalogOpts::new(&cloud.url));
    let data = dir.path().join("state");
    let charts = fixtures().join("charts");
    let mut first = serve(&catalog, &charts, &data, &helm_bin(), &[]).await;
    let path = "/v2/service_instances/up-1";
    let (s, r) = osb(
        reqwest::Method::PUT,
        format!("{}{path}?accepts_incomplete=true", first.url),
        Some(provision_body("svc-db", "plan-premium", json!({}))),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    let done = poll(&format!(
        "{}{path}/last_operation?operation={op}",
        first.url
    ))
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");

    let query = "service_id=svc-db&plan_id=plan-premium&accepts_incomplete=true";
    let (s, r) = osb(
        reqwest::Method::DELETE,
        format!("{}{path}?{query}", first.url),
        None,
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap().to_string();
    // Polling the upstream's deprovision has begun (checkpointed): kill.
    let lo = format!("{path}/last_operation");
    let polls_before_delete = cloud.received("GET", &lo).len();
    cloud
        .wait_for("a poll of the deprovision", |rs| {
            rs.iter().filter(|r| r["path"] == lo.as_str()).count() > polls_before_delete
        })
        .await;
    first.kill_9();

    let second = serve(&catalog, &charts, &data, &helm_bin(), &[]).await;
    let last = poll(&format!("{}{lo}?operation={op}", second.url)).await;
    assert_eq!(last["state"], "succeeded", "{last}");
    assert_eq!(
        cloud.received("DELETE", path).len(),
        1,
        "the delete was sent once"
    );
    let q = format!("{path}?service_id={MYSQL_SERVICE}&plan_id={MYSQL_PREMIUM}");
    let (status, _) = cloud.direct(reqwest::Method::GET, &q, None).await;
    assert!(
        status == 404 || status == 410,
        "the upstream still has it ({status})"
    );
    let (s, r) = osb(
        reqwest::Method::DELETE,
        format!("{}{path}?{query}", second.url),
        None,
    )
    .await;
    assert_eq!(s, 410, "{r}");
}
