//! Helpers of the tests in tests/cluster/policy.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

/// One hostile chart: the object it smuggles in (`{r}` is the release name),
/// the rule that stops it, and the plan policy that would allow it, if any.
pub struct Case {
    pub chart: &'static str,
    pub object: &'static str,
    pub rule: &'static str,
    pub allow: Option<&'static str>,
}

pub const fn case(
    chart: &'static str,
    object: &'static str,
    rule: &'static str,
    allow: Option<&'static str>,
) -> Case {
    Case {
        chart,
        object,
        rule,
        allow,
    }
}

pub const CASES: &[Case] = &[
    case(
        "cluster-role",
        "ClusterRole/{r}-everything",
        "cluster-scoped",
        None,
    ),
    case(
        "crd",
        "CustomResourceDefinition/widgets.evil.example.com",
        "cluster-scoped",
        None,
    ),
    case(
        "namespace-object",
        "Namespace/{r}-land",
        "cluster-scoped",
        None,
    ),
    case(
        "other-namespace",
        "ConfigMap/{r}-coredns-override",
        "other-namespace",
        None,
    ),
    case(
        "privileged",
        "Deployment/{r}-web",
        "privileged-container",
        Some("{allow_privileged: true}"),
    ),
    case(
        "host-path",
        "Deployment/{r}-web",
        "host-path",
        Some("{allow_host_path: true}"),
    ),
    case(
        "host-network",
        "Pod/{r}-sniffer",
        "host-namespace",
        Some("{allow_host_network: true}"),
    ),
    case(
        "host-pid",
        "Deployment/{r}-web",
        "host-namespace",
        Some("{allow_host_network: true}"),
    ),
    case(
        "host-port",
        "Deployment/{r}-web",
        "host-port",
        Some("{allow_host_network: true}"),
    ),
    case(
        "capabilities-add",
        "Deployment/{r}-web",
        "capability-not-allowed",
        Some("{allow_capabilities: [SYS_ADMIN]}"),
    ),
    case(
        "rolebinding-to-clusterrole",
        "RoleBinding/{r}-admin",
        "rolebinding-clusterrole",
        None,
    ),
    case(
        "wildcard-role",
        "Role/{r}-everything",
        "wildcard-rbac",
        None,
    ),
    case(
        "daemonset",
        "DaemonSet/{r}-agent",
        "kind-not-allowed",
        Some("{extra_kinds: [DaemonSet]}"),
    ),
    case(
        "webhook",
        "MutatingWebhookConfiguration/{r}-inject",
        "cluster-scoped",
        None,
    ),
    case(
        "node-port",
        "Service/{r}-public",
        "service-type",
        Some("{allow: [service-type]}"),
    ),
    case(
        "external-ips",
        "Service/{r}-mitm",
        "service-external-ips",
        None,
    ),
    case(
        "secret-reader",
        "Role/{r}-secrets",
        "rbac-sensitive",
        Some("{allow: [rbac-sensitive]}"),
    ),
    case(
        "system-subject",
        "RoleBinding/{r}-everyone",
        "rbac-system-subject",
        None,
    ),
    case(
        "sa-token",
        "Secret/{r}-token",
        "service-account-token",
        Some("{allow: [service-account-token]}"),
    ),
    // The allow-list (issue 19): each class of what used to get through.
    case(
        "role-create-pods",
        "Role/{r}-pod-maker",
        "rbac-writes",
        Some("{allow: [rbac-writes]}"),
    ),
    case(
        "role-portforward",
        "Role/{r}-tunnel",
        "rbac-sensitive",
        Some("{allow: [rbac-sensitive]}"),
    ),
    case(
        "role-beyond-edit",
        "Role/{r}-binder",
        "rbac-ceiling",
        Some("{role_resources: [rolebindings.rbac.authorization.k8s.io]}"),
    ),
    case(
        "binding-other-namespace",
        "RoleBinding/{r}-foreign",
        "rbac-subject",
        None,
    ),
    case(
        "binding-outside-group",
        "RoleBinding/{r}-group",
        "rbac-subject",
        None,
    ),
    case(
        "binding-foreign-role",
        "RoleBinding/{r}-borrow",
        "rolebinding-role",
        None,
    ),
    case(
        "foreign-service-account",
        "Deployment/{r}-web",
        "service-account",
        Some("{allow: [service-account]}"),
    ),
    case(
        "node-name",
        "Deployment/{r}-pinned",
        "node-name",
        Some("{allow: [node-name]}"),
    ),
    case(
        "control-plane",
        "Deployment/{r}-web",
        "control-plane",
        Some("{allow: [control-plane]}"),
    ),
    case(
        "priority-class",
        "Deployment/{r}-web",
        "pod-field",
        Some("{allow: [pod-field]}"),
    ),
    case(
        "service-without-selector",
        "Service/{r}-api",
        "release-selector",
        Some("{allow: [release-selector]}"),
    ),
    case(
        "pdb-other-release",
        "PodDisruptionBudget/{r}-pdb",
        "release-selector",
        Some("{allow: [release-selector]}"),
    ),
    case(
        "hpa-other-release",
        "HorizontalPodAutoscaler/{r}-scale",
        "release-target",
        Some("{allow: [release-target]}"),
    ),
    case(
        "networkpolicy-open",
        "NetworkPolicy/{r}-open",
        "networkpolicy-open",
        Some("{allow: [networkpolicy-open]}"),
    ),
    case(
        "pvc-volume-name",
        "PersistentVolumeClaim/{r}-data",
        "pvc-binding",
        Some("{allow: [pvc-binding]}"),
    ),
    case(
        "pvc-clone-other",
        "PersistentVolumeClaim/{r}-copy",
        "release-target",
        Some("{allow: [release-target]}"),
    ),
    case(
        "finalizer",
        "ConfigMap/{r}-sticky",
        "finalizers",
        Some("{allow: [finalizers]}"),
    ),
    case(
        "ingress-any-host",
        "Ingress/{r}-web",
        "ingress-host",
        Some("{allow_hosts: [victim.example.com]}"),
    ),
    case(
        "ingress-snippet",
        "Ingress/{r}-snippet",
        "ingress-annotation",
        Some(
            "{allow_hosts: ['*.apps.example.com'], \
             allow_annotations: [nginx.ingress.kubernetes.io/configuration-snippet]}",
        ),
    ),
    case(
        "ingress-foreign-backend",
        "Ingress/{r}-steal",
        "release-target",
        Some("{allow_hosts: ['*.apps.example.com'], allow: [release-target]}"),
    ),
];

