//! Helpers of the tests in tests/adapters/reload.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{Proc, free_port, http};
use common::{PASS, USER, fixtures, helm_bin};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

pub struct Broker {
    pub proc: Proc,
    pub port: u16,
    pub log: PathBuf,
    /// For an HTTPS broker: the client its metrics are read with.
    pub https: Option<reqwest::Client>,
}

impl Broker {
    pub fn hup(&self) {
        let pid = i32::try_from(self.proc.0.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exposition; empty while it can't be read (e.g. a client
    /// certificate the broker does not trust yet).
    pub async fn metrics(&self) -> String {
        let req = match &self.https {
            Some(c) => c.get(format!("https://localhost:{}/metrics", self.port)),
            None => reqwest::Client::new().get(self.url("/metrics")),
        };
        match req.send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits (bounded) until the exposition has `line`.
    pub async fn wait_metric(&self, line: &str) {
        for _ in 0..200 {
            if self.metrics().await.lines().any(|l| l == line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {line:?} in\n{}", self.metrics().await);
    }

    /// Waits (bounded) until GET /v2/catalog shows plan `plan` (or no
    /// longer does, when `present` is false), and returns the catalog.
    pub async fn wait_plan(&self, plan: &str, present: bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let (s, body) = http(reqwest::Method::GET, self.url("/v2/catalog"), None)
                .await
                .unwrap();
            assert_eq!(s, 200, "{body}");
            if plan_ids(&body).iter().any(|p| p == plan) == present {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("plan {plan} present={present} never held: {last}");
    }
}

pub fn plan_ids(catalog: &Value) -> Vec<String> {
    catalog["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["plans"].as_array().unwrap().iter())
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// A folder holding the test catalog as [`write_catalog`] writes it.
pub fn with_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_catalog(dir.path(), |_| {});
    dir
}

/// [`start`] over `dir`, rereading its files every `interval` seconds ("0":
/// on SIGHUP only), once it is ready.
pub async fn start_ready(dir: &Path, interval: &str) -> Broker {
    let b = start(dir, &["--reload-interval", interval], |_| {});
    common::process::ready(b.port).await;
    b
}

pub fn start(dir: &Path, extra: &[&str], tweak: impl FnOnce(&mut Command)) -> Broker {
    let port = free_port();
    let log = dir.join("broker.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chartbroker"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--catalog")
        .arg(dir.join("catalog"))
        .arg("--charts")
        .arg(fixtures().join("charts"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("CHARTBROKER_HELM", helm_bin())
        .args(extra)
        .env("CHARTBROKER_USERNAME", USER)
        .env("CHARTBROKER_PASSWORD", PASS)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    tweak(&mut cmd);
    Broker {
        proc: Proc(cmd.spawn().expect("chartbroker starts")),
        port,
        log,
        https: None,
    }
}

/// The test catalog in `<dir>/catalog`, changed by `edit`.
pub fn write_catalog(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let text = std::fs::read_to_string(fixtures().join("catalog/test.yaml")).unwrap();
    let mut doc: Value = serde_saphyr::from_str(&text).unwrap();
    edit(&mut doc);
    std::fs::create_dir_all(dir.join("catalog")).unwrap();
    // Written aside and renamed, as an operator's tooling would.
    let tmp = dir.join("test.yaml.tmp");
    std::fs::write(&tmp, doc.to_string()).unwrap();
    std::fs::rename(&tmp, dir.join("catalog/test.yaml")).unwrap();
}

/// Adds a copy of plan-small as `plan-extra`.
pub fn with_extra_plan(doc: &mut Value) {
    let plans = doc["services"][0]["plans"].as_array_mut().unwrap();
    let mut extra = plans[0].clone();
    extra["id"] = json!("plan-extra");
    extra["name"] = json!("extra");
    plans.push(extra);
}

pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

pub async fn catalog_status(b: &Broker, user: &str, pass: &str) -> u16 {
    reqwest::Client::new()
        .get(b.url("/v2/catalog"))
        .header("Authorization", basic(user, pass))
        .header("X-Broker-API-Version", "2.17")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub struct Ca {
    pub pem: String,
    pub issuer: Issuer<'static, KeyPair>,
}

pub fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A localhost server certificate: (PEM, DER, key PEM).
pub fn server_cert(ca: &Ca, serial: u64) -> (String, Vec<u8>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from(serial));
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), cert.der().to_vec(), key.serialize_pem())
}

pub fn tls_client(ca: &Ca, reuse: bool) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Bounded: a request that never completes is retried by the waiting
    // loops instead of hanging the test (seen once under load in CI).
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
        .tls_info(true);
    if !reuse {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

/// The server's leaf certificate on a request through `client`.
pub async fn served_cert(client: &reqwest::Client, port: u16) -> Vec<u8> {
    let resp = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("TLS info")
        .to_vec();
    // Read to the end, so the connection goes back to the pool.
    resp.bytes().await.unwrap();
    der
}

/// A client certificate and key (PEM, concatenated) signed by `ca`.
pub fn client_identity(ca: &Ca) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["platform".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    format!("{}{}", cert.pem(), key.serialize_pem())
}
