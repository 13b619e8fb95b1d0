//! Helpers of the tests in tests/cluster/helm_engine.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use common::cluster::{Cluster, release_records, secret_value};
use common::cluster_calls::data_keys;
use common::*;
use serde_json::json;

/// A namespace of its own the broker may install into, and a broker on the
/// test catalog running as the deploy/ ServiceAccount (`catalog` overrides
/// the catalog directory).
pub async fn setup(
    k: &Cluster,
    helm: PathBuf,
    catalog: Option<PathBuf>,
) -> (cluster::BrokerIdentity, String, TestBroker) {
    setup_timed(k, helm, catalog, Duration::from_secs(120)).await
}

/// [`setup`] with helm's timeout.
pub async fn setup_timed(
    k: &Cluster,
    helm: PathBuf,
    catalog: Option<PathBuf>,
    helm_timeout: Duration,
) -> (cluster::BrokerIdentity, String, TestBroker) {
    let (id, ns) = k.broker_and_target("apps").await;
    let b = TestBroker::on_cluster(&id, |_, cfg| {
        // These requests carry no originating identity; authorization has its own suites.
        cfg.subject_access_review = false;
        cfg.helm = helm;
        cfg.helm_timeout = helm_timeout;
        if let Some(c) = catalog {
            cfg.catalog_dir = c;
        }
    })
    .await;
    (id, ns, b)
}

pub async fn lifecycle(helm: PathBuf) {
    let k = Cluster::admin().await;
    let (_id, ns, b) = setup(&k, helm, None).await;
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps/cb-h-1");
    let chart_secret = format!("/api/v1/namespaces/{ns}/secrets/cb-h-1");
    let binding_secret = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-hb-1");

    // Synchronous requests are refused: helm installs take time.
    let body = provision_body_in("plan-small", &ns, json!({"message": "one"}));
    let r = b.put("/v2/service_instances/h-1", body.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json["error"], "AsyncRequired");
    assert!(!k.has(&cm_path).await, "nothing was installed");

    let platform = b.by(None);
    platform.provisioned("h-1", body).await;
    let cm = k
        .get(&cm_path)
        .await
        .expect("the release's ConfigMap exists");
    assert_eq!(cm["data"]["message"], "one");
    let records = release_records(&k, &ns, "cb-h-1").await;
    assert_eq!(records.len(), 1, "helm's release record is a Secret");
    assert_eq!(records[0]["type"], "helm.sh/release.v1");

    // Bind: the Secret appears in the app namespace with the credentials.
    let r = b
        .put(
            "/v2/service_instances/h-1/service_bindings/hb-1?accepts_incomplete=true",
            bind_body("plan-small", json!({"role": "writer"})),
        )
        .await;
    let binding_uri = "/v2/service_instances/h-1/service_bindings/hb-1";
    let creds = if r.status == StatusCode::ACCEPTED {
        let done = b.finish(binding_uri, r).await;
        assert_eq!(done.json["state"], "succeeded", "{}", done.text);
        b.get(binding_uri).await.json["credentials"].clone()
    } else {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["credentials"].clone()
    };
    assert_eq!(creds["role"], "writer");
    let password = creds["password"].as_str().expect("a password").to_string();
    let secret = k
        .get(&binding_secret)
        .await
        .expect("binding Secret applied");
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "chartbroker"
    );
    assert_eq!(
        secret["metadata"]["annotations"]["chartbroker.io/binding-id"],
        "hb-1"
    );
    assert_eq!(secret_value(&secret, "password"), Some(password.clone()));
    // The test service's `binding: {type: tiny}`, as the API server keeps it.
    assert_eq!(secret["type"], "servicebinding.io/tiny");
    assert_eq!(secret_value(&secret, "type").as_deref(), Some("tiny"));
    assert_eq!(
        secret_value(&secret, "provider").as_deref(),
        Some("chartbroker")
    );
    let keys = ["host", "password", "port", "provider", "role", "type"];
    assert_eq!(data_keys(&secret), keys);
    assert_eq!(
        secret_value(&k.get(&chart_secret).await.unwrap(), "password"),
        Some(password.clone()),
        "the chart got the generated password"
    );

    // Update: an upgrade keeps the generated password.
    let update = json!({"service_id": "svc-tiny", "parameters": {"message": "two"}});
    platform.updated("h-1", update).await;
    assert_eq!(k.get(&cm_path).await.unwrap()["data"]["message"], "two");
    assert_eq!(k.helm_history(&ns, "cb-h-1").len(), 2, "one upgrade");
    assert_eq!(
        secret_value(&k.get(&chart_secret).await.unwrap(), "password"),
        Some(password.clone())
    );
    let creds2 = b.get(binding_uri).await.json["credentials"].clone();
    assert_eq!(creds2["password"], creds["password"]);

    // Unbind removes the Secret.
    let query = "service_id=svc-tiny&plan_id=plan-small&accepts_incomplete=true";
    let r = b.del(&format!("{binding_uri}?{query}")).await;
    if r.status == StatusCode::ACCEPTED {
        let gone = b.finish(binding_uri, r).await;
        assert_delete_done(&gone);
    } else {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert!(k.get(&binding_secret).await.is_none());

    // Deprovision removes the release and its objects.
    platform
        .deprovisioned("h-1", "svc-tiny", "plan-small")
        .await;
    assert!(k.get(&cm_path).await.is_none());
    assert!(k.get(&chart_secret).await.is_none());
    assert!(release_records(&k, &ns, "cb-h-1").await.is_empty());
}

/// A plan with `chart.wait` on a control plane without kubelet: the
/// Deployment never becomes ready. While helm waits, `last_operation` names
/// it; at helm's timeout (90% of `--helm-timeout`) the provision fails
/// saying what was still not ready, on Helm 4 and on Helm 3 (which itself
/// says only "context deadline exceeded").
pub async fn waits_naming_what_is_not_ready(helm: PathBuf) {
    let k = Cluster::admin().await;
    let catalog = Some(fixtures().join("catalog-wait"));
    let (_id, ns, b) = setup_timed(&k, helm, catalog, Duration::from_secs(12)).await;
    let body = json!({
        "service_id": "svc-web", "plan_id": "plan-wait",
        "organization_guid": "org", "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": ns},
    });
    let r = b
        .put("/v2/service_instances/w-1?accepts_incomplete=true", body)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let waiting = "waiting for deployment/cb-w-1-web: 0 of 1 replicas ready";
    let mut seen = Vec::new();
    let last = loop {
        let r = last_operation(&b, "w-1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.json["state"] != "in progress" {
            break r;
        }
        if let Some(d) = r.json["description"].as_str() {
            seen.push(d.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        seen.iter().any(|d| d == waiting),
        "while helm waited, last_operation said {seen:?}"
    );
    assert_eq!(last.json["state"], "failed", "{}", last.text);
    let d = last.json["description"].as_str().unwrap();
    assert!(
        d.ends_with(&format!("(gave up {waiting})")),
        "the failure names what was not ready: {d}"
    );
    let deploy = format!("/apis/apps/v1/namespaces/{ns}/deployments/cb-w-1-web");
    let deploy = k
        .get(&deploy)
        .await
        .expect("helm applied the Deployment before waiting");
    assert_eq!(deploy["spec"]["replicas"], 1);
}
