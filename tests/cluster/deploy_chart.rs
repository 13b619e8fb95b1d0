//! The broker's own Helm chart (`deploy/chart/chartbroker`) against the real
//! helm and a real API server (tests/testenv): `helm lint --strict`, values
//! the schema or the chart must refuse, `deploy/` generated from it and in
//! sync, several value sets applied server-side with strict field validation
//! into namespaces that enforce Pod Security `restricted` (no warnings), and
//! the real broker binary started the way the rendered Deployment says —
//! its env, its Secrets and ConfigMap as files, its ServiceAccount's token —
//! provisioning into a namespace the values granted and refused elsewhere,
//! and two replicas of the `kube` store sharing the Secret's key.
//!
//! Pods never run on the test control plane (no kubelet), so `Pod` below
//! does what a kubelet and the image would: resolves `valueFrom`, writes
//! the mounted Secrets and ConfigMaps to folders and maps the image's paths
//! (deploy/Dockerfile's `ENV`) to this checkout.

use crate::common;

use std::process::Command;

use crate::helpers::deploy_chart::*;
use common::cluster::{Cluster, kubectl, suffix};
use common::{helm_bin, helm3_bin, repo};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn helm_lint_strict_is_clean_for_every_value_set_on_helm_4_and_3() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let targets = vec!["apps".to_string()];
    let mut sets = vec![("no values", json!({}))];
    sets.extend(value_sets("lint", &targets));
    for (what, values) in sets {
        let f = values_file(&values);
        let file = f.path().to_str().unwrap();
        let mut renders = Vec::new();
        for bin in [helm_bin(), helm3_bin()] {
            let (ok, out, err) = helm_with(&bin, &["lint", "--strict", chart, "--values", file]);
            assert!(ok, "{what}: {} lint --strict\n{out}{err}", bin.display());
            assert!(out.contains("0 chart(s) failed"), "{what}: {out}");
            assert!(!out.contains("[WARNING]"), "{what}: {out}");
            let (ok, out, err) = helm_with(
                &bin,
                &["template", "cb", chart, "-n", "cb-system", "--values", file],
            );
            assert!(ok, "{what}: {err}");
            renders.push(out);
        }
        assert!(
            renders[0] == renders[1],
            "{what}: helm 4 and 3 render differently"
        );
    }
}

#[test]
fn bad_values_are_refused_with_the_reason_and_render_nothing() {
    for (values, reason) in [
        (json!({"replicas": 2}), "replicas must be 1"),
        (json!({"store": {"type": "etcd"}}), "/store/type"),
        (json!({"replica": 2}), "replica"),
        (json!({"tls": {"enabeld": false}}), "enabeld"),
        (
            json!({"targetNamespaces": ["Kube_System"]}),
            "/targetNamespaces/0",
        ),
        (json!({"targetNamespaces": []}), "defaultNamespace is empty"),
        (
            json!({"rbac": {"releaseClusterWide": true}}),
            "releaseClusterWide",
        ),
        (
            json!({"networkPolicy": {"enabled": true}}),
            "apiServerCIDRs",
        ),
        (
            json!({"catalog": {"files": {"../../etc/passwd": "x"}}}),
            "invalid propertyName '../../etc/passwd'",
        ),
        (
            json!({"catalog": {"files": {"..data.yaml": "x"}}}),
            "invalid propertyName '..data.yaml'",
        ),
        (
            json!({"catalog": {"files": {"a.yaml": "x"}, "existingConfigMap": "c"}}),
            "not both",
        ),
        (
            json!({"tls": {"enabled": false, "clientCA": true}}),
            "needs tls.enabled",
        ),
        (
            json!({"registration": {"serviceCatalog": {"enabled": true}}}),
            "caBundle",
        ),
        (json!({"image": {"digest": "latest"}}), "/image/digest"),
        (
            json!({"fullnameOverride": "x".repeat(41)}),
            "/fullnameOverride",
        ),
    ] {
        match render("cb", "cb-system", &values) {
            Ok(out) => panic!("{values} rendered:\n{out}"),
            Err(err) => assert!(err.contains(reason), "{values}: {err}"),
        }
    }
}

