//! Reload without restart, on the real binary: the catalog, the TLS
//! certificate and the credentials file are reread on SIGHUP and when their
//! files change; a broken one leaves the old in force, with a warning and
//! a failure counted; operations already running keep their plan.

use crate::common;
use common::upstream as support;

use std::time::Duration;

use crate::helpers::reload::*;
use common::process::{http, ready};
use common::{PASS, USER, gated_helm_in};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_catalog_and_a_broken_one_keeps_the_old() {
    let dir = with_catalog();
    let b = start_ready(dir.path(), "0").await;
    let before = b.wait_plan("plan-small", true).await;
    assert!(!plan_ids(&before).contains(&"plan-extra".to_string()));

    write_catalog(dir.path(), with_extra_plan);
    b.hup();
    b.wait_plan("plan-extra", true).await;
    b.wait_metric(r#"chartbroker_reloads_total{what="catalog"} 1"#)
        .await;
    assert!(
        b.metrics()
            .await
            .contains(r#"chartbroker_reload_last_success_timestamp_seconds{what="catalog"} "#)
    );

    // A catalog that does not lint: the previous one stays.
    std::fs::write(
        dir.path().join("catalog/test.yaml"),
        "services:\n  - id: x\n    plans: 3\n",
    )
    .unwrap();
    b.hup();
    b.wait_metric(r#"chartbroker_reload_failures_total{what="catalog"} 1"#)
        .await;
    let after = b.wait_plan("plan-extra", true).await;
    assert!(plan_ids(&after).contains(&"plan-small".to_string()));
    // Provisioning the reloaded plan works.
    let (s, body) = http(
        reqwest::Method::PUT,
        b.url("/v2/service_instances/on-extra"),
        Some(json!({
            "service_id": "svc-tiny", "plan_id": "plan-extra",
            "organization_guid": "org", "space_guid": "space",
            "context": {"platform": "kubernetes", "namespace": "apps"},
            "parameters": {"message": "hi"},
        })),
    )
    .await
    .unwrap();
    assert_eq!(s, 201, "{body}");

    let log = b.log();
    let warn: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reload failed"))
        .collect();
    assert_eq!(warn.len(), 1, "{log}");
    assert!(warn[0].contains("WARN"), "{}", warn[0]);
    assert!(warn[0].contains("catalog"), "{}", warn[0]);
    // Why: the lint problem, on the same line.
    assert!(warn[0].contains("test.yaml"), "{}", warn[0]);
    assert!(!log.contains("\x1b["), "no colours into a file: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_catalog_directory_is_reloaded_without_a_signal() {
    let dir = with_catalog();
    let b = start_ready(dir.path(), "1").await;
    b.wait_plan("plan-small", true).await;
    write_catalog(dir.path(), with_extra_plan);
    b.wait_plan("plan-extra", true).await;
    // And a plan removed.
    write_catalog(dir.path(), |doc| {
        doc["services"][0]["plans"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p["id"] != "plan-large");
    });
    b.wait_plan("plan-large", false).await;
    b.wait_metric(r#"chartbroker_reloads_total{what="catalog"} 2"#)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_operation_keeps_the_plan_it_started_with() {
    let dir = with_catalog();
    // helm template waits for the gate file, so the operation is in flight
    // across the reload.
    let (wrapper, gate) = gated_helm_in(dir.path());
    let w = wrapper.to_str().unwrap().to_string();
    let b = start(dir.path(), &["--reload-interval", "0"], |c| {
        c.env("CHARTBROKER_HELM", &w);
    });
    ready(b.port).await;

    let provision = |id: &str| {
        http(
            reqwest::Method::PUT,
            b.url(&format!(
                "/v2/service_instances/{id}?accepts_incomplete=true"
            )),
            Some(json!({
                "service_id": "svc-tiny", "plan_id": "plan-small",
                "organization_guid": "org", "space_guid": "space",
                "context": {"platform": "kubernetes", "namespace": "apps"},
                "parameters": {"message": "from-the-request"},
            })),
        )
    };
    let (s, body) = provision("early").await.unwrap();
    assert_eq!(s, 202, "{body}");
    let op = body["operation"].as_str().unwrap().to_string();
    // Held at the gate: counted as running.
    b.wait_metric(r#"chartbroker_operations_in_progress{kind="provision"} 1"#)
        .await;

    // The plan now renders a fixed message; the running operation must not
    // see it.
    write_catalog(dir.path(), |doc| {
        let plan = &mut doc["services"][0]["plans"][0];
        plan["chart"]["values"]["message"] = json!("from-the-reloaded-plan");
        plan["description"] = json!("reloaded");
    });
    b.hup();
    for _ in 0..200 {
        let (_, c) = http(reqwest::Method::GET, b.url("/v2/catalog"), None)
            .await
            .unwrap();
        if c["services"][0]["plans"][0]["description"] == "reloaded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&gate, b"").unwrap();
    let wait = |id: String, op: String| {
        let url = b.url(&format!(
            "/v2/service_instances/{id}/last_operation?operation={op}"
        ));
        async move {
            for _ in 0..400 {
                let (s, body) = http(reqwest::Method::GET, url.clone(), None).await.unwrap();
                assert_eq!(s, 200, "{body}");
                if body["state"] != "in progress" {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("operation {op} never finished");
        }
    };
    let done = wait("early".into(), op).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let manifests = |id: &str| {
        std::fs::read_to_string(
            dir.path()
                .join(format!("data/render/apps/cb-{id}/manifests.yaml")),
        )
        .unwrap()
    };
    b.wait_metric(r#"chartbroker_operations_in_progress{kind="provision"} 0"#)
        .await;
    let early = manifests("early");
    assert!(early.contains("from-the-request"), "{early}");
    assert!(!early.contains("from-the-reloaded-plan"), "{early}");

    // A new operation takes the reloaded plan.
    let (s, body) = provision("late").await.unwrap();
    assert_eq!(s, 202, "{body}");
    let done = wait("late".into(), body["operation"].as_str().unwrap().into()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(manifests("late").contains("from-the-reloaded-plan"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_credentials_file_takes_over_and_the_old_password_is_refused() {
    let dir = with_catalog();
    let creds = dir.path().join("credentials.yaml");
    let write = |pass: &str| {
        let tmp = dir.path().join("credentials.tmp");
        std::fs::write(
            &tmp,
            format!("users:\n  - username: rotating\n    password: {pass}\n"),
        )
        .unwrap();
        std::fs::rename(&tmp, &creds).unwrap();
    };
    write("first-password");
    let c = creds.to_str().unwrap().to_string();
    let b = start(
        dir.path(),
        &["--reload-interval", "1", "--credentials-file", &c],
        |_| {},
    );
    ready(b.port).await;
    assert_eq!(catalog_status(&b, "rotating", "first-password").await, 200);
    assert_eq!(catalog_status(&b, "rotating", "second-password").await, 401);

    write("second-password");
    b.wait_metric(r#"chartbroker_reloads_total{what="credentials"} 1"#)
        .await;
    assert_eq!(catalog_status(&b, "rotating", "second-password").await, 200);
    assert_eq!(catalog_status(&b, "rotating", "first-password").await, 401);
    // The environment's user stays.
    assert_eq!(catalog_status(&b, USER, PASS).await, 200);

    // A broken file: the second password stays in force.
    std::fs::write(&creds, "users: [{username: rotating}]\n").unwrap();
    b.hup();
    b.wait_metric(r#"chartbroker_reload_failures_total{what="credentials"} 1"#)
        .await;
    assert_eq!(catalog_status(&b, "rotating", "second-password").await, 200);
    let log = b.log();
    assert!(!log.contains("second-password"), "{log}");
    assert!(!log.contains("first-password"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_serves_new_connections_and_an_invalid_one_is_refused() {
    let dir = with_catalog();
    let ca = ca();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let install = |cert: &str, key: &str| {
        // Key first, then certificate: a poll between the two would see a
        // mismatched pair, which must only fail that one reload.
        std::fs::write(&key_path, key).unwrap();
        std::fs::write(&cert_path, cert).unwrap();
    };
    let (first_pem, first_der, first_key) = server_cert(&ca, 1001);
    install(&first_pem, &first_key);
    let (c, k) = (
        cert_path.to_str().unwrap().to_string(),
        key_path.to_str().unwrap().to_string(),
    );
    let mut b = start(
        dir.path(),
        &["--reload-interval", "0", "--tls-cert", &c, "--tls-key", &k],
        |_| {},
    );
    b.https = Some(tls_client(&ca, false));
    let fresh = tls_client(&ca, false);
    let kept = tls_client(&ca, true);
    let mut up = false;
    for _ in 0..400 {
        if fresh
            .get(format!("https://localhost:{}/readyz", b.port))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the HTTPS broker did not become ready: {}", b.log());
    assert_eq!(served_cert(&fresh, b.port).await, first_der);
    assert_eq!(served_cert(&kept, b.port).await, first_der);

    let (second_pem, second_der, second_key) = server_cert(&ca, 2002);
    install(&second_pem, &second_key);
    b.hup();
    b.wait_metric(r#"chartbroker_reloads_total{what="tls"} 1"#)
        .await;
    assert_eq!(served_cert(&fresh, b.port).await, second_der);
    // The connection opened before the reload is untouched.
    assert_eq!(served_cert(&kept, b.port).await, first_der);

    // Not a certificate: the second one stays.
    std::fs::write(&cert_path, "-----BEGIN CERTIFICATE-----\nnope\n").unwrap();
    b.hup();
    b.wait_metric(r#"chartbroker_reload_failures_total{what="tls"} 1"#)
        .await;
    assert_eq!(served_cert(&fresh, b.port).await, second_der);
    let log = b.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("reload failed") && l.contains("tls.crt")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_catalog_keeps_the_plans_imported_from_upstream_brokers() {
    use chartbroker::reload::What;
    let cloud = support::Cloud::start("sync", 0, &[]);
    let mut o = support::CatalogOpts::new(&cloud.url);
    o.import = Some("{tags: [cache], id_prefix: cloud-, name_prefix: cloud-}");
    let b = support::broker(&o).await;
    let ids = |c: &Value| plan_ids(c);
    let r = b.call(axum::http::Method::GET, "/v2/catalog", None).await;
    assert!(
        ids(&r.json).contains(&"cloud-upstream-redis-small".into()),
        "{}",
        r.text
    );

    // A local plan added: served next to the imported ones.
    let file = b.data.path().join("catalog/cloud.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let added = text.replace(
        "  - id: svc-stream\n",
        "      - id: plan-added\n        name: added\n        description: Added by a reload\n        upstream: {broker: cloud, service_id: upstream-kafka, plan_id: upstream-kafka-dev}\n  - id: svc-stream\n",
    );
    assert_ne!(added, text);
    std::fs::write(&file, added).unwrap();
    let fetches = |reqs: &[Value]| reqs.iter().filter(|r| r["path"] == "/v2/catalog").count();
    let before = fetches(&cloud.requests());
    let reloader = b.runtime.reloader(None);
    assert!(reloader.reload(What::Catalog).await);
    let r = b.call(axum::http::Method::GET, "/v2/catalog", None).await;
    let now = ids(&r.json);
    for plan in ["plan-added", "plan-premium", "cloud-upstream-redis-small"] {
        assert!(now.contains(&plan.to_string()), "{plan}: {}", r.text);
    }
    // The periodic refresh (every second here) merges into the reloaded
    // catalog, not the one from startup.
    cloud
        .wait_for("two more catalog fetches", |reqs| {
            fetches(reqs) >= before + 2
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = b.call(axum::http::Method::GET, "/v2/catalog", None).await;
    let now = ids(&r.json);
    for plan in ["plan-added", "cloud-upstream-redis-small"] {
        assert!(now.contains(&plan.to_string()), "{plan}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_client_ca_decides_which_client_certificates_new_connections_need() {
    let dir = with_catalog();
    let server_ca = ca();
    let (old_ca, new_ca) = (ca(), ca());
    let (cert, _, key) = server_cert(&server_ca, 7);
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(p("tls.crt"), cert).unwrap();
    std::fs::write(p("tls.key"), key).unwrap();
    std::fs::write(p("clients.pem"), &old_ca.pem).unwrap();
    let mut b = start(
        dir.path(),
        &[
            "--reload-interval",
            "1",
            "--tls-cert",
            &p("tls.crt"),
            "--tls-key",
            &p("tls.key"),
            "--tls-client-ca",
            &p("clients.pem"),
        ],
        |_| {},
    );
    let client = |ca_of_client: &Ca| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .tls_certs_only([reqwest::Certificate::from_pem(server_ca.pem.as_bytes()).unwrap()])
            .identity(
                reqwest::Identity::from_pem(client_identity(ca_of_client).as_bytes()).unwrap(),
            )
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (old_client, new_client) = (client(&old_ca), client(&new_ca));
    b.https = Some(old_client.clone());
    let healthz = |c: &reqwest::Client| {
        let req = c.get(format!("https://localhost:{}/healthz", b.port));
        async move { req.send().await.map(|r| r.status().as_u16()).ok() }
    };
    let mut up = false;
    for _ in 0..400 {
        if healthz(&old_client).await == Some(200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the mTLS broker did not become ready: {}", b.log());
    assert_eq!(healthz(&new_client).await, None, "not yet trusted");

    // The file changes (no signal): the new CA's clients get in, the old's don't.
    std::fs::write(p("clients.pem"), &new_ca.pem).unwrap();
    b.https = Some(new_client.clone());
    b.wait_metric(r#"chartbroker_reloads_total{what="tls"} 1"#)
        .await;
    assert_eq!(healthz(&new_client).await, Some(200));
    assert_eq!(healthz(&old_client).await, None);
}
