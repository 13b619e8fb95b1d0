//! The helm engine when things go wrong, and its plan options, with the
//! real helm 4 against the real API server (tests/testenv), the broker
//! running as the deploy/ ServiceAccount with deploy/'s RBAC.
//!
//! Faults: a helm that crashes, hangs or disappears, and a release a killed
//! helm left `pending-*`. Every failed operation must end `failed` with a
//! description that says why, and a repeat must work once the fault is gone.
//! One fault a real API server can't be made to produce on demand, a 500
//! on a chosen write, runs against the in-process fake (`tests/fake-kube`):
//! `api_server_errors_fail_the_install_with_the_servers_message`.
//!
//! Plan options (catalog `tests/fixtures/catalog-helm/`): the policy check
//! runs before anything is written, one namespace per instance (created,
//! labelled, deleted, and never a namespace the broker did not create),
//! `delete_pvcs`, and where binding Secrets may go.
//!
//! "Nothing was written" is a watch on the API server
//! ([`Cluster::writes_during`]), so even an object created and deleted
//! again would show. Faulty helms are shell wrappers around the real
//! binary, each in its own directory whose name is a unique marker
//! (`pgrep -f` finds leftovers).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::cluster::{BrokerIdentity, Cluster, kubectl, release_records, suffix};
use common::*;
use fake_kube::FakeKube;
use serde_json::{Value, json};

use chartbroker::runtime::{Engine, ServeConfig};

const SVC: &str = "svc-helm";

// === set-up ===

/// One test's part of the control plane: the broker's identity, a
/// namespace `apps` (the platform's namespace in every request) and
/// `shared` (allowed for bindings by `plan-ctx`), both granted to the
/// broker, `other` (allowed by no plan, not granted), and the catalog with
/// `shared`'s real name in it.
struct Env {
    k: Cluster,
    id: BrokerIdentity,
    apps: String,
    shared: String,
    other: String,
    catalog: tempfile::TempDir,
}

/// `namespaces` adds deploy/'s optional namespace RBAC and the cluster-wide
/// release binding, which `namespace: instance` plans need.
async fn env(namespaces: bool) -> Env {
    let k = Cluster::admin().await;
    let id = k.install_broker(namespaces).await;
    let apps = k.namespace("apps").await;
    let shared = k.namespace("shared").await;
    let other = k.namespace("other").await;
    k.grant_target(&id, &apps);
    k.grant_target(&id, &shared);
    let catalog = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string(fixtures().join("catalog-helm/helm.yaml")).unwrap();
    let yaml = yaml.replace(
        "binding_namespaces: [shared]",
        &format!("binding_namespaces: [{shared}]"),
    );
    assert!(
        yaml.contains(&shared),
        "plan-ctx names the shared namespace"
    );
    std::fs::write(catalog.path().join("helm.yaml"), yaml).unwrap();
    Env {
        k,
        id,
        apps,
        shared,
        other,
        catalog,
    }
}

/// A broker with the helm engine over the test's catalog, running as the
/// deploy/ ServiceAccount.
async fn broker(e: &Env, tweak: impl FnOnce(&Path, &mut ServeConfig)) -> TestBroker {
    let catalog = e.catalog.path().to_path_buf();
    TestBroker::on_cluster(&e.id, |data, cfg| {
        // These requests carry no originating identity; authorization has its own suites.
        cfg.subject_access_review = false;
        cfg.catalog_dir = catalog;
        tweak(data, cfg);
    })
    .await
}

/// A helm wrapper script, alone in a directory named with a unique marker.
/// It runs the real helm for every subcommand but `upgrade`, where it runs
/// `on_upgrade` instead, until [`Wrapper::use_real_helm`] creates the flag
/// file next to it.
struct Wrapper {
    dir: PathBuf,
    path: PathBuf,
    marker: String,
}

