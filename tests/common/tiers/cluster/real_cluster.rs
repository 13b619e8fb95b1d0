//! Helpers of the tests in tests/cluster/real_cluster.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::cluster::{client_from as client, suffix};
use common::cluster_calls::kube_provision;
use common::*;
use futures::FutureExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Resource;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use chartbroker::runtime::Engine;

pub const SVC: &str = "svc-helm";
pub const SKIP: &str =
    "skipped: set KUBECONFIG and CHARTBROKER_REAL_CLUSTER=1 (see README: kind/k3d)";
/// Longest wait for an object to disappear (namespace termination on a
/// real cluster takes seconds, more on a busy one).
pub const GONE_WITHIN: Duration = Duration::from_secs(180);

/// The kubeconfig of the real cluster, or None (and a printed reason) when
/// the suite is not enabled.
pub fn real_cluster() -> Option<PathBuf> {
    if std::env::var("CHARTBROKER_REAL_CLUSTER").as_deref() != Ok("1") {
        println!("{SKIP}");
        return None;
    }
    let path = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .filter(|p| !p.as_os_str().is_empty());
    match path {
        Some(p) if p.is_file() && std::fs::File::open(&p).is_ok() => Some(p),
        other => {
            println!("{SKIP} (KUBECONFIG {other:?} is not a readable file)");
            None
        }
    }
}

/// Where the flows run: the admin kubeconfig (set-up and checks) and the
/// broker's (on kind/k3d the same).
pub struct Target {
    pub admin: PathBuf,
    pub broker: PathBuf,
    /// The release identity helm runs as.
    pub identity: chartbroker::cluster::IdentityNames,
}

