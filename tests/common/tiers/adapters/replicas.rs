//! Helpers of the tests in tests/adapters/replicas.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use common::process::Proc;
use common::*;
use fake_kube::{FakeKube, FakeKubeHandle};
use serde_json::json;

use chartbroker::runtime::{Engine, ServeConfig, StoreKind};

pub async fn cluster() -> FakeKubeHandle {
    let k = FakeKube::start().await;
    for ns in ["chartbroker-system", "apps"] {
        k.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
    }
    // The release identity helm runs as (the fake checks no token).
    k.put(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "chartbroker-release", "namespace": "apps"}}));
    k
}

/// A replica's configuration: helm engine, Kubernetes store, `key`.
pub fn replica_config(k: &FakeKubeHandle, data: &Path, key: &str) -> ServeConfig {
    let mut cfg = config(data);
    cfg.engine = Engine::Helm;
    // These requests carry no originating identity; authorization has its own suites.
    cfg.subject_access_review = false;
    cfg.store = StoreKind::Kube;
    cfg.store_key = Some(key.to_string());
    cfg.kubeconfig = Some(k.kubeconfig(data));
    cfg
}

pub async fn replica(k: &FakeKubeHandle, key: &str) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let cfg = replica_config(k, data.path(), key);
    TestBroker::with_config(data, cfg).await
}

/// A replica given `key` as its current key and `old` as an old one.
pub async fn rotated_replica(k: &FakeKubeHandle, key: &str, old: &str) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = replica_config(k, data.path(), key);
    let old_file = data.path().join("old.key");
    std::fs::write(&old_file, old).unwrap();
    cfg.store_old_key_files = vec![old_file];
    TestBroker::with_config(data, cfg).await
}

pub async fn provisioned(b: &TestBroker, id: &str) {
    let done = b
        .provision_done(id, provision_body("plan-small", json!({"message": id})))
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
}

/// Where a spawned replica gets its store key.
pub enum Key<'a> {
    /// `CHARTBROKER_STORE_KEY`.
    Env(&'a str),
    /// `--store-key-secret NAME` in the state namespace.
    Secret(&'a str),
}

pub fn spawn(data: &Path, kubeconfig: &Path, helm: &Path, key: Key, port: u16) -> Proc {
    Proc(
        command(data, kubeconfig, helm, key, port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chartbroker starts"),
    )
}

pub fn command(data: &Path, kubeconfig: &Path, helm: &Path, key: Key, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chartbroker"));
    let listen = format!("127.0.0.1:{port}");
    c.args(["serve", "--listen", &listen, "--engine", "helm"])
        .args(["--store", "kube", "--lease-seconds", "2"])
        .args(["--state-namespace", "chartbroker-system"])
        // These requests carry no originating identity.
        .args(["--subject-access-review", "false"])
        .arg("--catalog")
        .arg(fixtures().join("catalog"))
        .arg("--charts")
        .arg(fixtures().join("charts"))
        .args([OsStr::new("--data-dir"), data.as_os_str()])
        .args([OsStr::new("--helm"), helm.as_os_str()])
        .args([OsStr::new("--kubeconfig"), kubeconfig.as_os_str()])
        .env_remove("CHARTBROKER_STORE_KEY")
        .env("CHARTBROKER_USERNAME", USER)
        .env("CHARTBROKER_PASSWORD", PASS);
    match key {
        Key::Env(k) => c.env("CHARTBROKER_STORE_KEY", k),
        Key::Secret(name) => c.args(["--store-key-secret", name]),
    };
    c
}
