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
