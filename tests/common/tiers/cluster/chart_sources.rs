//! Helpers of the tests in tests/cluster/chart_sources.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

use common::cluster::BrokerIdentity;
use common::{TestBroker, helm_bin};

/// The default `message` of the chart the repository serves: only the
/// fetched chart renders it (the broker's charts directory is empty).
pub const MARK: &str = "served by the test repository";

/// The private sources' secrets: none may appear in a message or a log.
pub const USERNAME: &str = "chartbroker";
pub const PASSWORD: &str = "s3cret-repo-pass-7f3a";
pub const WRONG: &str = "wrong-pass-91b2c";
pub const TOKEN: &str = "tok-5e1d-private-c0ffee";
/// The variable a plan reads its password from (set only for the broker
/// process of `credentials_never_reach_the_log`).
pub const PASSWORD_ENV: &str = "CB_TEST_PRIVATE_REPO_PASSWORD";

// === a file server: Helm repository and OCI registry in one ===

#[derive(Clone)]
pub struct Entry {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub digest: Option<String>,
}

/// Serves fixed bodies by path and counts requests per path. Paths under
/// a guarded prefix need its exact `Authorization` header.
#[derive(Clone, Default)]
pub struct Server {
    pub files: Arc<Mutex<HashMap<String, Entry>>>,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    pub guards: Arc<Mutex<Vec<(String, String)>>>,
    pub refused: Arc<Mutex<usize>>,
}

impl Server {
    pub fn put(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &'static str,
        digest: Option<String>,
    ) {
        let entry = Entry {
            body,
            content_type,
            digest,
        };
        self.files.lock().unwrap().insert(path.to_string(), entry);
    }

    /// Paths starting with `prefix` need `Authorization: <header>`.
    pub fn guard(&self, prefix: &str, header: String) {
        self.guards
            .lock()
            .unwrap()
            .push((prefix.to_string(), header));
    }

    pub fn refused(&self) -> usize {
        *self.refused.lock().unwrap()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// A Helm repository at `/<prefix>/`: the index and the archive (and
    /// its provenance file).
    pub fn repository(&self, prefix: &str, index: &[u8], tgz: &[u8], prov: Option<&[u8]>) {
        self.put(
            &format!("/{prefix}/index.yaml"),
            index.to_vec(),
            "text/yaml",
            None,
        );
        let gz = "application/gzip";
        self.put(&format!("/{prefix}/tiny-0.1.0.tgz"), tgz.to_vec(), gz, None);
        if let Some(p) = prov {
            let at = format!("/{prefix}/tiny-0.1.0.tgz.prov");
            self.put(&at, p.to_vec(), "text/plain", None);
        }
    }

    /// An OCI repository `name` with tag 0.1.0: an image manifest whose
    /// config is helm's chart config and whose layers are the chart (and the
    /// provenance file).
    pub fn oci(&self, name: &str, tgz: &[u8], prov: Option<&[u8]>) {
        let json = "application/json";
        self.put("/v2/", b"{}".to_vec(), json, None);
        let config = json!({"apiVersion": "v2", "name": "tiny", "version": "0.1.0",
            "description": "A small chart for chartbroker's tests"})
        .to_string()
        .into_bytes();
        let mut layers = vec![json!({
            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "digest": sha256(tgz), "size": tgz.len(),
        })];
        if let Some(p) = prov {
            layers.push(json!({
                "mediaType": "application/vnd.cncf.helm.chart.provenance.v1.prov",
                "digest": sha256(p), "size": p.len(),
            }));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json",
                "digest": sha256(&config), "size": config.len()},
            "layers": layers,
        })
        .to_string()
        .into_bytes();
        let mt = "application/vnd.oci.image.manifest.v1+json";
        let md = sha256(&manifest);
        for reference in ["0.1.0", md.as_str()] {
            let at = format!("/v2/{name}/manifests/{reference}");
            self.put(&at, manifest.clone(), mt, Some(md.clone()));
        }
        let blobs = [Some(&config[..]), Some(tgz), prov];
        for blob in blobs.into_iter().flatten() {
            let d = sha256(blob);
            let at = format!("/v2/{name}/blobs/{d}");
            self.put(&at, blob.to_vec(), "application/octet-stream", Some(d));
        }
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(serve).with_state(self.clone())
    }
}