#[test]
fn deploy_manifests_are_generated_from_the_chart_and_in_sync() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(repo().join("scripts/gen-deploy.sh"))
        .arg(out.path())
        .env("CHARTBROKER_HELM", helm_bin())
        .status()
        .unwrap();
    assert!(status.success());
    let mut generated = Vec::new();
    for top in ["kubernetes", "registration"] {
        collect(&out.path().join(top), top, &mut generated);
    }
    assert!(generated.len() >= 15, "{generated:?}");
    for rel in &generated {
        let want = std::fs::read_to_string(out.path().join(rel)).unwrap();
        let have = std::fs::read_to_string(repo().join("deploy").join(rel))
            .unwrap_or_else(|_| panic!("deploy/{rel} is missing: run scripts/gen-deploy.sh"));
        assert!(
            want == have,
            "deploy/{rel} differs from the chart: run scripts/gen-deploy.sh"
        );
    }
    // Nothing stale: every manifest in deploy/ (but the hand-written Secret
    // templates) comes from the chart.
    let mut committed = Vec::new();
    for top in ["kubernetes", "registration"] {
        collect(&repo().join("deploy").join(top), top, &mut committed);
    }
    committed.retain(|f| !f.starts_with("kubernetes/templates/"));
    assert_eq!(
        committed, generated,
        "files in deploy/ the chart does not make"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_value_set_applies_strictly_and_passes_restricted_pod_security() {
    let k = Cluster::admin().await;
    let ns = restricted_namespace(&k, "cbc-psa").await;
    let target = k.namespace("cbc-apps").await;

    // The check can fail: a pod template that breaks `restricted` draws a
    // warning from the API server in this very namespace.
    let loose = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: loose\n  namespace: {ns}\nspec:\n  \
         selector:\n    matchLabels: {{app: loose}}\n  template:\n    metadata:\n      labels: {{app: loose}}\n    \
         spec:\n      containers:\n        - name: c\n          image: busybox\n"
    );
    let out = apply_strict(&k, &loose);
    assert!(
        out.contains("Warning") && out.contains("restricted"),
        "{out}"
    );
    k.delete(&format!("/apis/apps/v1/namespaces/{ns}/deployments/loose"))
        .await;

    let name = format!("cbc-{}", suffix());
    for (what, values) in value_sets(&name, std::slice::from_ref(&target)) {
        let rendered = render("broker", &ns, &values).unwrap_or_else(|e| panic!("{what}: {e}"));
        let docs = split(&rendered);
        let out = apply_strict(&k, &applicable(&docs));
        assert!(!out.contains("Warning"), "{what}: {out}");
        let fullname = values["fullnameOverride"].as_str().unwrap();
        let dep = k
            .get(&format!(
                "/apis/apps/v1/namespaces/{ns}/deployments/{fullname}"
            ))
            .await
            .unwrap_or_else(|| panic!("{what}: the Deployment was admitted"));
        let pod = &dep["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{what}"
        );
        let sc = &pod["containers"][0]["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");

        // The rendered RBAC, as the API server's authorizer sees it.
        // The broker does its own work; helm's is the release identity's.
        let sa = format!("system:serviceaccount:{ns}:{fullname}");
        let release = format!("system:serviceaccount:{target}:{fullname}-release");
        let nsrbac = values["rbac"]["namespaces"] == true;
        let t = target.as_str();
        let rolebindings = "rolebindings.rbac.authorization.k8s.io";
        let roles = "roles.rbac.authorization.k8s.io";
        let bind_roles = if nsrbac { "yes" } else { "no" };
        for (who, verb, res, where_, expect) in [
            (&sa, "create", "secrets", ns.as_str(), "yes"),
            (&sa, "patch", "secrets", t, "yes"),
            (&sa, "patch", "statefulsets.apps", t, "no"),
            (&sa, "create", "secrets", "default", "no"),
            (&sa, "create", "pods/exec", t, "no"),
            (&sa, "create", rolebindings, t, bind_roles),
            (&release, "patch", "statefulsets.apps", t, "yes"),
            (&release, "create", "secrets", "default", "no"),
            (&release, "create", "daemonsets.apps", t, "no"),
            (&release, "escalate", roles, t, "no"),
        ] {
            let (_, out) = kubectl(
                &k.kubeconfig,
                &["auth", "can-i", verb, res, "-n", where_, "--as", who],
                "",
            );
            assert_eq!(
                out.lines().next().unwrap_or(""),
                expect,
                "{what}: {who} can-i {verb} {res} -n {where_}: {out}"
            );
        }
        let ns_verb = if values["rbac"]["namespaces"] == true {
            "yes"
        } else {
            "no"
        };
        let (_, out) = kubectl(
            &k.kubeconfig,
            &["auth", "can-i", "delete", "namespaces", "--as", &sa],
            "",
        );
        assert_eq!(out.lines().next().unwrap_or(""), ns_verb, "{what}: {out}");

        let kinds: Vec<&str> = docs.iter().map(Doc::kind).collect();
        let kube = values["store"]["type"] == "kube";
        assert_eq!(
            kinds.contains(&"PodDisruptionBudget"),
            kube,
            "{what}: {kinds:?}"
        );
        assert_eq!(
            kinds.contains(&"PersistentVolumeClaim"),
            !kube && values["store"]["persistence"]["existingClaim"].is_null(),
            "{what}: {kinds:?}"
        );
        if kube {
            let pdb = k
                .get(&format!(
                    "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{fullname}"
                ))
                .await;
            assert!(pdb.is_some(), "{what}: PDB applied");
        }
        // Registration objects point at this release's Service.
        for d in docs.iter().filter(|d| d.needs_crd()) {
            let url = d.value["spec"]["url"]
                .as_str()
                .or(d.value["spec"]["brokerUrl"].as_str());
            if let Some(url) = url {
                assert_eq!(
                    url,
                    format!("https://{fullname}.{ns}.svc.cluster.local:8443"),
                    "{what}: {} {}",
                    d.kind(),
                    d.name()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_runs_from_the_chart_and_only_where_its_values_grant() {
    let k = Cluster::admin().await;
    let ns = restricted_namespace(&k, "cbc-run").await;
    let granted = k.namespace("cbc-apps").await;
    let other = k.namespace("cbc-other").await;
    let fullname = format!("cbc-{}", suffix());
    let values = json!({
        "fullnameOverride": fullname,
        "targetNamespaces": [granted],
        "catalog": {"files": example_catalog(Some("mysql.yaml"))},
    });
    let (docs, pki) = install(&k, &ns, &fullname, values, &store_key()).await;
    let client = https_client(&pki);
    let b = Pod::start(&k, &ns, &docs, &client).await;
    use reqwest::Method;

    // The catalog is the chart's ConfigMap (mysql only), not the image's
    // example catalog (four services).
    let (s, cat) = b.osb(&client, Method::GET, "/v2/catalog", None).await;
    assert_eq!(s, 200, "{cat}");
    let names: Vec<&str> = cat["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["mysql"]);
    // Credentials from the Secret: anything else is refused.
    let resp = client
        .get(format!("{}/v2/catalog", b.url))
        .basic_auth(USER, Some("wrong"))
        .header("X-Broker-API-Version", "2.17")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // provision -> bind -> unbind -> deprovision in the granted namespace.
    let path = "/v2/service_instances/db-1";
    let body = Some(provision(&granted));
    let op = b.begin(&client, Method::PUT, path, "", body).await;
    b.settled(&client, path, &op, &b).await;
    assert!(
        k.has(&format!(
            "/apis/apps/v1/namespaces/{granted}/statefulsets/cb-db-1"
        ))
        .await
    );
    let bpath = format!("{path}/service_bindings/app-1");
    let (s, bound) = b
        .osb(
            &client,
            Method::PUT,
            &bpath,
            Some(json!({"service_id": MYSQL, "plan_id": MYSQL_BASIC})),
        )
        .await;
    assert_eq!(s, 201, "{bound}");
    assert_eq!(bound["credentials"]["database"], "shop");
    let binding_secrets = format!(
        "/api/v1/namespaces/{granted}/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dchartbroker"
    );
    assert_eq!(k.list(&binding_secrets).await.len(), 1);
    let q = format!("service_id={MYSQL}&plan_id={MYSQL_BASIC}");
    let (s, r) = b
        .osb(&client, Method::DELETE, &format!("{bpath}?{q}"), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert!(k.list(&binding_secrets).await.is_empty());
    let q = format!("&{q}");
    let op = b.begin(&client, Method::DELETE, path, &q, None).await;
    b.settled(&client, path, &op, &b).await;
    let records = k
        .list(&format!(
            "/api/v1/namespaces/{granted}/secrets?labelSelector=owner%3Dhelm"
        ))
        .await;
    assert!(records.is_empty(), "helm release records left: {records:?}");

    // A namespace the values did not list: the API server says no.
    let db2 = "/v2/service_instances/db-2";
    let body = Some(provision(&other));
    let op = b.begin(&client, Method::PUT, db2, "", body).await;
    let (_, failed) = b.settle(&client, db2, &op).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let d = failed["description"].as_str().unwrap();
    assert!(d.contains("forbidden"), "{d}");
    assert!(
        d.contains(&format!("system:serviceaccount:{ns}:{fullname}")),
        "{d}"
    );
    assert!(
        k.list(&format!("/api/v1/namespaces/{other}/secrets"))
            .await
            .iter()
            .all(|s| s["metadata"]["labels"]["owner"] != "helm"),
        "nothing written in {other}"
    );
    // Nothing secret in the broker's log.
    let log = b.log_text();
    assert!(!log.contains(PASS), "the password is in the log");
    let pw = bound["credentials"]["password"].as_str().unwrap();
    assert!(!log.contains(pw), "a binding password is in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_from_the_kube_value_set_share_state_through_the_secret_key() {
    let k = Cluster::admin().await;
    let ns = restricted_namespace(&k, "cbc-ha").await;
    let granted = k.namespace("cbc-apps").await;
    let fullname = format!("cbc-{}", suffix());
    let values = json!({
        "fullnameOverride": fullname,
        "targetNamespaces": [granted],
        "replicas": 2,
        "store": {"type": "kube"},
        "catalog": {"files": example_catalog(Some("mysql.yaml"))},
    });
    let (docs, pki) = install(&k, &ns, &fullname, values, &store_key()).await;
    let client = https_client(&pki);
    let a = Pod::start(&k, &ns, &docs, &client).await;
    let b = Pod::start(&k, &ns, &docs, &client).await;
    use reqwest::Method;

    let path = "/v2/service_instances/ha-1";
    let body = Some(provision(&granted));
    let op = a.begin(&client, Method::PUT, path, "", body).await;
    // The other replica answers for it: the record is in the API server,
    // sealed with the key both read from the same Secret.
    b.settled(&client, path, &op, &a).await;
    let (s, got) = b.osb(&client, Method::GET, path, None).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["service_id"], MYSQL);
    let state: Vec<Value> = k
        .list(&format!("/api/v1/namespaces/{ns}/secrets"))
        .await
        .into_iter()
        .filter(|s| s["type"] == "chartbroker.io/state")
        .collect();
    assert!(!state.is_empty(), "state lives in {ns}");
    assert!(!serde_json::to_string(&state).unwrap().contains("shop"));

    let q = format!("&service_id={MYSQL}&plan_id={MYSQL_BASIC}");
    let op = b.begin(&client, Method::DELETE, path, &q, None).await;
    a.settled(&client, path, &op, &b).await;
}
