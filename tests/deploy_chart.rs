//! The broker's own Helm chart (`deploy/chart/chartbroker`) against the real
//! helm and a real API server (tests/testenv): `helm lint --strict`, values
//! the schema or the chart must refuse, `deploy/` generated from it and in
//! sync, several value sets applied server-side with strict field validation
//! into namespaces that enforce Pod Security `restricted` (no warnings), and
//! the real broker binary started the way the rendered Deployment says —
//! its env, its Secrets and ConfigMap as files, its ServiceAccount's token —
//! provisioning into a namespace the values granted and refused elsewhere,
//! and two replicas of the `kube` store sharing the Secret's key.
//!
//! Pods never run on the test control plane (no kubelet), so `Pod` below
//! does what a kubelet and the image would: resolves `valueFrom`, writes
//! the mounted Secrets and ConfigMaps to folders and maps the image's paths
//! (deploy/Dockerfile's `ENV`) to this checkout.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::cluster::{Cluster, kubectl, suffix, write_token_kubeconfig};
use common::{helm_bin, repo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

const MYSQL: &str = "a0f5bc72-baad-493b-bc23-a1955f509a90";
const MYSQL_BASIC: &str = "d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1";
const USER: &str = "osb-platform";
const PASS: &str = "chart-test-password-0123456789";

fn chart() -> PathBuf {
    repo().join("deploy/chart/chartbroker")
}

/// Runs helm with a clean environment; (success, stdout, stderr).
fn helm(args: &[&str]) -> (bool, String, String) {
    helm_with(&helm_bin(), args)
}

/// Helm 3, which the chart supports too.
fn helm3_bin() -> PathBuf {
    let p = std::env::var_os("CHARTBROKER_HELM3")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/bin/helm3"));
    assert!(p.is_file(), "helm 3 not found at {}", p.display());
    p
}

fn helm_with(bin: &Path, args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .output()
        .expect("helm runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Values go in as a JSON file: `--set` would turn "9" into a number.
fn values_file(values: &Value) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(f.path(), values.to_string()).unwrap();
    f
}

/// `helm template`; Err(stderr) when helm refuses.
fn render(release: &str, namespace: &str, values: &Value) -> Result<String, String> {
    let f = values_file(values);
    let chart = chart();
    let (ok, out, err) = helm(&[
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
        "--values",
        f.path().to_str().unwrap(),
    ]);
    if ok { Ok(out) } else { Err(err) }
}

/// One document of a rendered stream: its text (comments kept) and value.
struct Doc {
    text: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    /// Kinds whose CRDs (cert-manager, Prometheus Operator, Service Catalog,
    /// provider-osb) a bare control plane does not have.
    fn needs_crd(&self) -> bool {
        let api = self.value["apiVersion"].as_str().unwrap_or("");
        [
            "cert-manager.io/",
            "monitoring.coreos.com/",
            "servicecatalog.k8s.io/",
            "osb.m.crossplane.io/",
        ]
        .iter()
        .any(|g| api.starts_with(g))
    }
}

fn split(stream: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in stream.lines().chain(std::iter::once("---")) {
        if line == "---" {
            let value: Value = serde_saphyr::from_str(&cur).unwrap_or(Value::Null);
            if value.is_object() {
                docs.push(Doc {
                    text: std::mem::take(&mut cur),
                    value,
                });
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs
}

/// What `kubectl apply` can take on this control plane.
fn applicable(docs: &[Doc]) -> String {
    docs.iter()
        .filter(|d| !d.needs_crd())
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Server-side apply with strict field validation; panics with kubectl's
/// words on failure, returns its output (warnings included).
fn apply_strict(k: &Cluster, yaml: &str) -> String {
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &["apply", "--server-side", "--validate=strict", "-f", "-"],
        yaml,
    );
    assert!(ok, "kubectl apply failed:\n{out}\n--- input ---\n{yaml}");
    out
}

/// A namespace for the broker, enforcing (and warning about) Pod Security
/// `restricted`, as NOTES.txt tells operators to label it.
async fn restricted_namespace(k: &Cluster, prefix: &str) -> String {
    let ns = k.namespace(prefix).await;
    let (ok, out) = kubectl(
        &k.kubeconfig,
        &[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        "",
    );
    assert!(ok, "{out}");
    ns
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The Secrets the chart expects to exist: credentials, store key, TLS.
async fn secrets(k: &Cluster, ns: &str, fullname: &str, pki: &Pki, store_key: &str) {
    let secret = |name: String, kind: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": kind,
               "metadata": {"name": name, "namespace": ns}, "data": data})
    };
    let path = format!("/api/v1/namespaces/{ns}/secrets");
    k.create(
        &path,
        secret(
            format!("{fullname}-credentials"),
            "Opaque",
            json!({"username": b64(USER), "password": b64(PASS)}),
        ),
    )
    .await;
    k.create(
        &path,
        secret(
            format!("{fullname}-store-key"),
            "Opaque",
            json!({"store.key": b64(store_key)}),
        ),
    )
    .await;
    k.create(
        &path,
        secret(
            format!("{fullname}-tls"),
            "kubernetes.io/tls",
            json!({"tls.crt": b64(&pki.cert), "tls.key": b64(&pki.key), "ca.crt": b64(&pki.ca)}),
        ),
    )
    .await;
}

fn store_key() -> String {
    let bytes: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

/// A CA and a serving certificate for localhost and the Service's names.
fn pki(fullname: &str, ns: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![
        "localhost".to_string(),
        format!("{fullname}.{ns}.svc"),
    ])
    .unwrap()
    .signed_by(&key, &issuer)
    .unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// The example catalog, as `--set-file catalog.files.<name>=catalog/<name>`
/// would pass it.
fn example_catalog(only: Option<&str>) -> Value {
    let mut files = serde_json::Map::new();
    for e in std::fs::read_dir(repo().join("catalog")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if only.is_none_or(|o| o == name) {
            files.insert(name, Value::String(std::fs::read_to_string(&p).unwrap()));
        }
    }
    Value::Object(files)
}

// ---------------------------------------------------------------------------
// A kubelet and container runtime, as far as this test needs one.
// ---------------------------------------------------------------------------

/// `ENV` of deploy/Dockerfile's final stage: the image's defaults.
fn image_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let stage = text.rsplit("\nFROM ").next().unwrap();
    let mut env = BTreeMap::new();
    let mut in_env = false;
    for line in stage.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("ENV ") {
            in_env = true;
            push_env(&mut env, rest);
        } else if in_env {
            push_env(&mut env, l);
        }
        in_env = in_env && l.ends_with('\\');
    }
    assert!(
        env.contains_key("CHARTBROKER_HELM"),
        "Dockerfile ENV: {env:?}"
    );
    env
}

fn push_env(env: &mut BTreeMap<String, String>, part: &str) {
    for kv in part.trim_end_matches('\\').split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
}

/// Where the image's own files are in this checkout.
fn image_path(path: &str) -> Option<PathBuf> {
    match path {
        "/usr/local/bin/helm" => Some(helm_bin()),
        "/opt/chartbroker/charts" => Some(repo().join("charts")),
        "/opt/chartbroker/catalog" => Some(repo().join("catalog")),
        _ => None,
    }
}

/// A broker process started from a rendered Deployment.
struct Pod {
    child: Child,
    url: String,
    log: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

impl Pod {
    async fn start(k: &Cluster, ns: &str, docs: &[Doc], client: &reqwest::Client) -> Pod {
        let dep = docs
            .iter()
            .find(|d| d.kind() == "Deployment")
            .expect("the chart renders a Deployment");
        let pod = &dep.value["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let sa = pod["serviceAccountName"].as_str().unwrap();
        assert_eq!(
            pod["automountServiceAccountToken"], true,
            "the broker needs its token"
        );
        let mut dirs = Vec::new();

        // Volumes, by mount path.
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for m in c["volumeMounts"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            let vol = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("volumeMount {name} has no volume"));
            let dir = tempfile::tempdir().unwrap();
            if let Some(claim) = vol["persistentVolumeClaim"]["claimName"].as_str() {
                assert!(
                    k.get(&format!(
                        "/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}"
                    ))
                    .await
                    .is_some(),
                    "PVC {claim} was not applied"
                );
            } else if let Some(secret) = vol["secret"]["secretName"].as_str() {
                let s = k
                    .get(&format!("/api/v1/namespaces/{ns}/secrets/{secret}"))
                    .await
                    .unwrap_or_else(|| panic!("the pod mounts Secret {secret}, which is missing"));
                project(dir.path(), &s["data"], &vol["secret"]["items"], decode);
            } else if let Some(cm) = vol["configMap"]["name"].as_str() {
                let m = k
                    .get(&format!("/api/v1/namespaces/{ns}/configmaps/{cm}"))
                    .await
                    .unwrap_or_else(|| panic!("the pod mounts ConfigMap {cm}, which is missing"));
                project(dir.path(), &m["data"], &vol["configMap"]["items"], |v| {
                    v.as_str().unwrap().as_bytes().to_vec()
                });
            } else {
                assert!(vol["emptyDir"].is_object(), "unsupported volume {vol}");
            }
            mounts.push((
                m["mountPath"].as_str().unwrap().to_string(),
                dir.path().to_path_buf(),
            ));
            dirs.push(dir);
        }

        // Environment: the image's, then the container's.
        let mut env = image_env();
        for e in c["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap().to_string();
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                let s = k
                    .get(&format!(
                        "/api/v1/namespaces/{ns}/secrets/{}",
                        r["name"].as_str().unwrap()
                    ))
                    .await
                    .unwrap_or_else(|| panic!("{name}: Secret {} missing", r["name"]));
                String::from_utf8(decode(&s["data"][r["key"].as_str().unwrap()])).unwrap()
            } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace" {
                ns.to_string()
            } else {
                panic!("unsupported env source {e}")
            };
            env.insert(name, value);
        }
        for (name, value) in env.iter_mut() {
            if !value.starts_with('/') {
                continue;
            }
            let mapped = mounts
                .iter()
                .filter(|(mp, _)| value == mp || value.starts_with(&format!("{mp}/")))
                .max_by_key(|(mp, _)| mp.len())
                .map(|(mp, dir)| dir.join(value[mp.len()..].trim_start_matches('/')))
                .or_else(|| image_path(value))
                .unwrap_or_else(|| {
                    panic!("{name}={value} is neither in a volume nor in the image")
                });
            *value = mapped.to_str().unwrap().to_string();
        }
        let port = common::process::free_port();
        assert_eq!(env["CHARTBROKER_LISTEN"], "0.0.0.0:8443");
        env.insert("CHARTBROKER_LISTEN".into(), format!("127.0.0.1:{port}"));

        // In-cluster credentials: the ServiceAccount's token (TokenRequest).
        let (ok, token) = kubectl(
            &k.kubeconfig,
            &["create", "token", sa, "-n", ns, "--duration=1h"],
            "",
        );
        assert!(ok, "{token}");
        let kdir = tempfile::tempdir().unwrap();
        let kubeconfig = kdir.path().join("kubeconfig");
        write_token_kubeconfig(&k.kubeconfig, token.trim(), &kubeconfig);
        env.insert(
            "CHARTBROKER_KUBECONFIG".into(),
            kubeconfig.to_str().unwrap().into(),
        );
        let log = kdir.path().join("broker.log");
        dirs.push(kdir);

        // ENTRYPOINT ["chartbroker", "serve"] plus the container's args.
        let args: Vec<String> = c["args"]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let child = Command::new(env!("CARGO_BIN_EXE_chartbroker"))
            .arg("serve")
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dirs[0].path())
            .envs(&env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("chartbroker starts");
        let scheme = if c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS" {
            "https"
        } else {
            "http"
        };
        let mut p = Pod {
            child,
            url: format!("{scheme}://localhost:{port}"),
            log,
            _dirs: dirs,
        };
        // The readiness probe, as the kubelet would send it.
        let path = c["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{}{path}", p.url)).send().await
                && r.status() == 200
            {
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("the broker exited ({status}):\n{}", p.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the broker never became ready:\n{}", p.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn osb(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        // A cluster admin as the platform's user: the SubjectAccessReview
        // passes everywhere, so only the chart's RBAC for the broker itself
        // decides where it may install.
        let user =
            serde_json::json!({"username": "ops", "uid": "ops", "groups": ["system:masters"]});
        let identity = format!(
            "kubernetes {}",
            base64::engine::general_purpose::STANDARD.encode(user.to_string())
        );
        let mut r = client
            .request(method, format!("{}{path}", self.url))
            .basic_auth(USER, Some(PASS))
            .header("X-Broker-API-Version", "2.17")
            .header("X-Broker-API-Originating-Identity", identity);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("the broker answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls last_operation until it leaves `in progress`.
    async fn settle(&self, client: &reqwest::Client, path: &str, op: &str) -> (u16, Value) {
        let uri = format!("{path}/last_operation?operation={op}");
        for _ in 0..1200 {
            let r = self.osb(client, reqwest::Method::GET, &uri, None).await;
            if r.0 != 200 || r.1["state"] != "in progress" {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{uri} still in progress:\n{}", self.log_text());
    }
}

/// Writes a Secret's or ConfigMap's keys (or only its `items`) as files.
fn project(dir: &Path, data: &Value, items: &Value, bytes: impl Fn(&Value) -> Vec<u8>) {
    let data = data.as_object().cloned().unwrap_or_default();
    match items.as_array() {
        Some(items) => {
            for it in items {
                let key = it["key"].as_str().unwrap();
                let v = data
                    .get(key)
                    .unwrap_or_else(|| panic!("the volume's item {key} is missing"));
                std::fs::write(dir.join(it["path"].as_str().unwrap()), bytes(v)).unwrap();
            }
        }
        None => {
            for (k, v) in &data {
                std::fs::write(dir.join(k), bytes(v)).unwrap();
            }
        }
    }
}

fn https_client(pki: &Pki) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

fn provision(ns: &str) -> Value {
    json!({
        "service_id": MYSQL, "plan_id": MYSQL_BASIC,
        "organization_guid": "org", "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": ns},
        "parameters": {"database": "shop"},
    })
}

// ---------------------------------------------------------------------------
// Value sets
// ---------------------------------------------------------------------------

/// Value sets exercising every switch; `name` makes cluster-scoped names
/// unique per test run.
fn value_sets(name: &str, targets: &[String]) -> Vec<(&'static str, Value)> {
    vec![
        (
            "defaults",
            json!({"fullnameOverride": format!("{name}-d"), "targetNamespaces": targets}),
        ),
        (
            "kube store, 3 replicas, NetworkPolicy",
            json!({
                "fullnameOverride": format!("{name}-k"),
                "targetNamespaces": targets,
                "replicas": 3,
                "store": {"type": "kube", "key": {"existingSecret": "shared-key", "secretKey": "k"}},
                "networkPolicy": {"enabled": true, "apiServerCIDRs": ["10.0.0.1/32", "fd00::1/128"],
                                  "extraEgress": [{"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}]}]},
            }),
        ),
        (
            "catalog, credentials file, mTLS, broad RBAC, optional objects",
            json!({
                "fullnameOverride": format!("{name}-e"),
                "targetNamespaces": targets,
                "defaultNamespace": targets[0],
                "image": {"digest": format!("sha256:{}", "a".repeat(64))},
                "catalog": {"files": example_catalog(None)},
                "credentials": {"file": {"existingSecret": "platform-creds"}},
                "tls": {"clientCA": true, "certManager": {"enabled": true}},
                "rbac": {"namespaces": true},
                "service": {"port": 8443},
                "serviceMonitor": {"enabled": true},
                "registration": {"serviceCatalog": {"enabled": true, "caBundle": b64("ca")},
                                 "providerOsb": {"enabled": true}},
                "extraEnv": [{"name": "MANAGED_MYSQL_PASSWORD",
                              "valueFrom": {"secretKeyRef": {"name": "upstream", "key": "password"}}}],
                "podDisruptionBudget": {"enabled": false},
            }),
        ),
        (
            "plain HTTP, render engine, existing claim and ConfigMap",
            json!({
                "fullnameOverride": format!("{name}-p"),
                "targetNamespaces": targets,
                "engine": "render",
                "tls": {"enabled": false},
                "catalog": {"existingConfigMap": "my-catalog"},
                "store": {"persistence": {"existingClaim": "my-data", "storageClassName": "fast"}},
            }),
        ),
    ]
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn helm_lint_strict_is_clean_for_every_value_set_on_helm_4_and_3() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let targets = vec!["apps".to_string()];
    let mut sets = vec![("no values", json!({}))];
    sets.extend(value_sets("lint", &targets));
    for (what, values) in sets {
        let f = values_file(&values);
        let file = f.path().to_str().unwrap();
        let mut renders = Vec::new();
        for bin in [helm_bin(), helm3_bin()] {
            let (ok, out, err) = helm_with(&bin, &["lint", "--strict", chart, "--values", file]);
            assert!(ok, "{what}: {} lint --strict\n{out}{err}", bin.display());
            assert!(out.contains("0 chart(s) failed"), "{what}: {out}");
            assert!(!out.contains("[WARNING]"), "{what}: {out}");
            let (ok, out, err) = helm_with(
                &bin,
                &["template", "cb", chart, "-n", "cb-system", "--values", file],
            );
            assert!(ok, "{what}: {err}");
            renders.push(out);
        }
        assert!(
            renders[0] == renders[1],
            "{what}: helm 4 and 3 render differently"
        );
    }
}

#[test]
fn bad_values_are_refused_with_the_reason_and_render_nothing() {
    for (values, reason) in [
        (json!({"replicas": 2}), "replicas must be 1"),
        (json!({"store": {"type": "etcd"}}), "/store/type"),
        (json!({"replica": 2}), "replica"),
        (json!({"tls": {"enabeld": false}}), "enabeld"),
        (
            json!({"targetNamespaces": ["Kube_System"]}),
            "/targetNamespaces/0",
        ),
        (json!({"targetNamespaces": []}), "defaultNamespace is empty"),
        (
            json!({"rbac": {"releaseClusterWide": true}}),
            "releaseClusterWide",
        ),
        (
            json!({"networkPolicy": {"enabled": true}}),
            "apiServerCIDRs",
        ),
        (
            json!({"catalog": {"files": {"../../etc/passwd": "x"}}}),
            "invalid propertyName '../../etc/passwd'",
        ),
        (
            json!({"catalog": {"files": {"..data.yaml": "x"}}}),
            "invalid propertyName '..data.yaml'",
        ),
        (
            json!({"catalog": {"files": {"a.yaml": "x"}, "existingConfigMap": "c"}}),
            "not both",
        ),
        (
            json!({"tls": {"enabled": false, "clientCA": true}}),
            "needs tls.enabled",
        ),
        (
            json!({"registration": {"serviceCatalog": {"enabled": true}}}),
            "caBundle",
        ),
        (json!({"image": {"digest": "latest"}}), "/image/digest"),
        (
            json!({"fullnameOverride": "x".repeat(41)}),
            "/fullnameOverride",
        ),
    ] {
        match render("cb", "cb-system", &values) {
            Ok(out) => panic!("{values} rendered:\n{out}"),
            Err(err) => assert!(err.contains(reason), "{values}: {err}"),
        }
    }
}

#[test]
fn deploy_manifests_are_generated_from_the_chart_and_in_sync() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(repo().join("scripts/gen-deploy.sh"))
        .arg(out.path())
        .env("CHARTBROKER_HELM", helm_bin())
        .status()
        .unwrap();
    assert!(status.success());
    let mut generated = Vec::new();
    for top in ["kubernetes", "registration"] {
        collect(&out.path().join(top), top, &mut generated);
    }
    assert!(generated.len() >= 15, "{generated:?}");
    for rel in &generated {
        let want = std::fs::read_to_string(out.path().join(rel)).unwrap();
        let have = std::fs::read_to_string(repo().join("deploy").join(rel))
            .unwrap_or_else(|_| panic!("deploy/{rel} is missing: run scripts/gen-deploy.sh"));
        assert!(
            want == have,
            "deploy/{rel} differs from the chart: run scripts/gen-deploy.sh"
        );
    }
    // Nothing stale: every manifest in deploy/ (but the hand-written Secret
    // templates) comes from the chart.
    let mut committed = Vec::new();
    for top in ["kubernetes", "registration"] {
        collect(&repo().join("deploy").join(top), top, &mut committed);
    }
    committed.retain(|f| !f.starts_with("kubernetes/templates/"));
    assert_eq!(
        committed, generated,
        "files in deploy/ the chart does not make"
    );
}

fn collect(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = format!("{rel}/{}", p.file_name().unwrap().to_str().unwrap());
        if p.is_dir() {
            collect(&p, &name, out);
        } else {
            out.push(name);
        }
    }
    out.sort();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_value_set_applies_strictly_and_passes_restricted_pod_security() {
    let k = Cluster::admin().await;
    let ns = restricted_namespace(&k, "cbc-psa").await;
    let target = k.namespace("cbc-apps").await;

    // The check can fail: a pod template that breaks `restricted` draws a
    // warning from the API server in this very namespace.
    let loose = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: loose\n  namespace: {ns}\nspec:\n  \
         selector:\n    matchLabels: {{app: loose}}\n  template:\n    metadata:\n      labels: {{app: loose}}\n    \
         spec:\n      containers:\n        - name: c\n          image: busybox\n"
    );
    let out = apply_strict(&k, &loose);
    assert!(
        out.contains("Warning") && out.contains("restricted"),
        "{out}"
    );
    k.delete(&format!("/apis/apps/v1/namespaces/{ns}/deployments/loose"))
        .await;

    let name = format!("cbc-{}", suffix());
    for (what, values) in value_sets(&name, std::slice::from_ref(&target)) {
        let rendered = render("broker", &ns, &values).unwrap_or_else(|e| panic!("{what}: {e}"));
        let docs = split(&rendered);
        let out = apply_strict(&k, &applicable(&docs));
        assert!(!out.contains("Warning"), "{what}: {out}");
        let fullname = values["fullnameOverride"].as_str().unwrap();
        let dep = k
            .get(&format!(
                "/apis/apps/v1/namespaces/{ns}/deployments/{fullname}"
            ))
            .await
            .unwrap_or_else(|| panic!("{what}: the Deployment was admitted"));
        let pod = &dep["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{what}"
        );
        let sc = &pod["containers"][0]["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");

        // The rendered RBAC, as the API server's authorizer sees it.
        // The broker does its own work; helm's is the release identity's.
        let sa = format!("system:serviceaccount:{ns}:{fullname}");
        let release = format!("system:serviceaccount:{target}:{fullname}-release");
        let nsrbac = values["rbac"]["namespaces"] == true;
        for (who, verb, res, where_, expect) in [
            (&sa, "create", "secrets", ns.as_str(), "yes"),
            (&sa, "patch", "secrets", target.as_str(), "yes"),
            (&sa, "patch", "statefulsets.apps", target.as_str(), "no"),
            (&sa, "create", "secrets", "default", "no"),
            (&sa, "create", "pods/exec", target.as_str(), "no"),
            (
                &sa,
                "create",
                "rolebindings.rbac.authorization.k8s.io",
                target.as_str(),
                if nsrbac { "yes" } else { "no" },
            ),
            (
                &release,
                "patch",
                "statefulsets.apps",
                target.as_str(),
                "yes",
            ),
            (&release, "create", "secrets", "default", "no"),
            (&release, "create", "daemonsets.apps", target.as_str(), "no"),
            (
                &release,
                "escalate",
                "roles.rbac.authorization.k8s.io",
                target.as_str(),
                "no",
            ),
        ] {
            let (_, out) = kubectl(
                &k.kubeconfig,
                &["auth", "can-i", verb, res, "-n", where_, "--as", who],
                "",
            );
            assert_eq!(
                out.lines().next().unwrap_or(""),
                expect,
                "{what}: {who} can-i {verb} {res} -n {where_}: {out}"
            );
        }
        let ns_verb = if values["rbac"]["namespaces"] == true {
            "yes"
        } else {
            "no"
        };
        let (_, out) = kubectl(
            &k.kubeconfig,
            &["auth", "can-i", "delete", "namespaces", "--as", &sa],
            "",
        );
        assert_eq!(out.lines().next().unwrap_or(""), ns_verb, "{what}: {out}");

        let kinds: Vec<&str> = docs.iter().map(Doc::kind).collect();
        let kube = values["store"]["type"] == "kube";
        assert_eq!(
            kinds.contains(&"PodDisruptionBudget"),
            kube,
            "{what}: {kinds:?}"
        );
        assert_eq!(
            kinds.contains(&"PersistentVolumeClaim"),
            !kube && values["store"]["persistence"]["existingClaim"].is_null(),
            "{what}: {kinds:?}"
        );
        if kube {
            let pdb = k
                .get(&format!(
                    "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{fullname}"
                ))
                .await;
            assert!(pdb.is_some(), "{what}: PDB applied");
        }
        // Registration objects point at this release's Service.
        for d in docs.iter().filter(|d| d.needs_crd()) {
            let url = d.value["spec"]["url"]
                .as_str()
                .or(d.value["spec"]["brokerUrl"].as_str());
            if let Some(url) = url {
                assert_eq!(
                    url,
                    format!("https://{fullname}.{ns}.svc.cluster.local:8443"),
                    "{what}: {} {}",
                    d.kind(),
                    d.name()
                );
            }
        }
    }
}

/// Renders, applies and creates the Secrets for one broker from the chart.
async fn install(
    k: &Cluster,
    ns: &str,
    fullname: &str,
    values: Value,
    key: &str,
) -> (Vec<Doc>, Pki) {
    let pki = pki(fullname, ns);
    secrets(k, ns, fullname, &pki, key).await;
    let rendered = render("chartbroker", ns, &values).unwrap();
    let docs = split(&rendered);
    let out = apply_strict(k, &applicable(&docs));
    assert!(!out.contains("Warning"), "{out}");
    (docs, pki)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_runs_from_the_chart_and_only_where_its_values_grant() {
    let k = Cluster::admin().await;
    let ns = restricted_namespace(&k, "cbc-run").await;
    let granted = k.namespace("cbc-apps").await;
    let other = k.namespace("cbc-other").await;
    let fullname = format!("cbc-{}", suffix());
    let values = json!({
        "fullnameOverride": fullname,
        "targetNamespaces": [granted],
        "catalog": {"files": example_catalog(Some("mysql.yaml"))},
    });
    let (docs, pki) = install(&k, &ns, &fullname, values, &store_key()).await;
    let client = https_client(&pki);
    let b = Pod::start(&k, &ns, &docs, &client).await;
    use reqwest::Method;

    // The catalog is the chart's ConfigMap (mysql only), not the image's
    // example catalog (four services).
    let (s, cat) = b.osb(&client, Method::GET, "/v2/catalog", None).await;
    assert_eq!(s, 200, "{cat}");
    let names: Vec<&str> = cat["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["mysql"]);
    // Credentials from the Secret: anything else is refused.
    let resp = client
        .get(format!("{}/v2/catalog", b.url))
        .basic_auth(USER, Some("wrong"))
        .header("X-Broker-API-Version", "2.17")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // provision -> bind -> unbind -> deprovision in the granted namespace.
    let path = "/v2/service_instances/db-1";
    let (s, r) = b
        .osb(
            &client,
            Method::PUT,
            &format!("{path}?accepts_incomplete=true"),
            Some(provision(&granted)),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let (_, done) = b
        .settle(&client, path, r["operation"].as_str().unwrap())
        .await;
    assert_eq!(done["state"], "succeeded", "{done}\n{}", b.log_text());
    assert!(
        k.get(&format!(
            "/apis/apps/v1/namespaces/{granted}/statefulsets/cb-db-1"
        ))
        .await
        .is_some()
    );
    let bpath = format!("{path}/service_bindings/app-1");
    let (s, bound) = b
        .osb(
            &client,
            Method::PUT,
            &bpath,
            Some(json!({"service_id": MYSQL, "plan_id": MYSQL_BASIC})),
        )
        .await;
    assert_eq!(s, 201, "{bound}");
    assert_eq!(bound["credentials"]["database"], "shop");
    let binding_secrets = format!(
        "/api/v1/namespaces/{granted}/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dchartbroker"
    );
    assert_eq!(k.list(&binding_secrets).await.len(), 1);
    let q = format!("service_id={MYSQL}&plan_id={MYSQL_BASIC}");
    let (s, r) = b
        .osb(&client, Method::DELETE, &format!("{bpath}?{q}"), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert!(k.list(&binding_secrets).await.is_empty());
    let (s, r) = b
        .osb(
            &client,
            Method::DELETE,
            &format!("{path}?{q}&accepts_incomplete=true"),
            None,
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let (s, gone) = b
        .settle(&client, path, r["operation"].as_str().unwrap())
        .await;
    assert_eq!(
        (s, gone["state"].as_str()),
        (200, Some("succeeded")),
        "{gone}\n{}",
        b.log_text()
    );
    let records = k
        .list(&format!(
            "/api/v1/namespaces/{granted}/secrets?labelSelector=owner%3Dhelm"
        ))
        .await;
    assert!(records.is_empty(), "helm release records left: {records:?}");

    // A namespace the values did not list: the API server says no.
    let (s, r) = b
        .osb(
            &client,
            Method::PUT,
            "/v2/service_instances/db-2?accepts_incomplete=true",
            Some(provision(&other)),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let (_, failed) = b
        .settle(
            &client,
            "/v2/service_instances/db-2",
            r["operation"].as_str().unwrap(),
        )
        .await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let d = failed["description"].as_str().unwrap();
    assert!(d.contains("forbidden"), "{d}");
    assert!(
        d.contains(&format!("system:serviceaccount:{ns}:{fullname}")),
        "{d}"
    );
    assert!(
        k.list(&format!("/api/v1/namespaces/{other}/secrets"))
            .await
            .iter()
            .all(|s| s["metadata"]["labels"]["owner"] != "helm"),
        "nothing written in {other}"
    );
    // Nothing secret in the broker's log.
    let log = b.log_text();
    assert!(!log.contains(PASS), "the password is in the log");
    let pw = bound["credentials"]["password"].as_str().unwrap();
    assert!(!log.contains(pw), "a binding password is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_from_the_kube_value_set_share_state_through_the_secret_key() {
    let k = Cluster::admin().await;
    let ns = restricted_namespace(&k, "cbc-ha").await;
    let granted = k.namespace("cbc-apps").await;
    let fullname = format!("cbc-{}", suffix());
    let values = json!({
        "fullnameOverride": fullname,
        "targetNamespaces": [granted],
        "replicas": 2,
        "store": {"type": "kube"},
        "catalog": {"files": example_catalog(Some("mysql.yaml"))},
    });
    let (docs, pki) = install(&k, &ns, &fullname, values, &store_key()).await;
    let client = https_client(&pki);
    let a = Pod::start(&k, &ns, &docs, &client).await;
    let b = Pod::start(&k, &ns, &docs, &client).await;
    use reqwest::Method;

    let path = "/v2/service_instances/ha-1";
    let (s, r) = a
        .osb(
            &client,
            Method::PUT,
            &format!("{path}?accepts_incomplete=true"),
            Some(provision(&granted)),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let op = r["operation"].as_str().unwrap();
    // The other replica answers for it: the record is in the API server,
    // sealed with the key both read from the same Secret.
    let (_, done) = b.settle(&client, path, op).await;
    assert_eq!(done["state"], "succeeded", "{done}\n{}", a.log_text());
    let (s, got) = b.osb(&client, Method::GET, path, None).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["service_id"], MYSQL);
    let state: Vec<Value> = k
        .list(&format!("/api/v1/namespaces/{ns}/secrets"))
        .await
        .into_iter()
        .filter(|s| s["type"] == "chartbroker.io/state")
        .collect();
    assert!(!state.is_empty(), "state lives in {ns}");
    assert!(!serde_json::to_string(&state).unwrap().contains("shop"));

    let q = format!("service_id={MYSQL}&plan_id={MYSQL_BASIC}&accepts_incomplete=true");
    let (s, r) = b
        .osb(&client, Method::DELETE, &format!("{path}?{q}"), None)
        .await;
    assert_eq!(s, 202, "{r}");
    let (s, gone) = a
        .settle(&client, path, r["operation"].as_str().unwrap())
        .await;
    assert_eq!(
        (s, gone["state"].as_str()),
        (200, Some("succeeded")),
        "{}",
        b.log_text()
    );
}
