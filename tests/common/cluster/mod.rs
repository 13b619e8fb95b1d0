//! A real Kubernetes control plane for the tests: `tests/testenv` (etcd,
//! kube-apiserver and kube-controller-manager built from the Kubernetes Go
//! modules by `scripts/install-tools.sh`), started once per test binary and
//! shared by its tests, each of which works in namespaces of its own.
//!
//! `CHARTBROKER_TESTENV_KUBECONFIG` names an admin kubeconfig of a control
//! plane started elsewhere (one for a whole run); otherwise the binary at
//! `CHARTBROKER_TESTENV` (or `.tools/bin/testenv`) is started here. Its stdin
//! is a pipe this process never closes, so it stops when the test binary
//! exits, however it exits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

mod identity;
mod kubectl;

pub use identity::*;
pub use kubectl::*;

use super::{TestBroker, config, helm_bin};
use chartbroker::runtime::{Engine, ServeConfig};

/// The shared control plane of this test binary.
pub struct ControlPlane {
    /// An admin (system:masters) kubeconfig.
    pub kubeconfig: PathBuf,
    // Held open for the life of the test binary: closing it stops testenv.
    _process: Option<Mutex<(Child, ChildStdin)>>,
}

/// The binary built by `scripts/install-tools.sh`.
pub fn testenv_bin() -> PathBuf {
    let how = "the test control plane is not built: run scripts/install-tools.sh \
               (it builds tests/testenv with Go)";
    super::cluster_calls::tool("CHARTBROKER_TESTENV", ".tools/bin/testenv", how)
}

/// Starts the control plane on first use; later calls return the same one.
pub fn control_plane() -> &'static ControlPlane {
    static CP: OnceLock<ControlPlane> = OnceLock::new();
    CP.get_or_init(|| {
        if let Some(kc) = std::env::var_os("CHARTBROKER_TESTENV_KUBECONFIG") {
            return ControlPlane {
                kubeconfig: PathBuf::from(kc),
                _process: None,
            };
        }
        let dir = tempfile::Builder::new()
            .prefix("chartbroker-testenv-")
            .tempdir()
            .unwrap();
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let log = std::fs::File::create(dir.path().join("testenv.log")).unwrap();
        // A static is never dropped, so the TempDir can't clean up: testenv
        // removes its folder itself when this process exits.
        let mut child = Command::new(testenv_bin())
            .arg("-remove-dir")
            .arg("-dir")
            .arg(dir.path())
            .arg("-kubeconfig")
            .arg(&kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting tests/testenv");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready ") {
                    let _ = tx.send(line);
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(180)).is_err() {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("testenv.log")).unwrap_or_default();
            let api =
                std::fs::read_to_string(dir.path().join("kube-apiserver.log")).unwrap_or_default();
            panic!(
                "the test control plane did not become ready in 180 s\n--- testenv ---\n{log}\n\
                 --- kube-apiserver (last 4 KiB) ---\n{}",
                &api[api.len().saturating_sub(4096)..]
            );
        }
        let _ = dir.keep();
        ControlPlane {
            kubeconfig,
            _process: Some(Mutex::new((child, stdin))),
        }
    })
}

/// A kube client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig reads");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("kube client")
}

/// A short random suffix for names that must not collide between tests.
pub fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The admin's view of the shared control plane, with raw-path helpers so
/// tests read like the API calls they check.
pub struct Cluster {
    /// Admin client.
    pub client: Client,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// The shared control plane, as admin.
    pub async fn admin() -> Cluster {
        let kubeconfig = control_plane().kubeconfig.clone();
        Cluster {
            client: client_from(&kubeconfig).await,
            kubeconfig,
        }
    }

    /// GET a path; None on 404.
    pub async fn get(&self, path: &str) -> Option<Value> {
        let req = axum::http::Request::get(path).body(Vec::new()).unwrap();
        match self.client.request::<Value>(req).await {
            Ok(v) => Some(v),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// The items of a list path.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        self.get(path)
            .await
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
    }

    /// POSTs an object to a collection path.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        self.write(axum::http::Method::POST, path, body).await
    }

    /// Sends `body` to `path` with `method`, as admin: the answer, or a
    /// panic naming the request.
    async fn write(&self, method: axum::http::Method, path: &str, body: Value) -> Value {
        let req = axum::http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        self.client
            .request::<Value>(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// DELETEs an object; a missing one is fine.
    pub async fn delete(&self, path: &str) {
        let req = axum::http::Request::delete(path).body(Vec::new()).unwrap();
        match self.client.request::<Value>(req).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => panic!("DELETE {path}: {e}"),
        }
    }

    /// A new namespace `<prefix>-<random>`, labelled as a test namespace.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", suffix());
        self.create(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": name, "labels": {"chartbroker.io/test": "testenv"}}}),
        )
        .await;
        name
    }