pub fn hostile_charts() -> PathBuf {
    fixtures().join("hostile-charts")
}

/// A catalog with a `hostile-<chart>` plan (default policy) for every case
/// and an `allowed-<chart>` plan for those with an allowance.
pub fn hostile_catalog(dir: &Path) {
    let mut plans = String::new();
    for c in CASES {
        plans += &format!(
            "      - {{id: hostile-{0}, name: hostile-{0}, description: {0}, chart: {{path: {0}}}}}\n",
            c.chart
        );
        if let Some(allow) = c.allow {
            plans += &format!(
                "      - {{id: allowed-{0}, name: allowed-{0}, description: {0}, \
                 chart: {{path: {0}, policy: {allow}}}}}\n",
                c.chart
            );
        }
    }
    let yaml = format!(
        "services:\n  - id: svc-hostile\n    name: hostile\n    description: Hostile charts\n    \
         bindable: false\n    plans:\n{plans}"
    );
    std::fs::write(dir.join("hostile.yaml"), yaml).unwrap();
}

pub async fn hostile_broker() -> TestBroker {
    let catalog = tempfile::tempdir().unwrap();
    hostile_catalog(catalog.path());
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = hostile_charts();
    TestBroker::with_config(data, cfg).await
}

pub fn body(service: &str, plan: &str) -> Value {
    json!({
        "service_id": service,
        "plan_id": plan,
        "organization_guid": "org",
        "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": "apps"},
    })
}

/// Every file under `dir`, recursively (none if it doesn't exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { files_under(&p) } else { vec![p] }
        })
        .collect()
}

/// The rules named in a policy error's description, in order, once each.
pub fn rules_named(description: &str) -> Vec<String> {
    let mut rules: Vec<String> = description
        .split("(rule: ")
        .skip(1)
        .filter_map(|s| s.split_once(')').map(|(r, _)| r.to_owned()))
        .collect();
    rules.dedup();
    rules
}