/// Polls until `name` is gone (404); panics after [`GONE_WITHIN`].
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let start = std::time::Instant::now();
    loop {
        match api.get_opt(name).await.expect("GET works") {
            None => return,
            Some(_) if start.elapsed() > GONE_WITHIN => {
                panic!("{name} still exists after {GONE_WITHIN:?}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Runs `body` in a fresh namespace (created with kube-rs) and deletes the
/// namespace afterwards, waiting until it is gone, whatever `body` did.
pub async fn in_test_namespace<F, Fut>(kubeconfig: &Path, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let client = client(kubeconfig).await;
    let namespaces: Api<Namespace> = Api::all(client);
    let name = format!("cb-rt-{}", suffix());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"chartbroker.io/test": "real-cluster"}},
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("creating the test namespace");
    let outcome = std::panic::AssertUnwindSafe(body(name.clone()))
        .catch_unwind()
        .await;
    match namespaces.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("deleting the test namespace {name}: {e}"),
    }
    wait_gone(&namespaces, &name).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A broker with the helm engine over `tests/fixtures/catalog-helm`.
pub async fn broker(target: &Target) -> TestBroker {
    let kubeconfig = &target.broker;
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.engine = Engine::Helm;
    // These requests carry no originating identity; authorization has its own suites.
    cfg.subject_access_review = false;
    cfg.catalog_dir = fixtures().join("catalog-helm");
    cfg.kubeconfig = Some(kubeconfig.to_path_buf());
    cfg.release_identity = target.identity.clone();
    cfg.helm_timeout = Duration::from_secs(120);
    cfg.operation_timeout = Duration::from_secs(300);
    TestBroker::with_config(data, cfg).await
}

/// Sends an OSB request that must answer 202, and waits for its operation;
/// `binding` selects the binding's `last_operation`.
pub async fn run(
    b: &TestBroker,
    method: Method,
    uri: &str,
    body: Option<Value>,
    instance: &str,
    binding: Option<&str>,
) -> Resp {
    let r = b.call(method, uri, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{uri}: {}", r.text);
    let op = r.json["operation"].as_str().expect("an operation");
    match binding {
        None => b.wait_instance(instance, op).await,
        Some(bid) => b.wait_binding(instance, bid, op).await,
    }
}

/// [`run`]'s provision of instance `id`, which must end `succeeded`.
pub async fn provisioned(b: &TestBroker, id: &str, body: Value) {
    let uri = format!("/v2/service_instances/{id}?accepts_incomplete=true");
    assert_succeeded(&run(b, Method::PUT, &uri, Some(body), id, None).await);
}

/// [`run`]'s deprovision of instance `id` on `plan`, which must end
/// `succeeded`.
pub async fn deprovisioned(b: &TestBroker, id: &str, plan: &str) {
    let q = format!("service_id={SVC}&plan_id={plan}&accepts_incomplete=true");
    let uri = format!("/v2/service_instances/{id}?{q}");
    assert_delete_done(&run(b, Method::DELETE, &uri, None, id, None).await);
}

#[track_caller]
pub fn assert_succeeded(r: &Resp) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

/// A Secret's data as strings.
pub fn secret_strings(s: &Secret) -> std::collections::BTreeMap<String, String> {
    s.data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

/// Provision → bind → update → unbind → deprovision in namespace `ns`.
pub async fn core_flows(target: &Target, ns: String) {
    let client = client(&target.admin).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client, &ns);
    let b = broker(target).await;
    let id = format!("rt-{}", suffix());
    let release = format!("cb-{id}");
    let bid = format!("rtb-{}", suffix());
    let release_records = ListParams::default().labels(&format!("owner=helm,name={release}"));

    // Provision: the chart's objects and helm's release record.
    let body = kube_provision(SVC, "plan-ctx", &ns, json!({"message": "one"}));
    provisioned(&b, &id, body).await;
    let cm = configmaps
        .get(&release)
        .await
        .expect("the release's ConfigMap");
    assert_eq!(cm.data.unwrap()["message"], "one");
    let records = secrets.list(&release_records).await.unwrap().items;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].metadata.labels.as_ref().unwrap()["status"],
        "deployed"
    );
    let chart_password = secret_strings(&secrets.get(&release).await.unwrap())["password"].clone();
    assert_eq!(chart_password.len(), 24);

    // Bind: a Secret with the credentials in the instance's namespace.
    let binding_uri = format!("/v2/service_instances/{id}/service_bindings/{bid}");
    let r = run(
        &b,
        Method::PUT,
        &format!("{binding_uri}?accepts_incomplete=true"),
        Some(json!({
            "service_id": SVC,
            "plan_id": "plan-ctx",
            "bind_resource": {"app_guid": "app-1"},
            "parameters": {"role": "writer"},
        })),
        &id,
        Some(&bid),
    )
    .await;
    assert_succeeded(&r);
    let secret_name = format!("cb-bind-{bid}");
    let s = secrets.get(&secret_name).await.expect("the binding Secret");
    let labels = s.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "chartbroker");
    assert_eq!(
        s.metadata.annotations.clone().unwrap_or_default()["chartbroker.io/binding-id"],
        bid
    );
    let data = secret_strings(&s);
    assert_eq!(
        data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["host", "password", "port", "role"]
    );
    assert_eq!(data["host"], format!("{release}.{ns}.svc.cluster.local"));
    assert_eq!(data["port"], "5432");
    assert_eq!(data["role"], "writer");
    assert_eq!(data["password"], chart_password);
    let r = b.get(&binding_uri).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["credentials"]["password"], chart_password.as_str());

    // Update: a helm upgrade with the same generated password.
    let r = run(
        &b,
        Method::PATCH,
        &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
        Some(json!({"service_id": SVC, "parameters": {"message": "two"}})),
        &id,
        None,
    )
    .await;
    assert_succeeded(&r);
    let cm = configmaps.get(&release).await.unwrap();
    assert_eq!(cm.data.unwrap()["message"], "two");
    assert_eq!(
        secret_strings(&secrets.get(&release).await.unwrap())["password"],
        chart_password
    );
    let mut revisions: Vec<String> = secrets
        .list(&release_records)
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.metadata.labels.as_ref().unwrap()["version"].clone())
        .collect();
    revisions.sort();
    assert_eq!(revisions, ["1", "2"]);

    // Unbind: the Secret goes.
    let r = run(
        &b,
        Method::DELETE,
        &format!("{binding_uri}?service_id={SVC}&plan_id=plan-ctx&accepts_incomplete=true"),
        None,
        &id,
        Some(&bid),
    )
    .await;
    assert_delete_done(&r);
    wait_gone(&secrets, &secret_name).await;

    // Deprovision: the release's objects and records go.
    deprovisioned(&b, &id, "plan-ctx").await;
    wait_gone(&configmaps, &release).await;
    wait_gone(&secrets, &release).await;
    let start = std::time::Instant::now();
    while !secrets
        .list(&release_records)
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(start.elapsed() < GONE_WITHIN, "release records left");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A plan with `namespace: instance`: the broker creates the instance's
/// namespace (labelled as its own) and deletes it on deprovision.
pub async fn own_namespace_flow(target: &Target) {
    let client = client(&target.admin).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let b = broker(target).await;
    let id = format!("rtns-{}", suffix());
    let release = format!("cb-{id}");
    let outcome = std::panic::AssertUnwindSafe(async {
        let ignored = "ignored-for-this-plan";
        let body = kube_provision(SVC, "plan-own-ns", ignored, json!({"message": "own"}));
        provisioned(&b, &id, body).await;
        let ns = namespaces
            .get(&release)
            .await
            .expect("the instance's namespace");
        assert_eq!(
            ns.metadata.labels.unwrap_or_default()["app.kubernetes.io/managed-by"],
            "chartbroker"
        );
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &release);
        let cm = configmaps
            .get(&release)
            .await
            .expect("the release's ConfigMap");
        assert_eq!(cm.data.unwrap()["message"], "own");

        deprovisioned(&b, &id, "plan-own-ns").await;
        // Termination is asynchronous: Terminating first, then gone.
        wait_gone(&namespaces, &release).await;
    })
    .catch_unwind()
    .await;
    if let Err(panic) = outcome {
        // Don't leave the instance's namespace behind on a failed run.
        let _ = namespaces.delete(&release, &DeleteParams::default()).await;
        std::panic::resume_unwind(panic);
    }
}

/// kind/k3d: the kubeconfig's user does both; helm runs as the release
/// identity under the chart's default names (its ClusterRoles applied
/// here, its ServiceAccount per namespace by [`release_identity_in`]).
pub fn same_user(kubeconfig: PathBuf) -> Target {
    common::cluster::apply_release_identity(&kubeconfig, "chartbroker-system", &[]);
    Target {
        admin: kubeconfig.clone(),
        broker: kubeconfig,
        identity: Default::default(),
    }
}

pub fn release_identity_in(target: &Target, ns: &str) {
    common::cluster::apply_release_identity(&target.admin, "chartbroker-system", &[ns]);
}