pub async fn serve(State(s): State<Server>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let wanted = (s.guards.lock().unwrap().iter())
        .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        .map(|(_, header)| header.clone());
    if let Some(want) = wanted {
        let given = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if given != Some(want.as_bytes()) {
            *s.refused.lock().unwrap() += 1;
            let challenge = if want.starts_with("Bearer") {
                r#"Bearer realm="test""#
            } else {
                r#"Basic realm="Registry Realm""#
            };
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                "authentication required",
            )
                .into_response();
        }
    }
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let found = s.files.lock().unwrap().get(&path).cloned();
    match found {
        Some(e) => {
            let mut r = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, e.content_type)],
                e.body,
            )
                .into_response();
            if let Some(d) = e.digest {
                let v = HeaderValue::from_str(&d).unwrap();
                r.headers_mut().insert("docker-content-digest", v);
            }
            r
        }
        None if path.starts_with("/v2/") => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// === fixtures ===

pub fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A CA (PEM) and a server certificate and key for `localhost` signed by it.
pub fn pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// Runs a tool with a clean environment; panics with its stderr on failure.
pub fn run(program: &Path, args: &[&str], env: &[(&str, &Path)]) -> Vec<u8> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Throwaway gpg keys: `secring.gpg` and `pubring.gpg` of "Chart Signer"
/// (legacy keyring files, as helm reads them) and `stranger.gpg`, another
/// key's public keyring. `None` when gpg is not installed. Dropping it stops
/// the gpg agents it started.
pub struct Keys {
    pub secring: PathBuf,
    pub pubring: PathBuf,
    pub stranger: PathBuf,
    pub homes: Vec<PathBuf>,
}

impl Keys {
    pub fn generate(dir: &Path) -> Option<Keys> {
        // scripts/install-tools.sh installs gnupg when it is missing, so a
        // machine without it is a broken setup, not a reason to skip.
        let gpg = which("gpg").unwrap_or_else(|_| {
            panic!("gpg is not installed (Debian: gnupg) — run scripts/install-tools.sh")
        });
        let mut keys = Keys {
            secring: dir.join("secring.gpg"),
            pubring: dir.join("pubring.gpg"),
            stranger: dir.join("stranger.gpg"),
            homes: Vec::new(),
        };
        for (who, public, secret) in [
            (
                "Chart Signer <signer@example.com>",
                &keys.pubring,
                Some(&keys.secring),
            ),
            ("Stranger <stranger@example.com>", &keys.stranger, None),
        ] {
            let home = dir.join(format!("gnupg-{}", keys.homes.len()));
            std::fs::create_dir_all(&home).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
            keys.homes.push(home.clone());
            let env = [("GNUPGHOME", home.as_path())];
            let batch = ["--batch", "--passphrase", "", "--quick-gen-key", who];
            run(
                &gpg,
                &[&batch[..], &["rsa2048", "sign", "never"]].concat(),
                &env,
            );
            std::fs::write(public, run(&gpg, &["--batch", "--export"], &env)).unwrap();
            if let Some(s) = secret {
                let sec = run(&gpg, &["--batch", "--export-secret-keys"], &env);
                std::fs::write(s, sec).unwrap();
            }
        }
        Some(keys)
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        for home in &self.homes {
            let _ = Command::new("gpgconf")
                .args(["--kill", "gpg-agent"])
                .env("GNUPGHOME", home)
                .output();
        }
    }
}

pub fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// The CNCF distribution registry (`.tools/bin/registry`, or
/// `CHARTBROKER_REGISTRY`) on loopback, TLS with the test CA's `localhost`
/// certificate (`<dir>/server.pem`), htpasswd auth: every request needs
/// `USERNAME`/`PASSWORD`. Killed when dropped.
pub struct Registry {
    pub _proc: common::process::Proc,
    pub port: u16,
    pub log: PathBuf,
}

/// bcrypt (cost 4) of `PASSWORD`, as `htpasswd -B` writes it; made with
/// golang.org/x/crypto/bcrypt, the registry's own implementation.
pub const PASSWORD_BCRYPT: &str = "$2a$04$2A8F.eE.VYfLKkHFJJO.o.OPqrqqLIDCjA1RhrfO7ObVsJN6X.GEC";

