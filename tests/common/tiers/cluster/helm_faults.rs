//! Helpers of the tests in tests/cluster/helm_faults/
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use base64::Engine as _;
use common::cluster::{BrokerIdentity, Cluster, kubectl, release_records};
use common::*;
use serde_json::{Value, json};

use chartbroker::runtime::ServeConfig;

pub const SVC: &str = "svc-helm";

// === set-up ===

/// One test's part of the control plane: the broker's identity, a
/// namespace `apps` (the platform's namespace in every request) and
/// `shared` (allowed for bindings by `plan-ctx`), both granted to the
/// broker, `other` (allowed by no plan, not granted), and the catalog with
/// `shared`'s real name in it.
pub struct Env {
    pub k: Cluster,
    pub id: BrokerIdentity,
    pub apps: String,
    pub shared: String,
    pub other: String,
    pub catalog: tempfile::TempDir,
}

/// `namespaces` adds deploy/'s optional namespace RBAC and the cluster-wide
/// release binding, which `namespace: instance` plans need.
pub async fn env(namespaces: bool) -> Env {
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
pub async fn broker(e: &Env, tweak: impl FnOnce(&Path, &mut ServeConfig)) -> TestBroker {
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
/// A broker whose helm is a [`Wrapper`] of `kind` whose upgrade runs
/// `on_upgrade(data dir)`, and that wrapper.
pub async fn wrapped_broker(
    e: &Env,
    kind: &str,
    on_upgrade: impl FnOnce(&Path) -> String,
) -> (TestBroker, Wrapper) {
    let mut wrapper = None;
    let b = broker(e, |data, cfg| {
        let w = Wrapper::new(data, kind, &on_upgrade(data));
        cfg.helm = w.path.clone();
        wrapper = Some(w);
    })
    .await;
    (b, wrapper.unwrap())
}

pub struct Wrapper {
    pub dir: PathBuf,
    pub path: PathBuf,
    pub marker: String,
}

impl Wrapper {
    pub fn new(parent: &Path, kind: &str, on_upgrade: &str) -> Wrapper {
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
    pub fn use_real_helm(&self) {
        std::fs::write(self.dir.join("real"), b"").unwrap();
    }

    /// Processes whose command line holds this wrapper's marker.
    pub fn processes(&self) -> Vec<String> {
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

pub fn provision_req(plan: &str, ns: &str, params: Value) -> Value {
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
pub async fn start_provision(
    b: &TestBroker,
    ns: &str,
    id: &str,
    plan: &str,
    params: Value,
) -> String {
    let r = b
        .put(
            &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
            provision_req(plan, ns, params),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json["operation"].as_str().unwrap().to_string()
}

/// Provisions and waits; returns the final `last_operation` response.
pub async fn provision(b: &TestBroker, ns: &str, id: &str, plan: &str, params: Value) -> Resp {
    let op = start_provision(b, ns, id, plan, params).await;
    let r = b.wait_instance(id, &op).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r
}
#[track_caller]
pub fn assert_succeeded(r: &Resp) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
}

/// Asserts a failed operation whose description contains `needle`;
/// returns the description.
#[track_caller]
pub fn assert_failed(r: &Resp, needle: &str) -> String {
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
pub async fn deprovision(b: &TestBroker, id: &str, plan: &str) -> Resp {
    let r = start_delete(b, &format!("/v2/service_instances/{id}"), plan).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    b.wait_instance(id, r.json["operation"].as_str().unwrap())
        .await
}

/// The asynchronous `DELETE` of `path` (an instance's or a binding's) of
/// plan `plan`: the immediate answer.
pub async fn start_delete(b: &TestBroker, path: &str, plan: &str) -> Resp {
    b.del(&format!(
        "{path}?service_id={SVC}&plan_id={plan}&accepts_incomplete=true"
    ))
    .await
}

pub fn bind_req(plan: &str, params: Value) -> Value {
    json!({
        "service_id": SVC,
        "plan_id": plan,
        "bind_resource": {"app_guid": "app-1"},
        "parameters": params,
    })
}

/// Sends an asynchronous bind; returns the immediate response.
pub async fn start_bind(b: &TestBroker, id: &str, bid: &str, plan: &str, params: Value) -> Resp {
    b.put(
        &format!("/v2/service_instances/{id}/service_bindings/{bid}?accepts_incomplete=true"),
        bind_req(plan, params),
    )
    .await
}

/// Binds and waits; returns the final binding `last_operation` response.
pub async fn bind(b: &TestBroker, id: &str, bid: &str, plan: &str, params: Value) -> Resp {
    let r = start_bind(b, id, bid, plan, params).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    b.wait_binding(id, bid, r.json["operation"].as_str().unwrap())
        .await
}

/// Unbinds and waits; returns the final response (410 once gone).
pub async fn unbind(b: &TestBroker, id: &str, bid: &str, plan: &str) -> Resp {
    let path = format!("/v2/service_instances/{id}/service_bindings/{bid}");
    let r = start_delete(b, &path, plan).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    b.wait_binding(id, bid, r.json["operation"].as_str().unwrap())
        .await
}

// === cluster helpers ===

/// The `status` label of each release record, by revision.
pub async fn record_statuses(k: &Cluster, ns: &str, release: &str) -> Vec<(u64, String)> {
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

pub async fn configmap(k: &Cluster, ns: &str, name: &str) -> Option<Value> {
    k.get(&format!("/api/v1/namespaces/{ns}/configmaps/{name}"))
        .await
}

/// Writes a helm release record the way a helm killed mid-operation leaves
/// it: revision `version` of `release`, in state `status`, about to apply
/// `manifest`. Helm stores `base64(gzip(release JSON))` in `data.release` and
/// reads plain base64 JSON too (records written before compression), which
/// is what this writes; the API adds its own base64 on top.
pub async fn seed_release_record(
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
pub fn half_apply_configmap(k: &Cluster, ns: &str, release: &str) {
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
pub fn assert_not_deleted(obj: &Option<Value>, what: &str) {
    let obj = obj.as_ref().unwrap_or_else(|| panic!("{what} exists"));
    assert!(
        obj["metadata"]["deletionTimestamp"].is_null(),
        "{what} is being deleted: {obj:#}"
    );
}

/// Gone, or deleted and held only by a finalizer (the PVC protection
/// finalizer stays: no controller here removes it).
#[track_caller]
pub fn assert_deleted(obj: &Option<Value>, what: &str) {
    if let Some(o) = obj {
        assert!(
            o["metadata"]["deletionTimestamp"].is_string(),
            "{what} was not deleted: {o:#}"
        );
    }
}

// === delete_pvcs ===

pub fn pvc(name: &str, instance_label: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/instance": instance_label},
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
}
