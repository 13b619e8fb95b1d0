//! Several broker replicas sharing state in Kubernetes Secrets
//! (`--store kube`): any replica answers for any instance, one operation per
//! instance holds across replicas, and when a replica dies mid-operation
//! another takes the operation over once its lease lapses.

use crate::common;

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::process::{free_port, http, poll_last_operation, ready};
use common::*;
use serde_json::{Value, json};

use crate::helpers::replicas::*;
use chartbroker::runtime::Runtime;
use chartbroker::store::seal::Sealer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_another_key_is_refused_at_start() {
    let k = cluster().await;
    let key = Sealer::generate_base64();
    let a = replica(&k, &key).await;
    provisioned(&a, "keyed-1").await;
    let data = tempfile::tempdir().unwrap();
    let other = replica_config(&k, data.path(), &Sealer::generate_base64());
    let err = format!("{:#}", Runtime::start(&other).await.err().expect("refused"));
    assert!(
        err.contains(&Sealer::from_base64(&key).unwrap().key_id()),
        "{err}"
    );
    assert!(err.contains("give every replica the same key"), "{err}");
    // No key at all: refused too, and no key file appears.
    let mut none = replica_config(&k, data.path(), "");
    none.store_key = None;
    let err = format!("{:#}", Runtime::start(&none).await.err().expect("refused"));
    assert!(
        err.contains("--store kube needs a store key shared by every replica"),
        "{err}"
    );
    assert!(!data.path().join("store.key").exists());
    // A key file that does not exist is not created either.
    none.store_key_file = Some(data.path().join("missing.key"));
    assert!(Runtime::start(&none).await.is_err());
    assert!(!data.path().join("missing.key").exists());
    // The first replica is untouched.
    let r = a.get(&inst("keyed-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_missing_the_new_key_says_so_on_readyz_metrics_and_503() {
    let k = cluster().await;
    let (old, new) = (Sealer::generate_base64(), Sealer::generate_base64());
    let a = replica(&k, &old).await;
    provisioned(&a, "before-rotation").await;
    // Rotated (new key, old key for reading) while A still runs on the old one.
    let c = rotated_replica(&k, &new, &old).await;
    provisioned(&c, "after-rotation").await;
    let r = c.get(&inst("before-rotation")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the old key still reads: {}",
        r.text
    );

    // A cannot open what C sealed: a clear 503 instead of an opaque 500.
    let r = last_operation(&a, "after-rotation").await;
    assert_osb_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        Some("ServiceUnavailable"),
    );
    let why = r.json["description"].as_str().unwrap();
    let new_id = Sealer::from_base64(&new).unwrap().key_id();
    assert!(why.contains("instances/after-rotation"), "{why}");
    assert!(why.contains(&new_id), "{why}");
    assert!(why.contains("which this broker was not given"), "{why}");
    assert!(
        !r.text.contains(&new) && !r.text.contains(&old),
        "{}",
        r.text
    );

    let ready = a.get("/readyz").await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.json["status"], "store unreadable");
    assert!(
        ready.json["reason"].as_str().unwrap().contains(&new_id),
        "{}",
        ready.text
    );
    let metrics = a.get("/metrics").await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("chartbroker_store_errors_total{kind=\"unknown_key\"}")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "chartbroker_store_unreadable_records 1"),
        "{metrics}"
    );
    // The rotated replica is fine.
    let ready = c.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    // A replica restarted with the old key alone is refused at start.
    let data = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        Runtime::start(&replica_config(&k, data.path(), &old))
            .await
            .err()
            .expect("refused")
    );
    assert!(err.contains(&new_id), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_instances_and_serialise_operations() {
    let k = cluster().await;
    let key = Sealer::generate_base64();
    let (a, b) = (replica(&k, &key).await, replica(&k, &key).await);

    let params = json!({"message": "from-a"});
    let op = a.provision_async("rep-1", "plan-small", params).await;
    // Replica B answers for an operation A started.
    let done = b.wait_instance("rep-1", &op).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let r = b.get(&inst("rep-1")).await;
    assert_eq!(r.json["parameters"]["message"], "from-a", "{}", r.text);

    // Two replicas, two different updates at once: exactly one starts.
    let patch = |msg: &str| json!({"service_id": "svc-tiny", "parameters": {"message": msg}});
    let uri = "/v2/service_instances/rep-1?accepts_incomplete=true";
    let (ra, rb) = tokio::join!(a.patch(uri, patch("a")), b.patch(uri, patch("b")));
    let statuses = [ra.status, rb.status];
    assert!(
        statuses.contains(&StatusCode::ACCEPTED),
        "{} / {}",
        ra.text,
        rb.text
    );
    assert!(
        statuses.contains(&StatusCode::UNPROCESSABLE_ENTITY),
        "the other replica refuses: {} / {}",
        ra.text,
        rb.text
    );
    let accepted = [&ra, &rb]
        .into_iter()
        .find(|r| r.status == StatusCode::ACCEPTED);
    let op = accepted.unwrap().json["operation"].as_str().unwrap();
    let done = a.wait_instance("rep-1", op).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);

    // State lives in sealed Secrets in the broker's namespace.
    let state: Vec<Value> = k
        .list("secrets", Some("chartbroker-system"))
        .into_iter()
        .filter(|s| s["type"] == "chartbroker.io/state")
        .collect();
    assert!(!state.is_empty());
    assert!(
        !serde_json::to_string(&state).unwrap().contains("from-a"),
        "values are sealed"
    );

    // B binds and deprovisions what A provisioned.
    let bound = bind_body("plan-small", json!({}));
    b.put_created("/v2/service_instances/rep-1/service_bindings/rb", bound)
        .await;
    let r = a
        .del("/v2/service_instances/rep-1?service_id=svc-tiny&plan_id=plan-small&accepts_incomplete=true")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap();
    assert_delete_done(&b.wait_instance("rep-1", op).await);
    assert!(k.get("v1", "secrets", Some("apps"), "cb-bind-rb").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_operation_is_taken_over_by_another() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let k = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = k.kubeconfig(dir.path());
    let key = Sealer::generate_base64();
    // Replica A's helm hangs on upgrade, so A dies mid-install.
    let (slow, _) = helm_hanging_in(dir.path(), "upgrade");
    // B takes the same key from the Secret the deploy manifests provide.
    k.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "chartbroker-store-key", "namespace": "chartbroker-system"},
        "data": {"store.key": B64.encode(&key)}}));
    let (pa, pb) = (free_port(), free_port());
    let at = |name: &str| dir.path().join(name);
    let mut a = spawn(&at("a"), &kubeconfig, &slow, Key::Env(&key), pa);
    ready(pa).await;
    let in_secret = Key::Secret("chartbroker-store-key");
    let _b = spawn(&at("b"), &kubeconfig, &helm_bin(), in_secret, pb);
    ready(pb).await;
    // A third replica with a key of its own exits at start, saying why.
    let own = Sealer::generate_base64();
    let out = command(
        &at("c"),
        &kubeconfig,
        &helm_bin(),
        Key::Env(&own),
        free_port(),
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("give every replica the same key"),
        "{stderr}"
    );
    let (status, body) = http(
        reqwest::Method::PUT,
        format!("http://127.0.0.1:{pa}/v2/service_instances/orphan-1?accepts_incomplete=true"),
        Some(provision_body("plan-small", json!({"message": "survives"}))),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{body}");
    let op = body["operation"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.0.kill().unwrap(); // SIGKILL: A's lease stops being renewed
    a.0.wait().unwrap();

    let url = format!(
        "http://127.0.0.1:{pb}/v2/service_instances/orphan-1/last_operation?operation={op}"
    );
    let last = poll_last_operation(&url, 300, Duration::from_millis(100)).await;
    assert_eq!(
        last["state"], "succeeded",
        "replica B took the operation over: {last}"
    );
    let cm = k
        .get("v1", "configmaps", Some("apps"), "cb-orphan-1")
        .expect("installed by B");
    assert_eq!(cm["data"]["message"], "survives");
}