impl Wrapper {
    fn new(parent: &Path, kind: &str, on_upgrade: &str) -> Wrapper {
        use std::os::unix::fs::PermissionsExt;
        let marker = format!("cb-fault-{kind}-{}", uuid::Uuid::new_v4().simple());
        let dir = parent.join(&marker);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("helm");
        let script = format!(
            "#!/bin/sh\n\
             if [ ! -e '{flag}' ] && [ \"$1\" = upgrade ]; then\n\
             {on_upgrade}\n\
             fi\n\
             exec '{helm}' \"$@\"\n",
            flag = dir.join("real").display(),
            helm = helm_bin().display(),
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Wrapper { dir, path, marker }
    }

    /// From now on the wrapper is the real helm.
    fn use_real_helm(&self) {
        std::fs::write(self.dir.join("real"), b"").unwrap();
    }

    /// Processes whose command line holds this wrapper's marker.
    fn processes(&self) -> Vec<String> {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &self.marker])
            .output()
            .expect("pgrep runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

// === OSB helpers ===

fn provision_req(plan: &str, ns: &str, params: Value) -> Value {
    json!({
        "service_id": SVC,
        "plan_id": plan,
        "organization_guid": "org",
        "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": params,
    })
}

/// Starts an asynchronous provision in `ns`; returns its operation.
async fn start_provision(b: &TestBroker, ns: &str, id: &str, plan: &str, params: Value) -> String {
    let r = b
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(provision_req(plan, ns, params)),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json["operation"].as_str().unwrap().to_string()
}

/// Provisions and waits; returns the final `last_operation` response.
async fn provision(b: &TestBroker, ns: &str, id: &str, plan: &str, params: Value) -> Resp {
    let op = start_provision(b, ns, id, plan, params).await;
    let r = b.wait_instance(id, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r
}
#[track_caller]
fn assert_succeeded(r: &Resp) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

/// Asserts a failed operation whose description contains `needle`;
/// returns the description.
#[track_caller]
fn assert_failed(r: &Resp, needle: &str) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = r.json["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(d.contains(needle), "expected {needle:?} in {d:?}");
    d
}

/// Deprovisions and waits; returns the final `last_operation` response
/// (410 Gone once the instance is gone).
async fn deprovision(b: &TestBroker, id: &str, plan: &str) -> Resp {
    let r = b
        .call(
            Method::DELETE,
            &format!(
                "/v2/service_instances/{id}?service_id={SVC}&plan_id={plan}&accepts_incomplete=true"
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    b.wait_instance(id, r.json["operation"].as_str().unwrap())
        .await
}

/// The latest `last_operation` of an instance, whatever the operation.
async fn last_operation(b: &TestBroker, id: &str) -> Resp {
    b.call(
        Method::GET,
        &format!("/v2/service_instances/{id}/last_operation"),
        None,
    )
    .await
}

fn bind_req(plan: &str, params: Value) -> Value {
    json!({
        "service_id": SVC,
        "plan_id": plan,
        "bind_resource": {"app_guid": "app-1"},
        "parameters": params,
    })
}

/// Sends an asynchronous bind; returns the immediate response.
async fn start_bind(b: &TestBroker, id: &str, bid: &str, plan: &str, params: Value) -> Resp {
    b.call(
        Method::PUT,
        &format!("/v2/service_instances/{id}/service_bindings/{bid}?accepts_incomplete=true"),
        Some(bind_req(plan, params)),
    )
    .await
}

/// Binds and waits; returns the final binding `last_operation` response.
async fn bind(b: &TestBroker, id: &str, bid: &str, plan: &str, params: Value) -> Resp {
    let r = start_bind(b, id, bid, plan, params).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    b.wait_binding(id, bid, r.json["operation"].as_str().unwrap())
        .await
}

/// Unbinds and waits; returns the final response (410 once gone).
async fn unbind(b: &TestBroker, id: &str, bid: &str, plan: &str) -> Resp {
    let r = b
        .call(
            Method::DELETE,
            &format!(
                "/v2/service_instances/{id}/service_bindings/{bid}?service_id={SVC}&plan_id={plan}&accepts_incomplete=true"
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    b.wait_binding(id, bid, r.json["operation"].as_str().unwrap())
        .await
}

// === cluster helpers ===

/// The `status` label of each release record, by revision.
async fn record_statuses(k: &Cluster, ns: &str, release: &str) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = release_records(k, ns, release)
        .await
        .iter()
        .map(|s| {
            let l = &s["metadata"]["labels"];
            (
                l["version"].as_str().unwrap().parse().unwrap(),
                l["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn configmap(k: &Cluster, ns: &str, name: &str) -> Option<Value> {
    k.get(&format!("/api/v1/namespaces/{ns}/configmaps/{name}"))
        .await
}

/// Writes a helm release record the way a helm killed mid-operation leaves
/// it: revision `version` of `release`, in state `status`, about to apply
/// `manifest`. Helm stores `base64(gzip(release JSON))` in `data.release` and
/// reads plain base64 JSON too (records written before compression), which
/// is what this writes; the API adds its own base64 on top.
async fn seed_release_record(
    k: &Cluster,
    ns: &str,
    release: &str,
    version: u64,
    status: &str,
    manifest: &str,
) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let record = json!({
        "name": release,
        "namespace": ns,
        "version": version,
        "info": {
            "first_deployed": "2025-01-01T00:00:00Z",
            "last_deployed": "2025-01-01T00:00:00Z",
            "deleted": "",
            "description": "operation underway when helm was killed",
            "status": status,
        },
        "chart": {
            "metadata": {"apiVersion": "v2", "name": "tiny", "version": "0.1.0"},
            "templates": [],
            "values": {},
        },
        "config": {},
        "manifest": manifest,
    });
    let inner = b64.encode(serde_json::to_vec(&record).unwrap());
    k.create(
        &format!("/api/v1/namespaces/{ns}/secrets"),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": format!("sh.helm.release.v1.{release}.v{version}"),
                "labels": {
                    "name": release,
                    "owner": "helm",
                    "status": status,
                    "version": version.to_string(),
                },
            },
            "type": "helm.sh/release.v1",
            "data": {"release": b64.encode(inner)},
        }),
    )
    .await;
}

/// The release's ConfigMap half-applied by a helm that was then killed:
/// written by helm's field manager, with helm's ownership marks.
fn half_apply_configmap(k: &Cluster, ns: &str, release: &str) {
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {release}\n  namespace: {ns}\n  \
         labels:\n    app.kubernetes.io/managed-by: Helm\n  annotations:\n    \
         meta.helm.sh/release-name: {release}\n    meta.helm.sh/release-namespace: {ns}\n\
         data:\n  message: half-applied\n"
    );
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager=helm",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &yaml,
    );
    assert!(ok, "{out}");
}

/// Asserts a namespace exists and nobody asked to delete it.
#[track_caller]
fn assert_not_deleted(obj: &Option<Value>, what: &str) {
    let obj = obj.as_ref().unwrap_or_else(|| panic!("{what} exists"));
    assert!(
        obj["metadata"]["deletionTimestamp"].is_null(),
        "{what} is being deleted: {obj:#}"
    );
}

/// Gone, or deleted and held only by a finalizer (the PVC protection
/// finalizer stays: no controller here removes it).
#[track_caller]
fn assert_deleted(obj: &Option<Value>, what: &str) {
    if let Some(o) = obj {
        assert!(
            o["metadata"]["deletionTimestamp"].is_string(),
            "{what} was not deleted: {o:#}"
        );
    }
}

// === helm faults ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_helm_fails_the_operation_and_a_repeat_succeeds() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let mut wrapper = None;
    let b = broker(&e, |data, cfg| {
        let w = Wrapper::new(data, "crash", "  echo 'about to crash' >&2\n  kill -9 $$");
        cfg.helm = w.path.clone();
        wrapper = Some(w);
    })
    .await;
    let wrapper = wrapper.unwrap();

    let first = start_provision(&b, apps, "crash-1", "plan-ctx", json!({"message": "hi"})).await;
    let r = b.wait_instance("crash-1", &first).await;
    let d = assert_failed(&r, "helm upgrade crashed");
    assert!(d.contains("SIGKILL") || d.contains("signal: 9"), "{d}");
    assert!(d.contains("about to crash"), "helm's stderr is kept: {d}");
    // Nothing stays in progress, and nothing reached the cluster.
    let r = last_operation(&b, "crash-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    assert!(configmap(k, apps, "cb-crash-1").await.is_none());
    assert!(release_records(k, apps, "cb-crash-1").await.is_empty());

    // The same PUT again, with a working helm: a new operation that succeeds
    // (a repeat of an operation still in progress would get the same id).
    wrapper.use_real_helm();
    let second = start_provision(&b, apps, "crash-1", "plan-ctx", json!({"message": "hi"})).await;
    assert_ne!(first, second, "the crashed operation is over");
    assert_succeeded(&b.wait_instance("crash-1", &second).await);
    assert_eq!(
        configmap(k, apps, "cb-crash-1").await.expect("installed")["data"]["message"],
        "hi"
    );
    assert_eq!(
        record_statuses(k, apps, "cb-crash-1").await,
        vec![(1, "deployed".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_helm_is_stopped_at_the_timeout_and_killed() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let mut wrapper = None;
    let b = broker(&e, |data, cfg| {
        // `read` is a shell builtin: the wrapper itself blocks (opening a
        // FIFO nobody writes), as a hung helm would, with no child process.
        let w = Wrapper::new(
            data,
            "hang",
            &format!(
                "  mkfifo '{fifo}' 2>/dev/null\n  read never < '{fifo}'\n  exit 3",
                fifo = data.join("fifo").display()
            ),
        );
        cfg.helm = w.path.clone();
        cfg.helm_timeout = Duration::from_secs(5);
        wrapper = Some(w);
    })
    .await;
    let wrapper = wrapper.unwrap();

    let op = start_provision(&b, apps, "hang-1", "plan-ctx", json!({})).await;
    // The hung process shows up under its marker (so the check below means
    // something)...
    let mut seen = false;
    for _ in 0..200 {
        if !wrapper.processes().is_empty() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the hung helm never showed up as {}", wrapper.marker);
    let r = b.wait_instance("hang-1", &op).await;
    let d = assert_failed(&r, "did not finish");
    assert!(d.contains("helm upgrade"), "{d}");
    // ...and is gone once the operation failed.
    let mut left = wrapper.processes();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = wrapper.processes();
    }
    assert!(left.is_empty(), "helm left running: pids {left:?}");
    assert!(configmap(k, apps, "cb-hang-1").await.is_none());
    assert!(release_records(k, apps, "cb-hang-1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_missing_after_start_fails_the_operation() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let mut wrapper = None;
    let b = broker(&e, |data, cfg| {
        let w = Wrapper::new(data, "gone", "  :");
        cfg.helm = w.path.clone();
        wrapper = Some(w);
    })
    .await;
    let wrapper = wrapper.unwrap();
    std::fs::remove_file(&wrapper.path).unwrap();

    let (r, writes) = k
        .writes_during(
            &format!("/api/v1/namespaces/{apps}/secrets"),
            provision(&b, apps, "gone-1", "plan-ctx", json!({})),
        )
        .await;
    let d = assert_failed(&r, "could not run helm");
    assert!(
        d.contains(&wrapper.path.display().to_string()),
        "names the binary: {d}"
    );
    assert!(writes.is_empty(), "{writes:?}");
    assert!(configmap(k, apps, "cb-gone-1").await.is_none());
}

/// A 500 on a chosen write: only the fake API can be told to answer that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_errors_fail_the_install_with_the_servers_message() {
    let k = FakeKube::start().await;
    k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    k.put(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "chartbroker-release", "namespace": "apps"}}));
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.engine = Engine::Helm;
    // These requests carry no originating identity; authorization has its own suites.
    cfg.subject_access_review = false;
    cfg.catalog_dir = fixtures().join("catalog-helm");
    cfg.kubeconfig = Some(k.kubeconfig(data.path()));
    let b = TestBroker::with_config(data, cfg).await;
    let configmap = |name: &str| k.get("v1", "configmaps", Some("apps"), name);
    let records = |release: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = k
            .list("secrets", Some("apps"))
            .into_iter()
            .filter(|s| {
                s["metadata"]["labels"]["owner"] == "helm"
                    && s["metadata"]["labels"]["name"] == release
            })
            .map(|s| {
                let l = &s["metadata"]["labels"];
                (
                    l["version"].as_str().unwrap().to_string(),
                    l["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };

    // 1. Helm's own release record can't be written: nothing is installed.
    k.fail_next("POST", "/api/v1/namespaces/apps/secrets", 500);
    let r = provision(&b, "apps", "api-1", "plan-ctx", json!({"message": "one"})).await;
    assert_failed(&r, "injected fault: POST /api/v1/namespaces/apps/secrets");
    assert!(configmap("cb-api-1").is_none());
    assert!(records("cb-api-1").is_empty());
    let r = provision(&b, "apps", "api-1", "plan-ctx", json!({"message": "one"})).await;
    assert_succeeded(&r);
    assert_eq!(configmap("cb-api-1").unwrap()["data"]["message"], "one");

    // 2. An object of the chart is refused: helm records a failed release,
    //    which the repeated provision removes before installing again.
    k.fail_next("PATCH", "/api/v1/namespaces/apps/configmaps/cb-api-2", 500);
    let r = provision(&b, "apps", "api-2", "plan-ctx", json!({"message": "two"})).await;
    assert_failed(
        &r,
        "injected fault: PATCH /api/v1/namespaces/apps/configmaps/cb-api-2",
    );
    assert!(configmap("cb-api-2").is_none());
    assert_eq!(records("cb-api-2"), vec![("1".into(), "failed".into())]);
    let r = provision(&b, "apps", "api-2", "plan-ctx", json!({"message": "two"})).await;
    assert_succeeded(&r);
    assert_eq!(configmap("cb-api-2").unwrap()["data"]["message"], "two");
    assert_eq!(records("cb-api-2"), vec![("1".into(), "deployed".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_left_pending_install_is_repaired() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    // A helm killed during the first install: its record says
    // pending-install, and part of the manifest is applied.
    let chart = fixtures().join("charts/tiny");
    let out = k.helm(&["template", "cb-pend-1", chart.to_str().unwrap(), "-n", apps]);
    assert!(out.status.success(), "{out:?}");
    let manifest = String::from_utf8(out.stdout).unwrap();
    assert!(manifest.contains("kind: ConfigMap"), "{manifest}");
    seed_release_record(k, apps, "cb-pend-1", 1, "pending-install", &manifest).await;
    half_apply_configmap(k, apps, "cb-pend-1");

    // The seeded record is what helm itself sees, and plain helm refuses to
    // go on from there.
    let out = k.helm(&["status", "cb-pend-1", "-n", apps, "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "pending-install");
    let out = k.helm(&[
        "upgrade",
        "--install",
        "cb-pend-1",
        chart.to_str().unwrap(),
        "-n",
        apps,
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another operation"),
        "{out:?}"
    );

    let r = provision(&b, apps, "pend-1", "plan-ctx", json!({"message": "fixed"})).await;
    assert_succeeded(&r);
    assert_eq!(
        configmap(k, apps, "cb-pend-1").await.unwrap()["data"]["message"],
        "fixed"
    );
    assert_eq!(
        record_statuses(k, apps, "cb-pend-1").await,
        vec![(1, "deployed".to_string())],
        "the pending record was removed and a fresh install recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_left_pending_upgrade_is_rolled_back_then_upgraded() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    assert_succeeded(&provision(&b, apps, "pend-2", "plan-ctx", json!({"message": "v1"})).await);
    // A helm killed during an upgrade leaves the next revision pending (with
    // the manifest it was applying: here the same chart) and part of it
    // applied.
    let out = k.helm(&["get", "manifest", "cb-pend-2", "-n", apps]);
    assert!(out.status.success(), "{out:?}");
    let manifest = String::from_utf8(out.stdout).unwrap();
    seed_release_record(k, apps, "cb-pend-2", 2, "pending-upgrade", &manifest).await;
    half_apply_configmap(k, apps, "cb-pend-2");
    let out = k.helm(&["status", "cb-pend-2", "-n", apps, "-o", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "pending-upgrade", "{out:?}");

    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/pend-2?accepts_incomplete=true",
            Some(json!({"service_id": SVC, "parameters": {"message": "v2"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = b
        .wait_instance("pend-2", r.json["operation"].as_str().unwrap())
        .await;
    assert_succeeded(&r);
    assert_eq!(
        configmap(k, apps, "cb-pend-2").await.unwrap()["data"]["message"],
        "v2"
    );
    // The engine rolled back to revision 1 first (revision 3), then
    // upgraded (revision 4). Helm's rollback leaves the interrupted
    // revision's record as it was; only the latest revision counts.
    let statuses = record_statuses(k, apps, "cb-pend-2").await;
    assert_eq!(
        statuses.last(),
        Some(&(4, "deployed".to_string())),
        "{statuses:?}"
    );
    let history = k.helm_history(apps, "cb-pend-2");
    let rev3 = history
        .iter()
        .find(|h| h["revision"] == 3)
        .expect("revision 3");
    assert_eq!(rev3["description"], "Rollback to 1", "{history:?}");
    let out = k.helm(&["status", "cb-pend-2", "-n", apps, "-o", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{out:?}");
    assert_eq!(status["version"], 4, "{out:?}");
}

// === policy ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_chart_is_refused_before_any_write_to_the_cluster() {
    let e = env(true).await;
    let k = &e.k;
    let b = broker(&e, |_, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-helm/hostile");
        cfg.charts_dir = fixtures().join("hostile-charts");
    })
    .await;
    // The plan asks for a namespace of its own: a policy check that ran too
    // late would show as that Namespace being created.
    let id = format!("evil-{}", suffix());
    let own_ns = format!("cb-{id}");
    let request = async {
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                Some(json!({
                    "service_id": "svc-hostile",
                    "plan_id": "plan-privileged",
                    "organization_guid": "org",
                    "space_guid": "space",
                    "context": {"platform": "kubernetes", "namespace": e.apps},
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        b.wait_instance(&id, r.json["operation"].as_str().unwrap())
            .await
    };
    // Nothing can be written in a namespace that was never created; the
    // platform's namespace is watched too.
    let secrets = format!("/api/v1/namespaces/{}/secrets", e.apps);
    let ((r, secret_writes), namespace_writes) = k
        .writes_during("/api/v1/namespaces", k.writes_during(&secrets, request))
        .await;
    let d = assert_failed(&r, "policy rejected the chart: ");
    assert!(
        d.contains(&format!(
            "Deployment/{own_ns}-web: container \"app\" is privileged"
        )),
        "{d}"
    );
    assert!(d.contains("(rule: privileged-container)"), "{d}");
    assert!(secret_writes.is_empty(), "{secret_writes:?}");
    let ours: Vec<&String> = namespace_writes
        .iter()
        .filter(|w| w.ends_with(&format!(" {own_ns}")))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
    assert!(
        k.get(&format!("/api/v1/namespaces/{own_ns}"))
            .await
            .is_none()
    );
}

// === namespace per instance ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_per_instance_is_created_labelled_and_deleted() {
    let e = env(true).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    let id = format!("ns-{}", suffix());
    let own = format!("cb-{id}");

    let r = provision(&b, apps, &id, "plan-own-ns", json!({"message": "own"})).await;
    assert_succeeded(&r);
    let ns = k
        .get(&format!("/api/v1/namespaces/{own}"))
        .await
        .expect("the instance's namespace exists");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"], "chartbroker",
        "{ns}"
    );
    assert_eq!(
        ns["metadata"]["annotations"]["chartbroker.io/instance-id"], id,
        "{ns}"
    );
    assert_eq!(
        configmap(k, &own, &own)
            .await
            .expect("release in its namespace")["data"]["message"],
        "own"
    );
    assert!(configmap(k, apps, &own).await.is_none());
    assert_eq!(release_records(k, &own, &own).await.len(), 1);

    // The binding Secret goes to the instance's namespace by default.
    assert_succeeded(&bind(&b, &id, "nsb-1", "plan-own-ns", json!({})).await);
    assert!(
        k.get(&format!("/api/v1/namespaces/{own}/secrets/cb-bind-nsb-1"))
            .await
            .is_some()
    );
    assert!(
        k.get(&format!("/api/v1/namespaces/{apps}/secrets/cb-bind-nsb-1"))
            .await
            .is_none()
    );

    let r = deprovision(&b, &id, "plan-own-ns").await;
    assert_delete_done(&r);
    // Deleted by the broker (Terminating, or already gone), then emptied
    // and removed by the namespace controller.
    assert_deleted(
        &k.get(&format!("/api/v1/namespaces/{own}")).await,
        "the instance's namespace",
    );
    k.wait_gone(
        &format!("/api/v1/namespaces/{own}"),
        Duration::from_secs(120),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_the_broker_did_not_create_is_never_deleted() {
    let e = env(true).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    // Someone else's namespace, with the name an instance will get.
    let id = format!("ns2-{}", suffix());
    let theirs = format!("cb-{id}");
    k.create(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": theirs, "labels": {"team": "someone-else"}}}),
    )
    .await;
    k.create(
        &format!("/api/v1/namespaces/{theirs}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "keep-me"}, "data": {"precious": "yes"}}),
    )
    .await;
    let b = broker(&e, |_, _| {}).await;

    // Refused: a `namespace: instance` plan installs only into a namespace
    // the broker created for that instance.
    let r = provision(&b, apps, &id, "plan-own-ns", json!({"message": "guest"})).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains(&theirs) && d.contains("already exists"), "{d}");
    assert!(configmap(k, &theirs, &theirs).await.is_none());
    assert!(release_records(k, &theirs, &theirs).await.is_empty());
    let ns = k
        .get(&format!("/api/v1/namespaces/{theirs}"))
        .await
        .unwrap();
    assert_eq!(ns["metadata"]["labels"]["team"], "someone-else", "{ns}");
    assert!(
        ns["metadata"]["labels"]
            .get("app.kubernetes.io/managed-by")
            .is_none(),
        "the broker did not take ownership: {ns}"
    );

    let r = deprovision(&b, &id, "plan-own-ns").await;
    assert_delete_done(&r);
    // A DELETE of a namespace can't be taken back: it would show as a
    // deletionTimestamp until the namespace is gone.
    assert_not_deleted(
        &k.get(&format!("/api/v1/namespaces/{theirs}")).await,
        "the namespace",
    );
    assert_eq!(
        configmap(k, &theirs, "keep-me")
            .await
            .expect("its objects stay")["data"]["precious"],
        "yes"
    );
}

// === delete_pvcs ===

fn pvc(name: &str, instance_label: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/instance": instance_label},
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_pvcs_removes_only_the_releases_claims() {
    let e = env(false).await;
    let (k, apps) = (&e.k, e.apps.as_str());
    let b = broker(&e, |_, _| {}).await;
    assert_succeeded(&provision(&b, apps, "pvc-1", "plan-pvc", json!({})).await);
    assert_succeeded(&provision(&b, apps, "pvc-2", "plan-ctx", json!({})).await);
    // What StatefulSets' volumeClaimTemplates leave behind.
    let pvcs = format!("/api/v1/namespaces/{apps}/persistentvolumeclaims");
    for (name, label) in [
        ("data-cb-pvc-1-0", "cb-pvc-1"),
        ("data-cb-pvc-2-0", "cb-pvc-2"),
        ("unrelated", "someone-else"),
    ] {
        k.create(&pvcs, pvc(name, label)).await;
    }
    let claim = |name: &str| {
        let path = format!("{pvcs}/{name}");
        async move { k.get(&path).await }
    };

    let r = deprovision(&b, "pvc-1", "plan-pvc").await;
    assert_delete_done(&r);
    assert_deleted(
        &claim("data-cb-pvc-1-0").await,
        "delete_pvcs: true deletes it",
    );
    assert_not_deleted(&claim("data-cb-pvc-2-0").await, "another release's claim");
    assert_not_deleted(&claim("unrelated").await, "an unrelated claim");

    let r = deprovision(&b, "pvc-2", "plan-ctx").await;
    assert_delete_done(&r);
    assert_not_deleted(
        &claim("data-cb-pvc-2-0").await,
        "delete_pvcs: false keeps the data",
    );
    assert_not_deleted(&claim("unrelated").await, "an unrelated claim");
    assert!(configmap(k, apps, "cb-pvc-2").await.is_none());
}

// === binding Secrets ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_secrets_never_take_over_and_stay_in_allowed_namespaces() {
    let e = env(false).await;
    let (k, apps, shared, other) = (&e.k, e.apps.as_str(), e.shared.as_str(), e.other.as_str());
    let b = broker(&e, |_, _| {}).await;
    assert_succeeded(&provision(&b, apps, "bs-1", "plan-ctx", json!({})).await);

    // An app's own Secret, and one another binding owns.
    let secrets = format!("/api/v1/namespaces/{apps}/secrets");
    k.create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "app-own", "labels": {"app": "mine"}},
               "data": {"token": "c2VjcmV0"}}),
    )
    .await;
    k.create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "taken",
                            "annotations": {"chartbroker.io/binding-id": "someone-else"}},
               "data": {"token": "dGFrZW4="}}),
    )
    .await;
    // As stored, resourceVersion and managedFields included: any write
    // would change them.
    let own = k.get(&format!("{secrets}/app-own")).await.unwrap();
    let foreign = k.get(&format!("{secrets}/taken")).await.unwrap();
    for (bid, name, original) in [("bs-own", "app-own", &own), ("bs-taken", "taken", &foreign)] {
        let r = bind(
            &b,
            "bs-1",
            bid,
            "plan-ctx",
            json!({"secret_name": name, "role": "reader"}),
        )
        .await;
        assert_failed(
            &r,
            &format!("Secret {apps}/{name} already exists and does not belong to this binding"),
        );
        assert_eq!(
            k.get(&format!("{secrets}/{name}")).await.as_ref(),
            Some(original),
            "the existing Secret is untouched"
        );
    }

    // The failed bind left nothing of its own: its unbind answers 410 Gone,
    // and the Secret it never owned is left alone.
    let r = b
        .call(
            Method::DELETE,
            &format!(
                "/v2/service_instances/bs-1/service_bindings/bs-own?service_id={SVC}&plan_id=plan-ctx&accepts_incomplete=true"
            ),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert_eq!(
        k.get(&format!("{secrets}/app-own")).await.as_ref(),
        Some(&own)
    );

    // A namespace the plan does not allow: refused before anything runs.
    let r = start_bind(
        &b,
        "bs-1",
        "bs-other",
        "plan-ctx",
        json!({"namespace": other}),
    )
    .await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains(&format!("\"{other}\" is not allowed")), "{d}");
    assert!(d.contains(&format!("{apps}, {shared}")), "{d}");
    assert!(
        k.list(&format!("/api/v1/namespaces/{other}/secrets"))
            .await
            .is_empty()
    );

    // An allowed one: the Secret lands there, and unbind removes it there.
    let r = bind(
        &b,
        "bs-1",
        "bs-shared",
        "plan-ctx",
        json!({"namespace": shared, "role": "writer"}),
    )
    .await;
    assert_succeeded(&r);
    let s = k
        .get(&format!(
            "/api/v1/namespaces/{shared}/secrets/cb-bind-bs-shared"
        ))
        .await
        .expect("binding Secret in the requested namespace");
    let mut keys: Vec<&str> = s["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["host", "password", "port", "role"], "{s}");
    assert_eq!(
        s["metadata"]["annotations"]["chartbroker.io/binding-id"],
        "bs-shared"
    );
    assert!(
        k.get(&format!("{secrets}/cb-bind-bs-shared"))
            .await
            .is_none()
    );
    let r = b
        .call(
            Method::GET,
            "/v2/service_instances/bs-1/service_bindings/bs-shared",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["credentials"]["role"], "writer");
    let r = unbind(&b, "bs-1", "bs-shared", "plan-ctx").await;
    assert_delete_done(&r);
    assert!(
        k.get(&format!(
            "/api/v1/namespaces/{shared}/secrets/cb-bind-bs-shared"
        ))
        .await
        .is_none()
    );

    // Deprovisioning with the failed binding still recorded leaves both
    // foreign Secrets alone too.
    let r = deprovision(&b, "bs-1", "plan-ctx").await;
    assert_delete_done(&r);
    assert_eq!(
        k.get(&format!("{secrets}/app-own")).await.as_ref(),
        Some(&own)
    );
    assert_eq!(
        k.get(&format!("{secrets}/taken")).await.as_ref(),
        Some(&foreign)
    );
    assert!(configmap(k, apps, "cb-bs-1").await.is_none());
}

/// The "nothing was written" checks above mean something only if the watch
/// sees writes, even an object that came and went before it looked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_watch_sees_an_object_that_came_and_went() {
    let k = Cluster::admin().await;
    let ns = k.namespace("watch").await;
    let secrets = format!("/api/v1/namespaces/{ns}/secrets");
    let ((), writes) = k
        .writes_during(&secrets, async {
            k.create(
                &secrets,
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "brief"}}),
            )
            .await;
            k.delete(&format!("{secrets}/brief")).await;
        })
        .await;
    assert_eq!(writes, ["ADDED brief", "DELETED brief"]);
}
