use super::*;

// ---------------------------------------------------------------------------
// A kubelet and container runtime, as far as this test needs one.
// ---------------------------------------------------------------------------

/// `ENV` of deploy/Dockerfile's final stage: the image's defaults.
pub fn image_env() -> BTreeMap<String, String> {
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

pub fn push_env(env: &mut BTreeMap<String, String>, part: &str) {
    for kv in part.trim_end_matches('\\').split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
}

/// Where the image's own files are in this checkout.
pub fn image_path(path: &str) -> Option<PathBuf> {
    match path {
        "/usr/local/bin/helm" => Some(helm_bin()),
        "/opt/chartbroker/charts" => Some(repo().join("charts")),
        "/opt/chartbroker/catalog" => Some(repo().join("catalog")),
        _ => None,
    }
}

/// A broker process started from a rendered Deployment.
pub struct Pod {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
    pub _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn decode(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

impl Pod {
    pub async fn start(k: &Cluster, ns: &str, docs: &[Doc], client: &reqwest::Client) -> Pod {
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
        let mut from_secrets = std::collections::BTreeSet::new();
        for e in c["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap().to_string();
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                // A Secret's value is data, never a path to map (a base64
                // key may well start with '/').
                from_secrets.insert(name.clone());
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
            if !value.starts_with('/') || from_secrets.contains(name) {
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn osb(
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

    /// An asynchronous `method` on instance `path` (`&query` follows
    /// `accepts_incomplete=true`) that must answer 202: its operation.
    pub async fn begin(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> String {
        let uri = format!("{path}?accepts_incomplete=true{query}");
        let (s, r) = self.osb(client, method, &uri, body).await;
        assert_eq!(s, 202, "{uri}: {r}");
        r["operation"].as_str().unwrap().to_string()
    }

    /// [`Pod::settle`] that must end 200 `succeeded`; `log` (a replica's
    /// log) is shown when not.
    pub async fn settled(&self, client: &reqwest::Client, path: &str, op: &str, log: &Pod) {
        let (s, last) = self.settle(client, path, op).await;
        let state = (s, last["state"].as_str());
        assert_eq!(
            state,
            (200, Some("succeeded")),
            "{last}\n{}",
            log.log_text()
        );
    }

    /// Polls last_operation until it leaves `in progress`.
    pub async fn settle(&self, client: &reqwest::Client, path: &str, op: &str) -> (u16, Value) {
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
pub fn project(dir: &Path, data: &Value, items: &Value, bytes: impl Fn(&Value) -> Vec<u8>) {
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

pub fn https_client(pki: &Pki) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

pub fn provision(ns: &str) -> Value {
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
pub fn value_sets(name: &str, targets: &[String]) -> Vec<(&'static str, Value)> {
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
                "registration": {"serviceCatalog": {"enabled": true, "caBundle": b64_encode("ca")},
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

pub fn collect(dir: &Path, rel: &str, out: &mut Vec<String>) {
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

/// Renders, applies and creates the Secrets for one broker from the chart.
pub async fn install(
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