/// The workload kinds that carry a pod, with their `apiVersion`.
pub const WORKLOADS: &[(&str, &str)] = &[
    ("Pod", "v1"),
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("ReplicationController", "v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
];

/// One hostile pod per Pod Security rule: (rule, patch on a restricted pod
/// spec, patch on its container `app`, where the container goes). Each
/// breaks exactly one rule, so the privileged container keeps
/// `allowPrivilegeEscalation: false` (which the API server would refuse
/// beside `privileged`; the policy runs first).
pub fn pod_cases() -> Vec<(&'static str, Value, Value, &'static str)> {
    let sc = |v: Value| json!({"securityContext": v});
    let none = Value::Null;
    vec![
        (
            "privileged-container",
            none.clone(),
            sc(json!({"privileged": true})),
            "containers",
        ),
        (
            "privilege-escalation",
            none.clone(),
            sc(json!({"allowPrivilegeEscalation": true})),
            "initContainers",
        ),
        (
            "unmasked-proc-mount",
            none.clone(),
            sc(json!({"procMount": "Unmasked"})),
            "containers",
        ),
        (
            "host-namespace",
            json!({"hostPID": true}),
            none.clone(),
            "containers",
        ),
        (
            "host-port",
            none.clone(),
            json!({"ports": [{"containerPort": 80, "hostPort": 80}]}),
            "containers",
        ),
        (
            "host-path",
            json!({"volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]}),
            none.clone(),
            "containers",
        ),
        (
            "volume-type",
            json!({"volumes": [{"name": "n", "nfs": {"server": "10.0.0.1", "path": "/"}}]}),
            none.clone(),
            "containers",
        ),
        (
            "run-as-root",
            none.clone(),
            sc(json!({"runAsUser": 0})),
            "initContainers",
        ),
        (
            "seccomp",
            none.clone(),
            sc(json!({"seccompProfile": {"type": "Unconfined"}})),
            "initContainers",
        ),
        (
            "apparmor",
            none.clone(),
            sc(json!({"appArmorProfile": {"type": "Unconfined"}})),
            "containers",
        ),
        (
            "selinux",
            sc(json!({"seLinuxOptions": {"type": "spc_t"}})),
            none.clone(),
            "containers",
        ),
        (
            "sysctls",
            sc(json!({"sysctls": [{"name": "kernel.core_pattern", "value": "|/bin/sh"}]})),
            none.clone(),
            "containers",
        ),
        (
            "capabilities-drop-all",
            none.clone(),
            sc(json!({"capabilities": {"drop": ["NET_RAW"]}})),
            "initContainers",
        ),
        (
            "capability-not-allowed",
            none.clone(),
            sc(json!({"capabilities": {"add": ["SYS_PTRACE"]}})),
            "containers",
        ),
        (
            "probe-host",
            none.clone(),
            json!({"readinessProbe": {"httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}}}),
            "containers",
        ),
    ]
}

pub fn merge(v: &mut Value, patch: &Value) {
    match patch {
        Value::Null => {}
        Value::Object(p) => {
            if !v.is_object() {
                *v = json!({});
            }
            let map = v.as_object_mut().unwrap();
            for (k, pv) in p {
                if pv.is_null() {
                    map.remove(k);
                } else {
                    merge(map.entry(k.clone()).or_insert(Value::Null), pv);
                }
            }
        }
        other => *v = other.clone(),
    }
}

/// A chart with one `kind` object whose pod passes "restricted" except for
/// the patches; `list` is the container list that holds `app`.
pub fn write_pod_chart(
    dir: &Path,
    kind: &str,
    api: &str,
    pod: &Value,
    container: &Value,
    list: &str,
) {
    let mut app = json!({
        "name": "app",
        "image": "busybox:1.36",
        "command": ["sleep", "infinity"],
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
    });
    merge(&mut app, container);
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [app.clone()],
    });
    if list != "containers" {
        spec[list] = json!([app]);
        spec["containers"][0]["name"] = json!("main");
        spec["containers"][0]["securityContext"] =
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    }
    merge(&mut spec, pod);
    if kind == "Job" || kind == "CronJob" {
        spec["restartPolicy"] = json!("Never");
    }
    let template = json!({"metadata": {"labels": {"app": "w"}}, "spec": spec});
    let selector = json!({"matchLabels": {"app": "w"}});
    let body = match kind {
        "Pod" => json!({"spec": spec}),
        "ReplicationController" => {
            json!({"spec": {"selector": {"app": "w"}, "template": template}})
        }
        "Job" => json!({"spec": {"template": template}}),
        "CronJob" => {
            json!({"spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}})
        }
        _ => json!({"spec": {"selector": selector, "template": template}}),
    };
    let mut doc =
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": "{{ .Release.Name }}-w"}});
    merge(&mut doc, &body);
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: {}\nversion: 0.1.0\n",
            dir.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("templates/workload.yaml"), doc.to_string()).unwrap();
}

/// A chart whose ConfigMap carries `files/key` (`.Files.Get`), under a
/// catalog with one plan `leak`.
pub fn leaking_chart(charts: &Path, catalog: &Path) {
    let chart = charts.join("leak");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::create_dir_all(chart.join("files")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: leak\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\ndata:\n  key: {{ .Files.Get \"files/key\" | quote }}\n",
    )
    .unwrap();
    std::fs::write(chart.join("files/key"), "harmless").unwrap();
    std::fs::write(
        catalog.join("leak.yaml"),
        "services:\n  - {id: svc-leak, name: leak, description: d, bindable: false, plans: [{id: leak, name: leak, description: d, chart: {path: leak}}]}\n",
    )
    .unwrap();
}

/// A chart that, asked to, fails with its generated password in every form
/// a template can give it, so helm quotes them all in its error.
pub fn encoding_chart(charts: &Path, catalog: &Path) {
    let chart = charts.join("encoder");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: encoder\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/cm.yaml"),
        r#"{{- $p := .Values.password }}
{{- if eq .Values.message "fail" }}
{{- fail (printf "std=%s nopad=%s url=%s inner1=%s inner2=%s inner5=%s hex=%x HEX=%X quoted=%q json=%s query=%s" (b64enc $p) (b64enc $p | trimSuffix "=" | trimSuffix "=") (b64enc $p | replace "+" "-" | replace "/" "_" | trimAll "=") (b64enc (printf "u%s" $p)) (b64enc (printf "us%s" $p)) (b64enc (printf "user:%s" $p)) $p $p $p (toJson (dict "p" $p)) (urlquery (printf "p=%s&x" $p))) }}
{{- end }}
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}}
data: {ok: "yes"}
"#,
    )
    .unwrap();
    std::fs::write(
        catalog.join("encoder.yaml"),
        r#"services:
  - id: svc-enc
    name: enc
    description: d
    bindable: true
    plans:
      - id: enc
        name: enc
        description: d
        chart:
          path: encoder
          values: {message: "{{parameters.message}}", password: "{{secrets.password}}"}
          secrets: {password: {length: 25}}
          credentials: {password: "{{secrets.password}}"}
"#,
    )
    .unwrap();
}

/// Lists whose items a hostile chart could have created in its namespace.
pub const NAMESPACED_LISTS: &[&str] = &[
    "/api/v1/namespaces/{ns}/configmaps",
    "/api/v1/namespaces/{ns}/secrets",
    "/api/v1/namespaces/{ns}/serviceaccounts",
    "/api/v1/namespaces/{ns}/services",
    "/api/v1/namespaces/{ns}/pods",
    "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "/apis/apps/v1/namespaces/{ns}/deployments",
    "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
    "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
];

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
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{instance}?accepts_incomplete=true"),
                Some(request),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", c.chart, r.text);
        let op = r.json["operation"].as_str().unwrap().to_owned();
        let done = b.wait_instance(&instance, &op).await;
        assert_eq!(done.json["state"], "failed", "{}: {}", c.chart, done.text);
        let d = done.json["description"].as_str().unwrap();
        let object = c.object.replace("{r}", &format!("cb-{instance}"));
        assert!(d.contains("policy rejected"), "{}: {d}", c.chart);
        assert!(
            d.contains(&format!("{object}: ")),
            "{}: {object} in {d}",
            c.chart
        );
        assert!(
            d.contains(&format!("(rule: {})", c.rule)),
            "{}: rule {} in {d}",
            c.chart,
            c.rule
        );
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
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{instance}?accepts_incomplete=true"),
                Some(request),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{chart}: {}", r.text);
        let done = b
            .wait_instance(&instance, r.json["operation"].as_str().unwrap())
            .await;
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
    let r = b
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{instance}?accepts_incomplete=true"),
            Some(request),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let done = b
        .wait_instance(&instance, r.json["operation"].as_str().unwrap())
        .await;
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
