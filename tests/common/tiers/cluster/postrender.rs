//! Helpers of the tests in tests/cluster/postrender.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;
use common::cluster::Cluster;
use common::*;
use serde_json::{Value, json};

use chartbroker::runtime::Engine;

pub async fn broker(k: &Cluster, helm: PathBuf) -> TestBroker {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.engine = Engine::Helm;
    // These requests carry no originating identity; authorization has its own suites.
    cfg.subject_access_review = false;
    cfg.helm = helm;
    cfg.catalog_dir = fixtures().join("catalog-postrender");
    cfg.charts_dir = fixtures().join("switch-charts");
    cfg.kubeconfig = Some(k.kubeconfig.clone());
    cfg.helm_timeout = Duration::from_secs(120);
    TestBroker::with_config(data, cfg).await
}

pub fn provision(plan: &str, ns: &str) -> Value {
    let params = json!({"message": "hello"});
    common::cluster_calls::kube_provision("svc-switch", plan, ns, params)
}

/// The control plane, a namespace of its own (`prefix`-...) whose release
/// identity helm runs as (never the admin), and a broker on `helm`.
pub async fn bed(helm: PathBuf, prefix: &str) -> (Cluster, String, TestBroker) {
    let k = Cluster::admin().await;
    let ns = k.namespace(prefix).await;
    k.default_release_identity(&ns);
    let b = broker(&k, helm).await;
    (k, ns, b)
}

/// The asynchronous provision of `id` on `plan` in `ns`, followed to its
/// end.
pub async fn provisioned(b: &TestBroker, id: &str, plan: &str, ns: &str) -> Resp {
    b.by(None).provision(id, provision(plan, ns)).await
}

pub async fn in_kube_system(k: &Cluster, name: &str) -> bool {
    k.has(&format!("/api/v1/namespaces/kube-system/configmaps/{name}"))
        .await
}

pub async fn lookup_switch_is_refused(helm: PathBuf, id: &str) {
    let (k, ns, b) = bed(helm, "pr").await;
    let done = provisioned(&b, id, "plan-lookup", &ns).await;
    let d = done.assert_state("failed");
    assert!(
        d.contains("policy rejected the manifests helm would apply") && d.contains("kube-system"),
        "{d}"
    );
    assert!(!in_kube_system(&k, &format!("cb-{id}")).await);
    let cm = format!("/api/v1/namespaces/{ns}/configmaps/cb-{id}");
    assert!(!k.has(&cm).await, "nothing of the release was applied");
}

pub async fn upgrade_switch_is_refused(helm: PathBuf, id: &str) {
    let (k, ns, b) = bed(helm, "pr").await;
    provisioned(&b, id, "plan-upgrade", &ns)
        .await
        .assert_state("succeeded");
    let update = json!({"service_id": "svc-switch", "parameters": {"message": "again"}});
    let done = b.by(None).update(id, update).await;
    let d = done.assert_state("failed");
    assert!(d.contains("kube-system"), "{d}");
    assert!(!in_kube_system(&k, &format!("cb-{id}")).await);
    // The installed release is untouched and still usable.
    let cm = k
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/cb-{id}"))
        .await
        .unwrap();
    assert_eq!(cm["data"]["message"], "hello");
    let r = b.get(&format!("/v2/service_instances/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

pub async fn crds_are_never_installed(helm: PathBuf, id: &str) {
    let (k, ns, b) = bed(helm, "pr").await;
    provisioned(&b, id, "plan-crds", &ns)
        .await
        .assert_state("succeeded");
    assert!(
        k.has(&format!("/api/v1/namespaces/{ns}/configmaps/cb-{id}"))
            .await
    );
    let crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.hostile.example.com";
    assert!(
        !k.has(crd).await,
        "crds/ bypass every post-renderer: the broker must never install them"
    );
}

/// Charts whose bytes Kubernetes' Go reader reads differently from a YAML
/// 1.2 parser (issue 19), each with what the refusal must name.
pub const AMBIGUOUS: &[(&str, &str)] = &[
    ("plan-merge-key", "merge key"),
    ("plan-line-separator", "U+2028"),
];

/// Provisions every ambiguous chart on the helm engine: each is refused
/// with the reason, and nothing of it reaches the API server.
pub async fn ambiguous_yaml_is_refused(helm: PathBuf, major: &str) {
    let (k, ns, b) = bed(helm, "amb").await;
    // Helm 4 re-serializes before its post-renderer and keeps the merge key
    // as `!!merge <<`, a tag; Helm 3 hands over the chart's bytes.
    let switch = if major == "4" {
        "an explicit tag"
    } else {
        "merge key"
    };
    let cases = AMBIGUOUS
        .iter()
        .copied()
        .chain([("plan-merge-key-switch", switch)]);
    for (n, (plan, says)) in cases.enumerate() {
        let id = format!("amb{major}-{n}");
        let done = provisioned(&b, &id, plan, &ns).await;
        assert_eq!(done.json["state"], "failed", "{plan}: {}", done.text);
        let d = done.json["description"].as_str().unwrap();
        assert!(
            d.contains("policy rejected") && d.contains(says),
            "{plan}: {d}"
        );
        let pod = format!("/api/v1/namespaces/{ns}/pods/cb-{id}");
        assert!(!k.has(&pod).await, "{plan}: the pod reached the API server");
    }
    let pods = k
        .get(&format!("/api/v1/namespaces/{ns}/pods"))
        .await
        .unwrap();
    assert_eq!(pods["items"], json!([]), "nothing was applied");
}
