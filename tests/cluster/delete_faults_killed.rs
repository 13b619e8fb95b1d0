//! The delete fault matrix's "broker killed mid-delete" cell on the helm
//! engine: two real broker processes (`--store kube`) on the real API
//! server; the one running a deprovision is SIGKILLed while `helm
//! uninstall` runs, and the survivor finishes it. The platform's poll sees
//! `succeeded`, and nothing of the instance is left: release records,
//! release objects, the binding Secret. The same for an upstream plan: the
//! broker killed while it polls the upstream's deprovision. The unbind
//! path likewise: a replica killed while its unbind drops the binding's
//! database user, and the broker killed while it polls the upstream's
//! unbind. (The render engine's cells are in tests/adapters/delete_faults.rs.)

use crate::common;
use common::upstream as support;

use common::cluster::{Cluster, release_records};
use common::cluster_calls::*;
use common::hanging_helm::{alive, hanging_pair, helm_pid_in};
use common::process::*;
use serde_json::json;

use crate::helpers::delete_faults_killed::*;
use chartbroker::store::seal::Sealer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_uninstall_has_its_deprovision_finished() {
    // Replica A's helm says where it is, then hangs in uninstall.
    let mut p = hanging_pair("uninstall").await;
    let (k, ns, dir, pidfile) = (&p.k, &p.ns, &p.dir, &p.pidfile);
    let (pa, pb) = (p.pa, p.pb);
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
    let done = ran(
        put.clone(),
        &format!("{a_url}?accepts_incomplete=true"),
        Some(body),
    )
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let bind = json!({"service_id": "svc-cluster", "plan_id": "plan-tiny"});
    let (s, r) = call(put, format!("{a_url}/service_bindings/b1"), Some(bind)).await;
    assert_eq!(s, 201, "{r}");
    let secret = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-b1");
    assert!(k.get(&secret).await.is_some());

    let query = "service_id=svc-cluster&plan_id=plan-tiny&accepts_incomplete=true";
    let op = accepted(reqwest::Method::DELETE, &format!("{a_url}?{query}"), None).await;
    let helm_pid = helm_pid_in(pidfile, 400)
        .await
        .expect("A is inside helm uninstall");
    p.a.0.kill().unwrap(); // SIGKILL, mid-delete
    p.a.0.wait().unwrap();

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
        release_records(k, ns, "cb-k1").await.is_empty(),
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
    assert!(!alive(helm_pid), "A's helm uninstall outlived A");
}

/// The upstream cell: the broker is SIGKILLed while it polls the upstream
/// broker's asynchronous deprovision; the restarted broker resumes polling
/// from its checkpoint (never sending the delete twice), the platform's
/// poll sees `succeeded`, and the upstream no longer has the instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_upstream_deprovision_resumes_it() {
    let (bed, first) = UpstreamBed::start().await;
    let path = "/v2/service_instances/up-1";
    let url = format!("{}{path}", first.url);
    let body = support::provision_body("svc-db", "plan-premium", json!({}));
    let done = ran(
        reqwest::Method::PUT,
        &format!("{url}?accepts_incomplete=true"),
        Some(body),
    )
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");

    let query = "service_id=svc-db&plan_id=plan-premium&accepts_incomplete=true";
    let op = accepted(reqwest::Method::DELETE, &format!("{url}?{query}"), None).await;
    kill_mid_upstream_delete(&bed.cloud, first, bed.setup(), path, &op, query).await;
}

/// The unbind cell on an upstream plan: the broker is SIGKILLed while it
/// polls the upstream's asynchronous unbind; the restarted broker resumes
/// polling (never sending the unbind twice), the platform's poll sees
/// `succeeded`, the upstream no longer has the binding, and a repeat
/// answers 410.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_upstream_unbind_resumes_it() {
    let (bed, first) = UpstreamBed::start().await;
    let path = "/v2/service_instances/up-u";
    let bpath = provision_and_bind(&first.url, path).await;

    let query = "service_id=svc-db&plan_id=plan-premium&accepts_incomplete=true";
    let unbind = format!("{}{bpath}?{query}", first.url);
    let op = accepted(reqwest::Method::DELETE, &unbind, None).await;
    let second = kill_mid_upstream_delete(&bed.cloud, first, bed.setup(), &bpath, &op, query).await;
    let (s, r) = osb(reqwest::Method::GET, format!("{}{bpath}", second.url), None).await;
    assert_eq!(s, 404, "the binding is gone: {r}");
    // The instance itself stays, and still deprovisions.
    accepted(
        reqwest::Method::DELETE,
        &format!("{}{path}?{query}", second.url),
        None,
    )
    .await;
}

/// The unbind cell on the helm engine, sync and async: a replica A is
/// SIGKILLed inside the unbind (while it waits on the database to drop the
/// binding's user); the survivor B finishes it once. An accepted (202)
/// unbind is polled on B to `succeeded`; a synchronous one dies with A and
/// the platform's retry on B gets 410 (done). The user, the binding Secret
/// and the binding are gone, and the instance still deprovisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_unbind_has_its_unbind_finished() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = mariadb().await;
    let proxy = HoldingProxy::start(db.port).await;
    let k = Cluster::admin().await;
    let (id, ns) = k.broker_and_target("apps").await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_with_users(dir.path(), proxy.port);
    let key = Sealer::generate_base64();
    let pb = free_port();
    let _b = spawn_with(&id, &dir.path().join("b"), &catalog, &key, pb);
    ready(pb).await;
    let b_url = format!("http://127.0.0.1:{pb}/v2/service_instances/u1");
    let body = json!({
        "service_id": "svc-users", "plan_id": "plan-users",
        "context": {"platform": "kubernetes", "namespace": ns},
    });
    let put = reqwest::Method::PUT;
    let done = ran(put, &format!("{b_url}?accepts_incomplete=true"), Some(body)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let bed = UnbindBed {
        db,
        proxy,
        k,
        id,
        ns,
        dir,
        catalog,
        key,
        b_url,
    };
    bed.killed_unbind("b-async", true).await;
    bed.killed_unbind("b-sync", false).await;

    let b_url = &bed.b_url;
    let query = format!("{USERS_QUERY}&accepts_incomplete=true");
    // The instance still deprovisions.
    let done = ran(reqwest::Method::DELETE, &format!("{b_url}?{query}"), None).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(release_records(&bed.k, &bed.ns, "cb-u1").await.is_empty());
}
