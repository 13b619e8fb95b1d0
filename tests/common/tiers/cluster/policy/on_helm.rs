use super::*;

/// Cluster-wide lists the cluster-scoped and other-namespace charts aim at.
pub const CLUSTER_LISTS: &[&str] = &[
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "/api/v1/namespaces",
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "/api/v1/namespaces/kube-system/configmaps",
];

/// Every hostile chart on the helm engine against the real API server
/// (tests/testenv), as cluster admin so only the broker's own checks stand
/// in the way: each fails with its rule named in `last_operation`, and
/// nothing of any of them exists on the API server afterwards.
pub async fn hostile_charts_refused_by_helm(helm: PathBuf, tag: &str) {
    use common::cluster::Cluster;
    let k = Cluster::admin().await;
    let ns = k.namespace(&format!("hostile{tag}")).await;
    k.default_release_identity(&ns);
    // The release identity's account and bindings are there before any chart.
    let before = leftovers(&k, &ns).await;
    let catalog = tempfile::tempdir().unwrap();
    hostile_catalog(catalog.path());
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.engine = chartbroker::runtime::Engine::Helm;
    // No originating identity here; authorization has its own suites.
    cfg.subject_access_review = false;
    cfg.helm = helm;
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = hostile_charts();
    cfg.kubeconfig = Some(k.kubeconfig.clone());
    cfg.helm_timeout = Duration::from_secs(120);
    let b = TestBroker::with_config(data, cfg).await;
    let prefix = format!("cb-h{tag}-");
    for c in CASES {
        let instance = format!("h{tag}-{}", c.chart);
        let mut request = body("svc-hostile", &format!("hostile-{}", c.chart));
        request["context"]["namespace"] = json!(ns);
        // The 202 check names the instance, so the chart.
        let done = b.by(None).provision(&instance, request).await;
        assert_eq!(done.json["state"], "failed", "{}: {}", c.chart, done.text);
        let d = done.json["description"].as_str().unwrap();
        assert!(d.contains("policy rejected"), "{}: {d}", c.chart);
        c.assert_named_in(&instance, d);
    }
    assert_eq!(leftovers(&k, &ns).await, before);
    for path in CLUSTER_LISTS {
        let names: Vec<String> = k
            .list(path)
            .await
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
            .filter(|n| n.starts_with(&prefix))
            .collect();
        assert!(names.is_empty(), "{path}: {names:?}");
    }
    let crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.evil.example.com";
    assert!(k.get(crd).await.is_none(), "CRD applied");
    allowed_charts_install(&b, &k, tag).await;
}

/// The control: the plans that allow two of the hostile charts install
/// them on the same engine, and the listing of [`leftovers`] sees what they
/// created.
pub async fn allowed_charts_install(b: &TestBroker, k: &common::cluster::Cluster, tag: &str) {
    let ok_ns = k.namespace(&format!("allowed{tag}")).await;
    k.default_release_identity(&ok_ns);
    for chart in ["role-create-pods", "ingress-any-host"] {
        let instance = format!("ok{tag}-{chart}");
        let mut request = body("svc-hostile", &format!("allowed-{chart}"));
        request["context"]["namespace"] = json!(ok_ns);
        let done = b.provision_done(&instance, request).await;
        assert_eq!(done.json["state"], "succeeded", "{chart}: {}", done.text);
    }
    let created = leftovers(k, &ok_ns).await;
    for object in [
        "roles/cb-ok{tag}-role-create-pods-pod-maker",
        "ingresses/cb-ok{tag}-ingress-any-host-web",
        "services/cb-ok{tag}-ingress-any-host-own",
    ] {
        let object = object.replace("{tag}", tag);
        assert!(created.contains(&object), "{object} not in {created:?}");
    }
}

/// What exists in `ns` beyond what the control plane puts in every
/// namespace, as `resource/name`.
pub async fn leftovers(k: &common::cluster::Cluster, ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for path in NAMESPACED_LISTS {
        let path = path.replace("{ns}", ns);
        let resource = path.rsplit('/').next().unwrap().to_owned();
        out.extend(
            k.list(&path)
                .await
                .iter()
                .filter_map(|o| o["metadata"]["name"].as_str())
                .filter(|n| *n != "default" && *n != "kube-root-ca.crt")
                .map(|n| format!("{resource}/{n}")),
        );
    }
    out
}

/// A catalog with one plan for `tests/fixtures/benign-charts/full-release`,
/// whose Ingress host is under the plan's per-namespace pattern.
pub fn benign_broker_config(data: &Path, catalog: &Path) -> chartbroker::runtime::ServeConfig {
    std::fs::write(
        catalog.join("benign.yaml"),
        "services:\n  - id: svc-benign\n    name: benign\n    description: d\n    bindable: false\n    \
         plans:\n      - {id: full, name: full, description: d, chart: {path: full-release, \
         policy: {allow_hosts: ['*.{namespace}.apps.example.com']}}}\n",
    )
    .unwrap();
    let mut cfg = config(data);
    cfg.catalog_dir = catalog.to_path_buf();
    cfg.charts_dir = fixtures().join("benign-charts");
    cfg
}

/// The same release on the helm engine, Helm 4 and Helm 3, against the
/// real API server: installed, with the objects the rules look at.
pub async fn well_behaved_release_installs(helm: PathBuf, tag: &str) {
    use common::cluster::Cluster;
    let k = Cluster::admin().await;
    let ns = k.namespace(&format!("benign{tag}")).await;
    k.default_release_identity(&ns);
    let catalog = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut cfg = benign_broker_config(data.path(), catalog.path());
    cfg.engine = chartbroker::runtime::Engine::Helm;
    cfg.subject_access_review = false;
    cfg.helm = helm;
    cfg.kubeconfig = Some(k.kubeconfig.clone());
    cfg.helm_timeout = Duration::from_secs(120);
    let b = TestBroker::with_config(data, cfg).await;
    let instance = format!("fine{tag}");
    let mut request = body("svc-benign", "full");
    request["context"]["namespace"] = json!(ns);
    let done = b.provision_done(&instance, request).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let created = leftovers(&k, &ns).await;
    let r = format!("cb-{instance}");
    for object in [
        format!("roles/{r}-app"),
        format!("rolebindings/{r}-app"),
        format!("networkpolicies/{r}-web"),
        format!("horizontalpodautoscalers/{r}-web"),
        format!("poddisruptionbudgets/{r}-web"),
        format!("ingresses/{r}-web"),
        format!("persistentvolumeclaims/{r}-copy"),
    ] {
        assert!(created.contains(&object), "{object} not in {created:?}");
    }
}
