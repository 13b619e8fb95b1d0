use super::*;

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
