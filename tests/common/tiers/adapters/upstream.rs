//! Helpers of the tests in tests/adapters/upstream.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;
use common::upstream as support;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use common::TestBroker;
use common::process::{Served, serve};
use support::*;

pub fn decode_identity(header: &Value) -> (String, Value) {
    let h = header
        .as_str()
        .expect("an originating identity was forwarded");
    let (platform, b64) = h.split_once(' ').unwrap();
    let json = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    (platform.to_string(), serde_json::from_slice(&json).unwrap())
}

/// Runs bind, update, plan change, unbind and deprovision of one instance and
/// checks what reached the upstream after each.
pub async fn lifecycle(cloud: &Cloud, b: &TestBroker, id: &str) {
    let done = provision_and_wait(
        b,
        id,
        "plan-premium",
        json!({"database": "shop", "size_gb": 10}),
    )
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let path = format!("/v2/service_instances/{id}");
    let puts = cloud.received("PUT", &path);
    assert_eq!(puts.len(), 1, "provision is sent once: {puts:#?}");
    let put = &puts[0];
    assert_eq!(put["query"]["accepts_incomplete"], "true");
    assert_eq!(put["api_version"], "2.17");
    assert_eq!(put["auth_user"], CLOUD_USER);
    assert_eq!(put["body"]["service_id"], MYSQL_SERVICE);
    assert_eq!(put["body"]["plan_id"], MYSQL_PREMIUM);
    assert_eq!(
        put["body"]["parameters"],
        json!({"database": "shop", "size_gb": 10})
    );
    assert_eq!(put["body"]["context"]["namespace"], "apps");
    assert_eq!(put["body"]["organization_guid"], "org-1");
    assert_eq!(
        decode_identity(&put["originating_identity"]),
        ("kubernetes".to_string(), identity().0)
    );
    assert_eq!(put["request_identity"], "req-7e1f");

    let r = b.call(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["plan_id"], "plan-premium");

    // Bind: credentials come from the upstream, to us and to the Secret.
    let op = bind(
        b,
        id,
        "bind-1",
        "svc-db",
        "plan-premium",
        json!({"app_guid": "app-1"}),
    )
    .await;
    let r = b.wait_binding(id, "bind-1", &op).await;
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    let bpath = format!("{path}/service_bindings/bind-1");
    let (status, upstream) = cloud.direct(reqwest::Method::GET, &bpath, None).await;
    assert_eq!(status, 200, "{upstream}");
    let ours = b.call(Method::GET, &bpath, None).await;
    assert_eq!(ours.status, StatusCode::OK, "{}", ours.text);
    assert_eq!(ours.json["credentials"], upstream["credentials"]);
    let password = upstream["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ours.json["credentials"]["host"],
        format!("{id}.db.cloud.example")
    );
    let bput = &cloud.received("PUT", &bpath)[0];
    assert_eq!(bput["body"]["service_id"], MYSQL_SERVICE);
    assert_eq!(bput["body"]["plan_id"], MYSQL_PREMIUM);
    assert_eq!(bput["body"]["bind_resource"]["app_guid"], "app-1");
    let secret = b.release_dir(id).join("bindings/cb-bind-bind-1.yaml");
    let manifest = std::fs::read_to_string(&secret).expect("binding Secret written");
    assert!(manifest.contains(r#""kind":"Secret""#), "{manifest}");
    assert!(
        manifest.contains(&password),
        "the upstream password is in the Secret"
    );

    // Update parameters, then change plan: both forwarded with mapped ids.
    let size = json!({"service_id": "svc-db", "parameters": {"size_gb": 20}});
    update_done(b, id, size).await;
    let plan = json!({"service_id": "svc-db", "plan_id": "plan-business"});
    update_done(b, id, plan).await;
    let patches = cloud.received("PATCH", &path);
    assert_eq!(patches.len(), 2, "{patches:#?}");
    assert_eq!(patches[0]["body"]["plan_id"], MYSQL_PREMIUM);
    assert_eq!(patches[0]["body"]["parameters"]["size_gb"], 20);
    assert_eq!(patches[1]["body"]["plan_id"], MYSQL_BUSINESS);
    let (_, inst) = cloud.direct(reqwest::Method::GET, &path, None).await;
    assert_eq!(inst["plan_id"], MYSQL_BUSINESS, "{inst}");

    // Unbind: upstream DELETE, Secret removed, our binding gone.
    unbind_done(b, &bpath, "plan-premium").await;
    assert!(!secret.exists());
    assert_eq!(cloud.received("DELETE", &bpath).len(), 1);

    // Deprovision: forwarded with the current (changed) plan.
    deprovision_done(b, id, "plan-business").await;
    let dels = cloud.received("DELETE", &path);
    assert_eq!(dels.len(), 1, "{dels:#?}");
    assert_eq!(dels[0]["query"]["plan_id"], MYSQL_BUSINESS);
    assert_eq!(dels[0]["query"]["service_id"], MYSQL_SERVICE);
    // The upstream instance is gone.
    cloud.assert_gone(&path).await;
}

// === restart: the real binary, kill -9 mid-poll ===

pub async fn start_binary(catalog: &std::path::Path, data: &std::path::Path) -> Served {
    let charts = common::fixtures().join("charts");
    serve(catalog, &charts, data, &common::helm_bin(), &[]).await
}

// === TLS: CA bundle and client certificate toward the upstream ===

pub mod pki {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    /// A CA, a server leaf for `localhost` and a client leaf, as PEM.
    pub struct Pki {
        pub ca: String,
        pub server: (String, String),
        pub client: (String, String),
    }

    pub fn leaf(issuer: &Issuer<'_, KeyPair>, name: &str, client: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        (
            params.signed_by(&key, issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    }

    pub fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap().pem();
        let issuer = Issuer::new(params, key);
        Pki {
            ca,
            server: leaf(&issuer, "localhost", false),
            client: leaf(&issuer, "chartbroker", true),
        }
    }
}

/// Serves the upstream broker behind HTTPS that demands a client
/// certificate from `pki`'s CA (chartbroker's own TLS listener code, with a
/// forwarding router); returns its URL.
pub async fn mtls_front(cloud_url: String, dir: &std::path::Path, pki: &pki::Pki) -> String {
    use axum::body::{Body, Bytes};
    use axum::extract::Request;
    use axum::response::Response;
    std::fs::write(dir.join("server.pem"), &pki.server.0).unwrap();
    std::fs::write(dir.join("server.key"), &pki.server.1).unwrap();
    std::fs::write(dir.join("ca.pem"), &pki.ca).unwrap();
    let settings = chartbroker::tls::TlsSettings {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: Some(dir.join("ca.pem")),
    };
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (client, base) = (client.clone(), cloud_url.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut fwd = client.request(
                reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap(),
                format!("{base}{}", parts.uri.path_and_query().unwrap()),
            );
            for (k, v) in &parts.headers {
                if k != "host" {
                    fwd = fwd.header(k.as_str(), v.as_bytes());
                }
            }
            let resp = fwd.body(body).send().await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap();
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .unwrap()
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        chartbroker::server::run(app, listener, Some(&settings), std::future::pending())
            .await
            .unwrap();
    });
    format!("https://localhost:{port}")
}