    /// Polls `path` until it answers 404; panics after `within`.
    pub async fn wait_gone(&self, path: &str, within: Duration) {
        let start = std::time::Instant::now();
        while self.get(path).await.is_some() {
            assert!(
                start.elapsed() < within,
                "{path} still exists after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `kubectl apply --server-side` of a YAML stream, as admin; returns
    /// kubectl's output, or panics with it.
    pub fn kubectl_apply(&self, yaml: &str) -> String {
        let out = kubectl(
            &self.kubeconfig,
            &["apply", "--server-side", "-f", "-"],
            yaml,
        );
        assert!(
            out.0,
            "kubectl apply failed:\n{}\n--- input ---\n{yaml}",
            out.1
        );
        out.1
    }

    /// Installs the broker's identity from the chart (`deploy/chart`, the
    /// source of `deploy/kubernetes`) under a state namespace of its own,
    /// with cluster-scoped names suffixed, so tests running at once don't
    /// share records or bindings. `namespaces` adds the chart's
    /// `rbac.namespaces` (what `namespace: instance` plans need: the broker
    /// creates namespaces and their release identity).
    pub async fn install_broker(&self, namespaces: bool) -> BrokerIdentity {
        let sfx = suffix();
        let state_namespace = format!("cb-system-{sfx}");
        let mut templates = vec![
            "namespace.yaml",
            "serviceaccount.yaml",
            "rbac-state.yaml",
            "rbac-subjectaccessreviews.yaml",
            "rbac-release-clusterrole.yaml",
            "release-admission.yaml",
        ];
        if namespaces {
            templates.push("rbac-namespaces.yaml");
        }
        let values = json!({
            "namespace": {"create": true},
            "targetNamespaces": [],
            "defaultNamespace": "default",
            "rbac": {"namespaces": namespaces},
        });
        let yaml = rename(&chart_template(&state_namespace, &values, &templates), &sfx);
        self.kubectl_apply(&yaml);
        let token = kubectl(
            &self.kubeconfig,
            &[
                "create",
                "token",
                "chartbroker",
                "-n",
                &state_namespace,
                "--duration=3h",
            ],
            "",
        );
        assert!(token.0, "TokenRequest for the broker failed: {}", token.1);
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("broker.kubeconfig");
        write_token_kubeconfig(&self.kubeconfig, token.1.trim(), &kubeconfig);
        BrokerIdentity {
            state_namespace,
            suffix: sfx,
            kubeconfig,
            _dir: dir,
        }
    }

    /// Who wrote `resource` `name` in `namespace`, by the API server's audit
    /// log (tests/testenv keeps one beside the admin kubeconfig): the verb
    /// and user of each write the server accepted.
    pub fn audited_writes(
        &self,
        namespace: &str,
        resource: &str,
        name: &str,
    ) -> Vec<(String, String)> {
        let log = self.kubeconfig.with_file_name("audit.log");
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| {
            panic!(
                "the API server's audit log {}: {e} (tests/testenv writes it since it audits \
                 writes: rebuild it with scripts/install-tools.sh)",
                log.display()
            )
        });
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                let o = &e["objectRef"];
                o["namespace"] == namespace
                    && o["resource"] == resource
                    && o["name"] == name
                    && o["subresource"].is_null()
                    && e["stage"] == "ResponseComplete"
                    && e["responseStatus"]["code"]
                        .as_u64()
                        .is_some_and(|c| c < 300)
            })
            .map(|e| {
                (
                    e["verb"].as_str().unwrap_or_default().to_string(),
                    e["user"]["username"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    }

    /// PUTs (replaces) an object at its path, as admin.
    pub async fn replace(&self, path: &str, body: Value) -> Value {
        self.write(axum::http::Method::PUT, path, body).await
    }

    /// A namespace the broker may install into (deploy/'s target
    /// RoleBinding) and `user` may edit.
    pub async fn tenant(&self, broker: &BrokerIdentity, user: &str) -> String {
        let ns = self.namespace("apps").await;
        self.grant_target(broker, &ns);
        self.grant_user(&ns, user);
        ns
    }

    /// Binds the built-in `edit` ClusterRole to `user` in `ns`.
    pub fn grant_user(&self, ns: &str, user: &str) {
        self.kubectl_apply(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {user}-edit\n  \
             namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: edit\n\
             subjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n"
        ));
    }

    /// `helm history` of a release, as admin, one JSON object per revision.
    pub fn helm_history(&self, ns: &str, release: &str) -> Vec<Value> {
        let out = self.helm(&["history", release, "-n", ns, "-o", "json"]);
        assert!(out.status.success(), "helm history {release}: {out:?}");
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The real helm 4 with the admin kubeconfig and an environment of its
    /// own (no user config leaks in).
    pub fn helm(&self, args: &[&str]) -> std::process::Output {
        let home = tempfile::tempdir().unwrap();
        Command::new(helm_bin())
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_clear()
            .env("HOME", home.path())
            .output()
            .expect("helm runs")
    }

    /// Runs `work`, then returns every change the API server recorded in
    /// the collection at `path` (`.../secrets` or `/api/v1/namespaces`)
    /// meanwhile, as `"ADDED name"`, `"MODIFIED name"`, `"DELETED name"`,
    /// with the work's output. A watch from the resourceVersion taken before
    /// sees even an object created and deleted again; it ends at a sentinel
    /// object written after the work, so nothing here waits on a clock.
    pub async fn writes_during<T>(
        &self,
        path: &str,
        work: impl std::future::Future<Output = T>,
    ) -> (T, Vec<String>) {
        use futures::StreamExt as _;
        use kube::api::WatchEvent;
        let kind = match path.rsplit('/').next() {
            Some("secrets") => "Secret",
            Some("namespaces") => "Namespace",
            other => panic!("no sentinel for {other:?}"),
        };
        let list = self.get(path).await.unwrap_or_default();
        let from = list["metadata"]["resourceVersion"]
            .as_str()
            .expect("a list has a resourceVersion")
            .to_string();
        let output = work.await;
        let sentinel = format!("zz-sentinel-{}", suffix());
        self.create(
            path,
            json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": sentinel}}),
        )
        .await;
        let req = axum::http::Request::get(format!(
            "{path}?watch=true&resourceVersion={from}&timeoutSeconds=600"
        ))
        .body(Vec::new())
        .unwrap();
        let mut events = Box::pin(self.client.request_events::<Value>(req).await.unwrap());
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            let (what, obj) = match event.unwrap() {
                WatchEvent::Added(o) => ("ADDED", o),
                WatchEvent::Modified(o) => ("MODIFIED", o),
                WatchEvent::Deleted(o) => ("DELETED", o),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => panic!("watching {path}: {e:?}"),
            };
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            if name == sentinel {
                self.delete(&format!("{path}/{sentinel}")).await;
                return (output, seen);
            }
            seen.push(format!("{what} {name}"));
        }
        panic!("the watch on {path} ended before the sentinel arrived");
    }

    /// For brokers that run as the admin: the release identity of `ns`
    /// under the default names (`chartbroker-release`), from the chart, so
    /// helm has an account to run as there. The ClusterRoles are shared by
    /// every test; their content is the chart's.
    pub fn default_release_identity(&self, ns: &str) {
        apply_release_identity(&self.kubeconfig, "chartbroker-system", &[ns]);
    }

    /// Grants the broker its release rights in `namespace`, as the chart's
    /// `targetNamespaces` does.
    pub fn grant_target(&self, broker: &BrokerIdentity, namespace: &str) {
        let values = json!({"targetNamespaces": [namespace]});
        let yaml = chart_template(&broker.state_namespace, &values, &["rbac-targets.yaml"]);
        self.kubectl_apply(&rename(&yaml, &broker.suffix));
    }
}

impl TestBroker {
    /// A broker with the helm engine that runs as `broker` (deploy/'s
    /// ServiceAccount and RBAC, nothing more); `tweak` adjusts the rest.
    pub async fn on_cluster(
        broker: &BrokerIdentity,
        tweak: impl FnOnce(&Path, &mut ServeConfig),
    ) -> TestBroker {
        let data = tempfile::tempdir().unwrap();
        let mut cfg = config(data.path());
        cfg.engine = Engine::Helm;
        cfg.kubeconfig = Some(broker.kubeconfig.clone());
        cfg.state_namespace = broker.state_namespace.clone();
        cfg.release_identity = broker.identity_names();
        cfg.helm_timeout = Duration::from_secs(120);
        cfg.operation_timeout = Duration::from_secs(300);
        tweak(data.path(), &mut cfg);
        TestBroker::with_config(data, cfg).await
    }
}

/// The decoded value of `key` in a Secret as the API returns it.
pub fn secret_value(secret: &Value, key: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes).ok()
}

/// Helm's release records (Secrets) of `release` in `ns`.
pub async fn release_records(k: &Cluster, ns: &str, release: &str) -> Vec<Value> {
    k.list(&format!(
        "/api/v1/namespaces/{ns}/secrets?labelSelector=owner%3Dhelm,name%3D{release}"
    ))
    .await
}