impl Registry {
    pub async fn start(dir: &Path) -> Registry {
        let bin = std::env::var_os("CHARTBROKER_REGISTRY")
            .map(PathBuf::from)
            .unwrap_or_else(|| common::repo().join(".tools/bin/registry"));
        assert!(
            bin.is_file(),
            "the OCI registry is not at {} — run scripts/install-tools.sh or set CHARTBROKER_REGISTRY",
            bin.display()
        );
        let root = dir.join("registry");
        std::fs::create_dir_all(root.join("storage")).unwrap();
        let htpasswd = root.join("htpasswd");
        std::fs::write(&htpasswd, format!("{USERNAME}:{PASSWORD_BCRYPT}\n")).unwrap();
        let port = common::process::free_port();
        let p = |p: &Path| p.to_str().unwrap().to_string();
        // JSON is YAML.
        let config = json!({
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": false}},
            "storage": {"filesystem": {"rootdirectory": p(&root.join("storage"))}},
            "http": {"addr": format!("127.0.0.1:{port}"),
                "tls": {"certificate": p(&dir.join("server.pem")), "key": p(&dir.join("server.key"))}},
            "auth": {"htpasswd": {"realm": "chartbroker-tests", "path": p(&htpasswd)}},
        });
        let config_file = root.join("config.yml");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let log = root.join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config_file)
            .env_clear()
            .env("OTEL_TRACES_EXPORTER", "none")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let registry = Registry {
            _proc: common::process::Proc(child),
            port,
            log,
        };
        // Up once it challenges an anonymous client.
        let ca = std::fs::read(dir.join("catalog/certs/ca.pem")).unwrap();
        let ca = reqwest::Certificate::from_pem(&ca).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .unwrap();
        for _ in 0..200 {
            if let Ok(r) = client
                .get(format!("https://localhost:{port}/v2/"))
                .send()
                .await
            {
                assert_eq!(
                    r.status(),
                    reqwest::StatusCode::UNAUTHORIZED,
                    "the registry must demand credentials"
                );
                return registry;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the registry did not start: {}",
            std::fs::read_to_string(&registry.log).unwrap_or_default()
        );
    }

    /// What the registry logged (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Everything one test needs: repositories and registry on one HTTPS
/// server, a catalog of plans on them, and a broker (render engine) whose
/// charts directory is empty.
pub struct Env {
    pub broker: TestBroker,
    pub registry: Registry,
    pub server: Server,
    pub dir: tempfile::TempDir,
    /// The unsigned archive every `stable` plan fetches.
    pub tgz: Vec<u8>,
    pub keys: Option<Keys>,
    pub port: u16,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(None).await
    }

    /// With a cluster identity: the helm engine installs as it.
    pub async fn start_with(cluster: Option<&BrokerIdentity>) -> Env {
        Self::start_full(cluster, helm_bin()).await
    }

    /// With the broker running this helm binary.
    pub async fn start_full(cluster: Option<&BrokerIdentity>, broker_helm: PathBuf) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let helm = helm_bin();
        let home = root.join("helm-home");
        let henv = [("HOME", home.as_path())];
        let helm_run = |args: &[&str]| run(&helm, args, &henv);
        let p = |p: &Path| p.to_str().unwrap().to_string();

        // The chart: the tiny fixture, with a default only the served copy has.
        let src = root.join("src/tiny");
        copy_dir(&common::fixtures().join("charts/tiny"), &src);
        std::fs::write(
            src.join("values.yaml"),
            format!("replicas: 1\npassword: \"\"\nmessage: {MARK}\n"),
        )
        .unwrap();
        let plain = root.join("pkg/plain");
        helm_run(&["package", &p(&src), "--destination", &p(&plain)]);
        helm_run(&["repo", "index", &p(&plain)]);
        let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
        let tgz = read(&plain, "tiny-0.1.0.tgz");
        let index = read(&plain, "index.yaml");

