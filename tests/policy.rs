//! Policy on rendered manifests, end to end: hostile charts (one per rule,
//! under `tests/fixtures/hostile-charts/`) provisioned through the HTTP API
//! are refused with the object and rule named, nothing is written, and the
//! matching `chart.policy` allowance lets the same chart through. The
//! repository's own charts pass the default policy.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};

use chartbroker::catalog::Catalog;
use chartbroker::helm::Helm;
use chartbroker::policy::{self, Policy};

/// One hostile chart: the object it smuggles in (`{r}` is the release name),
/// the rule that stops it, and the plan policy that would allow it, if any.
struct Case {
    chart: &'static str,
    object: &'static str,
    rule: &'static str,
    allow: Option<&'static str>,
}

const fn case(
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

const CASES: &[Case] = &[
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

fn hostile_charts() -> PathBuf {
    fixtures().join("hostile-charts")
}

/// A catalog with a `hostile-<chart>` plan (default policy) for every case
/// and an `allowed-<chart>` plan for those with an allowance.
fn hostile_catalog(dir: &Path) {
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

async fn hostile_broker() -> TestBroker {
    let catalog = tempfile::tempdir().unwrap();
    hostile_catalog(catalog.path());
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = hostile_charts();
    TestBroker::with_config(data, cfg).await
}

fn body(service: &str, plan: &str) -> Value {
    json!({
        "service_id": service,
        "plan_id": plan,
        "organization_guid": "org",
        "space_guid": "space",
        "context": {"platform": "kubernetes", "namespace": "apps"},
    })
}

/// Every file under `dir`, recursively (none if it doesn't exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
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

#[test]
fn every_fixture_has_a_case() {
    let mut dirs: Vec<String> = std::fs::read_dir(hostile_charts())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.chart.to_owned()).collect();
    cases.sort();
    assert_eq!(dirs, cases);
}

#[tokio::test]
async fn hostile_charts_are_refused_before_anything_is_written() {
    let b = hostile_broker().await;
    for c in CASES {
        let instance = format!("i-{}", c.chart);
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{instance}"),
                Some(body("svc-hostile", &format!("hostile-{}", c.chart))),
            )
            .await;
        assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
        let description = r.json["description"].as_str().unwrap();
        let object = c.object.replace("{r}", &format!("cb-{instance}"));
        assert!(
            description.starts_with("policy rejected the chart: "),
            "{}: {description}",
            c.chart
        );
        assert!(
            description.contains(&format!("{object}: ")),
            "{}: expected {object} in {description}",
            c.chart
        );
        assert!(
            description.contains(&format!("(rule: {})", c.rule)),
            "{}: expected rule {} in {description}",
            c.chart,
            c.rule
        );
    }
    let written = files_under(&b.data.path().join("render"));
    assert!(written.is_empty(), "manifests written: {written:?}");
}

#[tokio::test]
async fn async_provision_fails_with_the_violation() {
    let b = hostile_broker().await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/i-async?accepts_incomplete=true",
            Some(body("svc-hostile", "hostile-privileged")),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let op = r.json["operation"].as_str().unwrap().to_owned();
    let r = b.wait_instance("i-async", &op).await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    let description = r.json["description"].as_str().unwrap();
    assert!(
        description.contains("Deployment/cb-i-async-web: container \"app\" is privileged"),
        "{description}"
    );
    assert!(files_under(&b.data.path().join("render")).is_empty());
}

#[tokio::test]
async fn plan_allowances_let_the_same_charts_through() {
    let b = hostile_broker().await;
    for c in CASES.iter().filter(|c| c.allow.is_some()) {
        let instance = format!("ok-{}", c.chart);
        let r = b
            .call(
                Method::PUT,
                &format!("/v2/service_instances/{instance}"),
                Some(body("svc-hostile", &format!("allowed-{}", c.chart))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.chart, r.text);
        assert!(b.release_dir(&instance).join("manifests.yaml").is_file());
    }
}

#[test]
fn catalog_lint_names_bad_policy_entries() {
    let yaml = "services:\n  - id: s\n    name: s\n    description: d\n    bindable: false\n    \
                plans:\n      - id: p\n        name: p\n        description: d\n        \
                chart: {path: privileged, policy: {extra_kinds: [ClusterRole, Gizmo], \
                allow_capabilities: [CAP_NET_BIND_SERVICE, SUPERPOWER]}}\n";
    let err = Catalog::from_yaml(Path::new("c.yaml"), yaml, &hostile_charts()).unwrap_err();
    let text = err.to_string();
    for path in [
        "services[0].plans[0].chart.policy.extra_kinds[0]: `ClusterRole` is cluster-scoped",
        "services[0].plans[0].chart.policy.extra_kinds[1]: unknown kind `Gizmo`",
        "services[0].plans[0].chart.policy.allow_capabilities[1]: unknown capability `SUPERPOWER`",
    ] {
        assert!(text.contains(path), "expected {path:?} in:\n{text}");
    }
    assert_eq!(text.matches("chart.policy").count(), 3, "{text}");
    let typo = yaml.replace("extra_kinds", "extra_kind");
    assert!(Catalog::from_yaml(Path::new("c.yaml"), &typo, &hostile_charts()).is_err());
}

/// The rules named in a policy error's description, in order, once each.
fn rules_named(description: &str) -> Vec<String> {
    let mut rules: Vec<String> = description
        .split("(rule: ")
        .skip(1)
        .filter_map(|s| s.split_once(')').map(|(r, _)| r.to_owned()))
        .collect();
    rules.dedup();
    rules
}

/// The workload kinds that carry a pod, with their `apiVersion`.
const WORKLOADS: &[(&str, &str)] = &[
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
fn pod_cases() -> Vec<(&'static str, Value, Value, &'static str)> {
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

fn merge(v: &mut Value, patch: &Value) {
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
fn write_pod_chart(dir: &Path, kind: &str, api: &str, pod: &Value, container: &Value, list: &str) {
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

/// Every Pod Security rule, on every workload kind, through a provision:
/// refused with exactly that rule named and nothing written; the plan that
/// loosens that one rule by name gets the same chart through.
#[tokio::test]
async fn pod_security_restricted_on_every_workload_kind() {
    let charts = tempfile::tempdir().unwrap();
    let catalog = tempfile::tempdir().unwrap();
    let kinds = "extra_kinds: [DaemonSet, ReplicationController]";
    let mut plans = String::new();
    // The control: the same pod with nothing broken passes in every kind.
    let mut cases = vec![("none", Value::Null, Value::Null, "containers")];
    cases.extend(pod_cases());
    for (rule, pod, container, list) in &cases {
        for (kind, api) in WORKLOADS {
            let chart = format!("{rule}-{}", kind.to_ascii_lowercase());
            write_pod_chart(&charts.path().join(&chart), kind, api, pod, container, list);
            plans += &format!(
                "      - {{id: {chart}, name: {chart}, description: d, chart: {{path: {chart}, policy: {{{kinds}}}}}}}\n"
            );
            if *kind == "Deployment" && *rule != "none" {
                plans += &format!(
                    "      - {{id: allow-{chart}, name: allow-{chart}, description: d, chart: {{path: {chart}, policy: {{{kinds}, allow: [{rule}]}}}}}}\n"
                );
            }
        }
    }
    std::fs::write(
        catalog.path().join("pods.yaml"),
        format!("services:\n  - id: svc-pods\n    name: pods\n    description: d\n    bindable: false\n    plans:\n{plans}"),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = charts.path().to_path_buf();
    let b = TestBroker::with_config(data, cfg).await;
    for (n, (rule, _, _, _)) in cases.iter().enumerate() {
        for (kind, _) in WORKLOADS {
            let plan = format!("{rule}-{}", kind.to_ascii_lowercase());
            // Short ids keep the release name readable: cb-<instance>.
            let instance = format!("p{n}-{}", kind.to_ascii_lowercase());
            let r = b
                .call(
                    Method::PUT,
                    &format!("/v2/service_instances/{instance}"),
                    Some(body("svc-pods", &plan)),
                )
                .await;
            if *rule == "none" {
                assert_eq!(r.status, StatusCode::CREATED, "{plan}: {}", r.text);
                continue;
            }
            assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
            let description = r.json["description"].as_str().unwrap();
            assert!(
                description.starts_with(&format!(
                    "policy rejected the chart: {kind}/cb-{instance}-w: "
                )),
                "{plan}: {description}"
            );
            assert_eq!(rules_named(description), [*rule], "{plan}: {description}");
            assert!(!b.release_dir(&instance).exists(), "{plan} wrote manifests");
            if *kind == "Deployment" {
                let r = b
                    .call(
                        Method::PUT,
                        &format!("/v2/service_instances/ok-{instance}"),
                        Some(body("svc-pods", &format!("allow-{plan}"))),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "allow-{plan}: {}", r.text);
            }
        }
    }
}

/// Every plan of the repository's catalog provisions through the default
/// policy, with the values the catalog gives its chart.
#[tokio::test]
async fn repository_catalog_passes_the_default_policy() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = repo().join("catalog");
    cfg.charts_dir = repo().join("charts");
    let catalog = Catalog::load(&cfg.catalog_dir, &cfg.charts_dir).unwrap();
    let b = TestBroker::with_config(data, cfg).await;
    let mut provisioned = 0;
    for service in catalog.services() {
        for plan in service.plans.iter().filter(|p| p.chart().is_some()) {
            assert_eq!(plan.chart().unwrap().policy, Policy::default());
            let instance = format!("ex-{}-{}", service.name, plan.name);
            let mut request = body(&service.id, &plan.id);
            // A plan that uses another service gets an instance provisioned
            // earlier in this loop (catalog files load in name order).
            for dep in plan.chart().unwrap().uses.values() {
                let used = catalog
                    .services()
                    .iter()
                    .find(|s| s.name == dep.service)
                    .expect("lint checked the service exists");
                request["parameters"][&dep.parameter] =
                    json!(format!("ex-{}-{}", used.name, used.plans[0].name));
            }
            let r = b
                .call(
                    Method::PUT,
                    &format!("/v2/service_instances/{instance}"),
                    Some(request),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{instance}: {}", r.text);
            provisioned += 1;
        }
    }
    assert!(provisioned >= 6, "only {provisioned} chart plans");
}

/// Every chart under `charts/` (including those no plan uses yet) passes
/// the default policy with its own default values.
#[tokio::test]
async fn repository_charts_pass_with_default_values() {
    let home = tempfile::tempdir().unwrap();
    let helm = Helm::new(helm_bin(), home.path(), Duration::from_secs(60));
    let mut charts: Vec<PathBuf> = std::fs::read_dir(repo().join("charts"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Chart.yaml").is_file())
        .collect();
    charts.sort();
    assert!(charts.len() >= 4, "{charts:?}");
    for chart in charts {
        let manifests = helm
            .template(
                "ex-1",
                &chart,
                "apps",
                &json!({}),
                chartbroker::helm::DEFAULT_MAX_MANIFEST_BYTES,
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", chart.display()));
        assert!(manifests.contains("kind:"), "{manifests}");
        if let Err(v) = policy::check(&manifests, "apps", &Policy::default()) {
            panic!("{}: {v}", chart.display());
        }
    }
}

/// A chart whose ConfigMap carries `files/key` (`.Files.Get`), under a
/// catalog with one plan `leak`.
fn leaking_chart(charts: &Path, catalog: &Path) {
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

/// A symlink in a chart folder would let the chart author render any file
/// the broker can read (here a stand-in for its store key) into a
/// manifest. It is refused at lint, at start (the catalog doesn't load),
/// and at every use if it appears while the broker runs, naming the file.
#[tokio::test]
async fn symlinked_chart_files_are_refused() {
    let charts = tempfile::tempdir().unwrap();
    let catalog = tempfile::tempdir().unwrap();
    leaking_chart(charts.path(), catalog.path());
    let data = tempfile::tempdir().unwrap();
    let secret = data.path().join("credentials.yaml");
    std::fs::write(&secret, "TOP-SECRET-KEY-MATERIAL").unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = charts.path().to_path_buf();
    let b = TestBroker::with_config(data, cfg).await;

    // The link appears after start: the next provision is refused.
    let key = charts.path().join("leak/files/key");
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(&secret, &key).unwrap();
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/leak-1",
            Some(body("svc-leak", "leak")),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let description = r.json["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("{}: is a symbolic link", key.display())),
        "{description}"
    );
    assert!(!r.text.contains("TOP-SECRET"), "{}", r.text);
    let written = files_under(&b.data.path().join("render"));
    assert!(written.is_empty(), "manifests written: {written:?}");

    // At start and at lint, the catalog doesn't load.
    let err = Catalog::load(catalog.path(), charts.path()).unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "chart.path: {}: is a symbolic link",
            key.display()
        )),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chartbroker"))
        .args(["catalog", "lint"])
        .arg(catalog.path())
        .arg("--charts")
        .arg(charts.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("leak/files/key: is a symbolic link"),
        "{stderr}"
    );

    // A chart folder that is a link elsewhere is refused the same way.
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, "harmless").unwrap();
    assert!(Catalog::load(catalog.path(), charts.path()).is_ok());
    std::fs::rename(charts.path().join("leak"), charts.path().join("real")).unwrap();
    std::os::unix::fs::symlink(charts.path().join("real"), charts.path().join("leak")).unwrap();
    let err = Catalog::load(catalog.path(), charts.path()).unwrap_err();
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
}

/// `catalog lint` shows what each plan's policy allows, and refuses a plan
/// that tries to loosen a rule no plan may loosen.
#[test]
fn catalog_lint_shows_each_plans_policy() {
    let catalog = tempfile::tempdir().unwrap();
    hostile_catalog(catalog.path());
    let lint = |dir: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_chartbroker"))
            .args(["catalog", "lint"])
            .arg(dir)
            .arg("--charts")
            .arg(hostile_charts())
            .output()
            .unwrap()
    };
    let out = lint(catalog.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "  hostile/hostile-privileged: default policy (Pod Security restricted)\n",
        "  hostile/allowed-privileged: allows rules off: privileged-container, privilege-escalation, unmasked-proc-mount\n",
        "  hostile/allowed-daemonset: allows kinds: also DaemonSet\n",
        "  hostile/allowed-capabilities-add: allows capabilities: also SYS_ADMIN\n",
        "  hostile/allowed-node-port: allows rules off: service-type\n",
        "  hostile/allowed-ingress-any-host: allows ingress hosts: victim.example.com\n",
        "  hostile/allowed-role-beyond-edit: allows role resources: also rolebindings.rbac.authorization.k8s.io\n",
        "  hostile/allowed-ingress-snippet: allows ingress hosts: *.apps.example.com; \
         ingress annotations: also nginx.ingress.kubernetes.io/configuration-snippet\n",
    ] {
        assert!(stdout.contains(line), "expected {line:?} in:\n{stdout}");
    }
    // The rules themselves, each by name.
    let listed = |prefix: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"));
        line.split(", ").map(str::to_owned).collect()
    };
    let loosenable = listed("policy rules a plan may loosen (chart.policy.allow): ");
    let never = listed("policy rules no plan may loosen: ");
    for rule in policy::RULES {
        let list = if rule.loosenable { &loosenable } else { &never };
        assert!(
            list.iter().any(|r| r == rule.name),
            "{} not listed",
            rule.name
        );
    }
    std::fs::write(
        catalog.path().join("hostile.yaml"),
        "services:\n  - {id: s, name: s, description: d, bindable: false, plans: [{id: p, name: p, description: d, chart: {path: wildcard-role, policy: {allow: [wildcard-rbac, seccomp, everything]}}}]}\n",
    )
    .unwrap();
    let out = lint(catalog.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("chart.policy.allow[0]: rule `wildcard-rbac` can't be loosened"),
        "{stderr}"
    );
    assert!(
        stderr.contains("chart.policy.allow[2]: unknown rule `everything`"),
        "{stderr}"
    );
    assert!(!stderr.contains("allow[1]"), "{stderr}");
}

/// A chart that, asked to, fails with its generated password in every form
/// a template can give it, so helm quotes them all in its error.
fn encoding_chart(charts: &Path, catalog: &Path) {
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

/// Whatever encoding a chart wraps a generated secret in, helm's error
/// reaches the platform (sync error body, async `last_operation`) with
/// the secret redacted.
#[tokio::test]
async fn generated_secrets_are_redacted_in_every_encoding() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let charts = tempfile::tempdir().unwrap();
    let catalog = tempfile::tempdir().unwrap();
    encoding_chart(charts.path(), catalog.path());
    let data = tempfile::tempdir().unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog.path().to_path_buf();
    cfg.charts_dir = charts.path().to_path_buf();
    let b = TestBroker::with_config(data, cfg).await;
    let mut provision = body("svc-enc", "enc");
    provision["parameters"] = json!({"message": "ok"});
    let r = b
        .call(Method::PUT, "/v2/service_instances/enc-1", Some(provision))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/enc-1/service_bindings/b1",
            Some(json!({"service_id": "svc-enc", "plan_id": "enc"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let password = r.json["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
    let leaks = [
        password.clone(),
        STANDARD.encode(&password),
        STANDARD.encode(&password).trim_end_matches('=').to_owned(),
        URL_SAFE_NO_PAD.encode(&password),
        // The part of `b64enc "user:<password>"` that only the password decides.
        STANDARD.encode(format!("user:{password}"))[8..36].to_owned(),
        hex.clone(),
        hex.to_ascii_uppercase(),
    ];

    let update = json!({"service_id": "svc-enc", "parameters": {"message": "fail"}});
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/enc-1",
            Some(update.clone()),
        )
        .await;
    assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
    let sync = r.text.clone();
    let r = b
        .call(
            Method::PATCH,
            "/v2/service_instances/enc-1?accepts_incomplete=true",
            Some(update),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = b
        .wait_instance("enc-1", r.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(r.json["state"], "failed", "{}", r.text);
    for text in [sync, r.text.clone()] {
        // The failure is there to read, only the secret is gone.
        assert!(text.contains("std=<redacted>"), "{text}");
        assert!(text.contains("hex=<redacted>"), "{text}");
        for leak in &leaks {
            assert!(!text.contains(leak.as_str()), "{leak} in {text}");
        }
    }
}

/// Lists whose items a hostile chart could have created in its namespace.
const NAMESPACED_LISTS: &[&str] = &[
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
const CLUSTER_LISTS: &[&str] = &[
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "/api/v1/namespaces",
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "/api/v1/namespaces/kube-system/configmaps",
];

/// Every hostile chart on the helm engine against the real API server
/// (tests/testenv), as cluster admin so only the broker's own checks stand
/// in the way: each fails with its rule named in `last_operation`, and
/// nothing of any of them exists on the API server afterwards.
async fn hostile_charts_refused_by_helm(helm: PathBuf, tag: &str) {
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
async fn allowed_charts_install(b: &TestBroker, k: &common::cluster::Cluster, tag: &str) {
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
async fn leftovers(k: &common::cluster::Cluster, ns: &str) -> Vec<String> {
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

#[tokio::test(flavor = "multi_thread")]
async fn hostile_charts_are_refused_by_helm4_on_a_real_api_server() {
    hostile_charts_refused_by_helm(helm_bin(), "4").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_charts_are_refused_by_helm3_on_a_real_api_server() {
    hostile_charts_refused_by_helm(helm3_bin(), "3").await;
}

/// A catalog with one plan for `tests/fixtures/benign-charts/full-release`,
/// whose Ingress host is under the plan's per-namespace pattern.
fn benign_broker_config(data: &Path, catalog: &Path) -> chartbroker::runtime::ServeConfig {
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

/// The benign half of the allow-list, end to end: a release using every
/// default kind, each aimed only at its own objects, passes the default
/// policy on the render engine.
#[tokio::test]
async fn a_well_behaved_release_passes_the_allow_list() {
    let catalog = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = benign_broker_config(data.path(), catalog.path());
    let b = TestBroker::with_config(data, cfg).await;
    let r = b
        .call(
            Method::PUT,
            "/v2/service_instances/fine",
            Some(body("svc-benign", "full")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let written = std::fs::read_to_string(b.release_dir("fine").join("manifests.yaml")).unwrap();
    // Read as YAML (JSON included), whatever form the emitter writes.
    let docs: Vec<Value> = serde_saphyr::from_multiple(&written).unwrap();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "CronJob",
    ] {
        assert!(kinds.contains(&kind), "{kind} not written: {kinds:?}");
    }
}

/// The same release on the helm engine, Helm 4 and Helm 3, against the
/// real API server: installed, with the objects the rules look at.
async fn well_behaved_release_installs(helm: PathBuf, tag: &str) {
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

#[tokio::test(flavor = "multi_thread")]
async fn a_well_behaved_release_installs_with_helm4_on_a_real_api_server() {
    well_behaved_release_installs(helm_bin(), "4").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_well_behaved_release_installs_with_helm3_on_a_real_api_server() {
    well_behaved_release_installs(helm3_bin(), "3").await;
}
