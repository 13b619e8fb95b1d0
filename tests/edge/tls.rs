//! TLS and mutual TLS on the real listener (rustls, ring), with a CA and
//! leaf certificates made by rcgen.

use crate::common;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};

use crate::helpers::tls::*;
use common::{PASS, TestBroker, USER};

#[tokio::test]
async fn tls_serves_the_api() {
    let (pki, _dir, url) = serve(false).await;
    assert_eq!(catalog(&client(&pki, None), &url).await.unwrap(), 200);
    // Plain HTTP to the TLS port does not get an answer.
    let plain = url.replace("https://", "http://");
    assert!(
        reqwest::Client::new()
            .get(format!("{plain}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_ca() {
    let (pki, _dir, url) = serve(true).await;
    assert_eq!(
        catalog(&client(&pki, Some(&pki.client_identity)), &url)
            .await
            .unwrap(),
        200
    );
    assert!(
        catalog(&client(&pki, None), &url).await.is_err(),
        "no client certificate"
    );
    assert!(
        catalog(&client(&pki, Some(&pki.stranger_identity)), &url)
            .await
            .is_err(),
        "certificate from another CA"
    );
}

/// A client certificate listed in the credentials file (by the SHA-256 of
/// its DER) is a platform credential of its own, with its own trust; one
/// the CA signed but the file doesn't list gets 401, and an `Authorization`
/// header, when sent, is what is judged.
#[tokio::test]
async fn a_listed_client_certificate_is_a_credential_with_its_own_trust() {
    install_ring();
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = ca();
    let (server_cert, server_key) = leaf(&issuer, vec!["localhost".into()], false);
    let cert = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let c = params.signed_by(&key, &issuer).unwrap();
        let sha = ring::digest::digest(&ring::digest::SHA256, c.der());
        let hex: Vec<String> = sha.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        (format!("{}{}", c.pem(), key.serialize_pem()), hex.join(":"))
    };
    let (listed, fingerprint) = cert("ci-platform");
    let (unlisted, _) = cert("other-platform");
    let pki = Pki {
        ca_pem,
        server_cert,
        server_key,
        client_identity: listed,
        stranger_identity: unlisted,
    };
    let creds = dir.path().join("credentials.yaml");
    std::fs::write(
        &creds,
        format!(
            "certificates:\n  - sha256: \"{fingerprint}\"\n    name: ci\n    identity: platform\n    namespaces: [apps]\n"
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut cfg = common::config(data.path());
    cfg.catalog_dir = common::fixtures().join("catalog-platform");
    cfg.credentials_file = Some(creds);
    let broker = TestBroker::with_config(data, cfg).await;
    let url = serve_broker(broker, dir.path(), &pki, true);

    let put = |c: &reqwest::Client, id: &str, ns: &str, basic: Option<(&str, &str)>| {
        let mut r = c
            .put(format!("{url}/v2/service_instances/{id}"))
            .header("X-Broker-API-Version", "2.17")
            .json(
                &serde_json::json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f",
                "context": {"platform": "kubernetes", "namespace": ns},
                "parameters": {"database": "shop"}}),
            );
        if let Some((u, p)) = basic {
            r = r.basic_auth(u, Some(p));
        }
        r.send()
    };
    let ci = client(&pki, Some(&pki.client_identity));
    let other = client(&pki, Some(&pki.stranger_identity));
    // The listed certificate alone: in, with its namespaces.
    assert_eq!(put(&ci, "mt-1", "apps", None).await.unwrap().status(), 201);
    assert_eq!(put(&ci, "mt-2", "other", None).await.unwrap().status(), 403);
    // Signed by the CA but not listed: the handshake passes, the API says 401.
    let r = put(&other, "mt-3", "apps", None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // A wrong header next to the listed certificate is refused; the test
    // user's header is judged as that user (no namespace list).
    let r = put(&ci, "mt-4", "apps", Some((USER, "wrong")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = put(&ci, "mt-5", "other", Some((USER, PASS))).await.unwrap();
    assert_eq!(r.status(), 201);
}