        let server = Server::default();
        for prefix in ["stable", "concurrent"] {
            server.repository(prefix, &index, &tgz, None);
        }
        server.oci("charts/tiny", &tgz, None);
        let basic = |user: &str, pass: &str| {
            use base64::Engine as _;
            let pair = format!("{user}:{pass}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        for prefix in ["private", "private-signed"] {
            server.repository(prefix, &index, &tgz, None);
            server.guard(&format!("/{prefix}/"), basic(USERNAME, PASSWORD));
        }
        server.repository("private-token", &index, &tgz, None);
        server.guard("/private-token/", format!("Bearer {TOKEN}"));

        let catalog = root.join("catalog");
        std::fs::create_dir_all(catalog.join("keys")).unwrap();
        std::fs::create_dir_all(catalog.join("certs")).unwrap();
        std::fs::create_dir_all(root.join("charts")).unwrap();

        let keys = Keys::generate(root);
        if let Some(k) = &keys {
            let signed = root.join("pkg/signed");
            helm_run(&[
                "package",
                &p(&src),
                "--destination",
                &p(&signed),
                "--sign",
                "--key",
                "Chart Signer",
                "--keyring",
                &p(&k.secring),
            ]);
            helm_run(&["repo", "index", &p(&signed)]);
            let (stgz, prov, sindex) = (
                read(&signed, "tiny-0.1.0.tgz"),
                read(&signed, "tiny-0.1.0.tgz.prov"),
                read(&signed, "index.yaml"),
            );
            server.repository("signed", &sindex, &stgz, Some(&prov));
            let mut tampered = stgz.clone();
            tampered.extend_from_slice(b"tampered");
            server.repository("tampered", &sindex, &tampered, Some(&prov));
            server.oci("signed/tiny", &stgz, Some(&prov));
            server.repository("private-signed", &sindex, &stgz, Some(&prov));
            std::fs::copy(&k.pubring, catalog.join("keys/pubring.gpg")).unwrap();
            std::fs::copy(&k.stranger, catalog.join("keys/stranger.gpg")).unwrap();
        }

        let (ca, cert, key) = pki();
        std::fs::write(catalog.join("certs/ca.pem"), &ca).unwrap();
        std::fs::write(root.join("server.pem"), &cert).unwrap();
        std::fs::write(root.join("server.key"), &key).unwrap();
        let registry = Registry::start(root).await;
        let rport = registry.port;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);

