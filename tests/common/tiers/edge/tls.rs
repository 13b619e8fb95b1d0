//! Helpers of the tests in tests/edge/tls.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

use chartbroker::tls::TlsSettings;
use common::{PASS, TestBroker, USER};

pub struct Pki {
    pub ca_pem: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_identity: String,
    pub stranger_identity: String,
}

pub fn leaf(issuer: &Issuer<'_, KeyPair>, names: Vec<String>, client: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

pub fn ca() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

pub fn pki() -> Pki {
    let (ca_pem, issuer) = ca();
    let (server_cert, server_key) = leaf(&issuer, vec!["localhost".into()], false);
    let (cc, ck) = leaf(&issuer, vec!["platform".into()], true);
    let (_, other) = ca();
    let (sc, sk) = leaf(&other, vec!["stranger".into()], true);
    Pki {
        ca_pem,
        server_cert,
        server_key,
        client_identity: format!("{cc}{ck}"),
        stranger_identity: format!("{sc}{sk}"),
    }
}

/// rustls' ring provider, installed once per process.
pub fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A test broker served over TLS with a new [`pki`] (see [`serve_broker`]):
/// the PKI, the directory holding its files, and the URL.
pub async fn serve(mtls: bool) -> (Pki, tempfile::TempDir, String) {
    install_ring();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let url = serve_broker(TestBroker::start().await, dir.path(), &pki, mtls);
    (pki, dir, url)
}

/// Serves `broker` over TLS with `pki`'s server certificate (written to
/// `dir`), asking for client certificates of its CA when `mtls`: its URL.
pub fn serve_broker(broker: TestBroker, dir: &Path, pki: &Pki, mtls: bool) -> String {
    std::fs::write(dir.join("server.pem"), &pki.server_cert).unwrap();
    std::fs::write(dir.join("server.key"), &pki.server_key).unwrap();
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
    let settings = TlsSettings {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: mtls.then(|| dir.join("ca.pem")),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = broker.app.clone();
    tokio::spawn(async move {
        let _keep = broker;
        chartbroker::server::run(app, listener, Some(&settings), std::future::pending())
            .await
            .unwrap();
    });
    format!("https://localhost:{port}")
}

pub fn client(pki: &Pki, identity: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()]);
    if let Some(id) = identity {
        b = b.identity(reqwest::Identity::from_pem(id.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

pub async fn catalog(c: &reqwest::Client, url: &str) -> Result<u16, reqwest::Error> {
    c.get(format!("{url}/v2/catalog"))
        .basic_auth(USER, Some(PASS))
        .header("X-Broker-API-Version", "2.17")
        .send()
        .await
        .map(|r| r.status().as_u16())
}
