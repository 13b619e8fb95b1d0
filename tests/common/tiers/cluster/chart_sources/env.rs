use super::*;

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
        // Basic auth with the password in `file`; a bearer token in `file`.
        let password = |file: &str| with_password(json!(secret(file)));
        let token = |file: &str| json!({"auth": {"bearer": {"token_file": secret(file)}}});
        let from_env =
            json!({"auth": {"basic": {"username": USERNAME, "password_env": PASSWORD_ENV}}});
        let docker = json!({"auth": {"docker_config": secret("docker.json")}});
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
            plan("private", r("private", password("password"))),
            plan("private-token", r("private-token", token("token"))),
            plan("private-env", r("private", from_env)),
            plan("private-wrong", r("private", password("wrong"))),
            plan("private-no-auth", r("private", json!({}))),
            plan("private-no-file", r("private", password("absent"))),
            plan("private-wrong-token", r("private-token", token("password"))),
            plan("oci-private", private_oci(password("password"))),
            plan("oci-docker-config", private_oci(docker)),
            plan("oci-private-wrong", private_oci(password("wrong"))),
            plan("oci-private-no-auth", private_oci(json!({}))),
            bindable(plan("oci-private-bound", private_oci(password("password")))),
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
                    merge(&mut c, password("password"));
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
    /// `--catalog <dir>/catalog --charts <dir>/charts --helm <helm 4>`: the
    /// broker binary's flags for this environment.
    pub fn broker_args(&self) -> Vec<std::ffi::OsString> {
        let root = self.dir.path();
        vec![
            "--catalog".into(),
            root.join("catalog").into(),
            "--charts".into(),
            root.join("charts").into(),
            "--helm".into(),
            common::helm_bin().into(),
        ]
    }

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
    /// [`Env::fails`] with a description naming every one of `needles`.
    pub async fn fails_naming(&self, instance: &str, plan: &str, needles: &[&str]) -> String {
        let d = self.fails(instance, plan).await;
        for needle in needles {
            assert!(d.contains(needle), "{plan}: {needle:?} in {d}");
        }
        d
    }

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