        let repo = |prefix: &str| format!("https://localhost:{port}/{prefix}");
        let oci = |name: &str| format!("oci://localhost:{port}/{name}");
        let ca_file = "certs/ca.pem";
        let digest = sha256(&tgz);
        let zeros = format!("sha256:{}", "0".repeat(64));
        let r = |prefix: &str, extra: Value| {
            let mut c = json!({"repository": repo(prefix), "name": "tiny", "version": "0.1.0", "ca_file": ca_file});
            merge(&mut c, extra);
            c
        };
        let o = |name: &str, extra: Value| {
            let mut c = json!({"oci": oci(name), "version": "0.1.0", "ca_file": ca_file});
            merge(&mut c, extra);
            c
        };
        let verify = |keyring: &str| json!({"verify": true, "keyring": format!("keys/{keyring}")});
        let secrets = root.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(secrets.join("password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(secrets.join("wrong"), WRONG).unwrap();
        std::fs::write(secrets.join("token"), TOKEN).unwrap();
        let pair = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"))
        };
        let host = format!("localhost:{rport}");
        let docker = json!({"auths": {host: {"auth": pair}}});
        std::fs::write(secrets.join("docker.json"), docker.to_string()).unwrap();
        // The chart goes into the real registry the way a release pipeline
        // puts it there: helm push, with the same docker config.
        helm_run(&[
            "push",
            &p(&plain.join("tiny-0.1.0.tgz")),
            &format!("oci://localhost:{rport}/private"),
            "--registry-config",
            &p(&secrets.join("docker.json")),
            "--ca-file",
            &p(&catalog.join("certs/ca.pem")),
        ]);
        let private_oci = |extra: Value| {
            let mut c = json!({"oci": format!("oci://localhost:{rport}/private/tiny"),
                "version": "0.1.0", "ca_file": ca_file});
            merge(&mut c, extra);
            c
        };
        let secret = |f: &str| secrets.join(f).to_str().unwrap().to_string();
        let with_password = |source: Value| json!({"auth": {"basic": {"username": USERNAME, "password_file": source}}});
        let mut plans = vec![
            plan("repo", r("stable", json!({"digest": digest}))),
            bindable(plan("repo-bound", r("stable", json!({"digest": digest})))),
            plan("concurrent", r("concurrent", json!({}))),
            plan("wrong-version", r("stable", json!({"version": "9.9.9"}))),
            plan("bad-digest", r("stable", json!({"digest": zeros}))),
            plan(
                "unreachable",
                json!({"repository": format!("https://localhost:{closed_port}/stable"),
                "name": "tiny", "version": "0.1.0", "ca_file": ca_file}),
            ),
            plan(
                "no-ca",
                json!({"repository": repo("stable"), "name": "tiny", "version": "0.1.0"}),
            ),
            plan("oci", o("charts/tiny", json!({"digest": digest}))),
            plan(
                "oci-wrong-version",
                o("charts/tiny", json!({"version": "0.2.0"})),
            ),
            plan("oci-bad-digest", o("charts/tiny", json!({"digest": zeros}))),
            plan(
                "private",
                r("private", with_password(json!(secret("password")))),
            ),
            plan(
                "private-token",
                r(
                    "private-token",
                    json!({"auth": {"bearer": {"token_file": secret("token")}}}),
                ),
            ),
            plan(
                "private-env",
                r(
                    "private",
                    json!({"auth": {"basic": {"username": USERNAME, "password_env": PASSWORD_ENV}}}),
                ),
            ),
            plan(
                "private-wrong",
                r("private", with_password(json!(secret("wrong")))),
            ),
            plan("private-no-auth", r("private", json!({}))),
            plan(
                "private-no-file",
                r("private", with_password(json!(secret("absent")))),
            ),
            plan(
                "private-wrong-token",
                r(
                    "private-token",
                    json!({"auth": {"bearer": {"token_file": secret("password")}}}),
                ),
            ),
            plan(
                "oci-private",
                private_oci(with_password(json!(secret("password")))),
            ),
            plan(
                "oci-docker-config",
                private_oci(json!({"auth": {"docker_config": secret("docker.json")}})),
            ),
            plan(
                "oci-private-wrong",
                private_oci(with_password(json!(secret("wrong")))),
            ),
            plan("oci-private-no-auth", private_oci(json!({}))),
            bindable(plan(
                "oci-private-bound",
                private_oci(with_password(json!(secret("password")))),
            )),
        ];
        if keys.is_some() {
            plans.extend([
                plan("signed", r("signed", verify("pubring.gpg"))),
                plan("stranger", r("signed", verify("stranger.gpg"))),
                plan("tampered", r("tampered", verify("pubring.gpg"))),
                plan("unsigned", r("stable", verify("pubring.gpg"))),
                plan("oci-signed", o("signed/tiny", verify("pubring.gpg"))),
                plan("oci-stranger", o("signed/tiny", verify("stranger.gpg"))),
                plan("oci-unsigned", o("charts/tiny", verify("pubring.gpg"))),
                plan("private-signed", {
                    let mut c = r("private-signed", verify("pubring.gpg"));
                    merge(&mut c, with_password(json!(secret("password"))));
                    c
                }),
            ]);
        }
        let doc = json!({"services": [{
            "id": "svc-tiny", "name": "tiny", "description": "Charts from remote sources",
            "bindable": false, "plans": plans,
        }]});
        std::fs::write(catalog.join("remote.yaml"), doc.to_string()).unwrap();

        let settings = chartbroker::tls::TlsSettings {
            cert: root.join("server.pem"),
            key: root.join("server.key"),
            client_ca: None,
        };
        let app = server.router();
        tokio::spawn(async move {
            chartbroker::server::run(app, listener, Some(&settings), std::future::pending())
                .await
                .unwrap();
        });

        let data = tempfile::tempdir().unwrap();
        let mut cfg = common::config(data.path());
        cfg.catalog_dir = catalog;
        cfg.charts_dir = root.join("charts");
        cfg.helm_timeout = Duration::from_secs(20);
        cfg.helm = broker_helm;
        if let Some(id) = cluster {
            cfg.engine = chartbroker::runtime::Engine::Helm;
            // These requests carry no originating identity; authorization has its own suites.
            cfg.subject_access_review = false;
            cfg.kubeconfig = Some(id.kubeconfig.clone());
            cfg.state_namespace = id.state_namespace.clone();
            cfg.release_identity = id.identity_names();
            cfg.helm_timeout = Duration::from_secs(120);
        }
        let broker = TestBroker::with_config(data, cfg).await;
        Env {
            broker,
            server,
            dir,
            tgz,
            keys,
            port,
            registry,
        }
    }

