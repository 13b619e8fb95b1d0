use super::*;
pub use crate::common::example_catalog::{MYSQL, MYSQL_BASIC};

pub const USER: &str = "osb-platform";
pub const PASS: &str = "chart-test-password-0123456789";

pub fn chart() -> PathBuf {
    repo().join("deploy/chart/chartbroker")
}

/// Runs helm with a clean environment; (success, stdout, stderr).
pub fn helm(args: &[&str]) -> (bool, String, String) {
    helm_with(&helm_bin(), args)
}

/// Helm 3, which the chart supports too.
pub fn helm_with(bin: &Path, args: &[&str]) -> (bool, String, String) {
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
pub fn values_file(values: &Value) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(f.path(), values.to_string()).unwrap();
    f
}

/// `helm template`; Err(stderr) when helm refuses.
pub fn render(release: &str, namespace: &str, values: &Value) -> Result<String, String> {
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
pub struct Doc {
    pub text: String,
    pub value: Value,
}

impl Doc {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    /// Kinds whose CRDs (cert-manager, Prometheus Operator, Service Catalog,
    /// provider-osb) a bare control plane does not have.
    pub fn needs_crd(&self) -> bool {
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

pub fn split(stream: &str) -> Vec<Doc> {
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
pub fn applicable(docs: &[Doc]) -> String {
    docs.iter()
        .filter(|d| !d.needs_crd())
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Server-side apply with strict field validation; panics with kubectl's
/// words on failure, returns its output (warnings included).
pub fn apply_strict(k: &Cluster, yaml: &str) -> String {
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
pub async fn restricted_namespace(k: &Cluster, prefix: &str) -> String {
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

/// The Secrets the chart expects to exist: credentials, store key, TLS.
pub async fn secrets(k: &Cluster, ns: &str, fullname: &str, pki: &Pki, store_key: &str) {
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
            json!({"username": b64_encode(USER), "password": b64_encode(PASS)}),
        ),
    )
    .await;
    k.create(
        &path,
        secret(
            format!("{fullname}-store-key"),
            "Opaque",
            json!({"store.key": b64_encode(store_key)}),
        ),
    )
    .await;
    k.create(
        &path,
        secret(
            format!("{fullname}-tls"),
            "kubernetes.io/tls",
            json!({"tls.crt": b64_encode(&pki.cert), "tls.key": b64_encode(&pki.key), "ca.crt": b64_encode(&pki.ca)}),
        ),
    )
    .await;
}

pub fn store_key() -> String {
    let bytes: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

pub struct Pki {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// A CA and a serving certificate for localhost and the Service's names.
pub fn pki(fullname: &str, ns: &str) -> Pki {
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
pub fn example_catalog(only: Option<&str>) -> Value {
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
