use super::*;

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
        let how = "the OCI registry: run scripts/install-tools.sh";
        let bin = common::cluster_calls::tool("CHARTBROKER_REGISTRY", ".tools/bin/registry", how);
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