    /// The test server's port.
    pub fn server_port(&self) -> u16 {
        self.port
    }

    /// Provisions synchronously and returns the rendered manifests.
    pub async fn provision(&self, instance: &str, plan: &str) -> String {
        self.broker.provision_sync(instance, plan, json!({})).await;
        let path = self.broker.release_dir(instance).join("manifests.yaml");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Provisions asynchronously, expects the operation to fail and returns
    /// its description; nothing may have been rendered.
    pub async fn fails(&self, instance: &str, plan: &str) -> String {
        let op = self.broker.provision_async(instance, plan, json!({})).await;
        let r = self.broker.wait_instance(instance, &op).await;
        assert_eq!(r.json["state"], "failed", "{plan}: {}", r.text);
        assert!(!self.broker.release_dir(instance).exists(), "{plan}");
        r.json["description"].as_str().unwrap().to_string()
    }

    /// The cache: every entry complete (a record beside its archive), no
    /// temporary directory left. Returns the records.
    pub fn cache(&self) -> Vec<Value> {
        let root = self.broker.data.path().join("charts");
        let mut records = Vec::new();
        for e in std::fs::read_dir(&root).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-"),
                "a temporary directory was left: {name}"
            );
            let record: Value =
                serde_json::from_slice(&std::fs::read(e.path().join("source.json")).unwrap())
                    .unwrap();
            assert!(e.path().join(record["archive"].as_str().unwrap()).is_file());
            records.push(record);
        }
        records
    }
}

pub fn merge(into: &mut Value, extra: Value) {
    for (k, v) in extra.as_object().unwrap() {
        into[k] = v.clone();
    }
}

pub fn plan(id: &str, mut chart: Value) -> Value {
    merge(
        &mut chart,
        json!({"values": {"message": "{{parameters.message}}"}}),
    );
    json!({"id": id, "name": id, "description": format!("remote chart: {id}"), "chart": chart})
}

/// The plan, bindable (credentials that need no lookup).
pub fn bindable(mut plan: Value) -> Value {
    plan["bindable"] = json!(true);
    plan["chart"]["credentials"] = json!({"source": "remote"});
    plan
}

impl Env {
    /// One provisioned instance `{prefix}-{i}` with a binding `b{i}` per
    /// delete path.
    pub async fn bound_instances(&self, prefix: &str, plan: &str) {
        for i in 0..common::deletes::Delete::ALL.len() {
            let id = format!("{prefix}-{i}");
            self.provision(&id, plan).await;
            let r = self
                .broker
                .call(
                    Method::PUT,
                    &format!("/v2/service_instances/{id}/service_bindings/b{i}"),
                    Some(common::bind_body(plan, json!({}))),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
    }

    /// Each delete path on its instance of [`Env::bound_instances`]
    /// succeeds and leaves nothing: no binding Secret, no release, a
    /// repeat answers 410.
    pub async fn deletes_succeed(&self, prefix: &str, plan: &str, fault: &str) {
        use common::deletes::Delete;
        for (i, how) in Delete::ALL.into_iter().enumerate() {
            let (id, bid) = (format!("{prefix}-{i}"), format!("b{i}"));
            let cell = format!("{fault} × {how:?}");
            let seen = self.broker.delete(how, ("svc-tiny", plan), &id, &bid).await;
            seen.assert_succeeded(&cell);
            let bindings = self.broker.release_dir(&id).join("bindings");
            assert!(
                std::fs::read_dir(&bindings).map_or(true, |mut d| d.next().is_none()),
                "{cell}: a binding Secret is left"
            );
            if !how.unbinds() {
                assert!(
                    !self.broker.release_dir(&id).exists(),
                    "{cell}: the release is left"
                );
            }
            let again = self.broker.delete(how, ("svc-tiny", plan), &id, &bid).await;
            assert_eq!(
                again.answer.status,
                StatusCode::GONE,
                "{cell}: {}",
                again.answer.text
            );
        }
    }
}

/// Every form a secret of the private sources may take in a text (plain,
/// base64 in a Basic header, JSON, hex...) is absent from it.
pub fn assert_no_secret(text: &str, what: &str) {
    let secrets = [PASSWORD, WRONG, TOKEN].map(String::from);
    assert_eq!(
        chartbroker::redact::redact(text, &secrets),
        text,
        "{what} shows a credential"
    );
}
