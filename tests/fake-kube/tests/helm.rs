//! The real helm binaries against fake-kube: a whole release life cycle
//! (install with `--create-namespace`, upgrade, status, list, history,
//! rollback, uninstall) of `tests/charts/demo`, for Helm 4 with server-side
//! apply, Helm 4 with `--server-side=false`, Helm 4 switching between the
//! two, and Helm 3.
//!
//! The binaries come from `CHARTBROKER_HELM` / `CHARTBROKER_HELM3`, else
//! from `.tools/bin/{helm,helm3}` of the repository (`scripts/install-tools.sh`
//! puts them there). A missing binary fails the test: it never skips.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fake_kube::{FakeKube, FakeKubeHandle};
use serde_json::{Value, json};

const RELEASE: &str = "demo";
const NS: &str = "apps";

fn helm_binary(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.tools/bin")
            .join(name)
    });
    assert!(
        path.is_file(),
        "{name} not found at {} — run scripts/install-tools.sh or set {var} to a helm binary",
        path.display()
    );
    path
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/charts/demo")
}

/// One helm binary with an isolated home and a kubeconfig for one fake.
struct Helm {
    bin: PathBuf,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Helm {
    fn new(bin: PathBuf, fake: &FakeKubeHandle) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = fake.kubeconfig(dir.path());
        Helm {
            bin,
            dir,
            kubeconfig,
        }
    }

    /// Runs helm with the isolated environment.
    fn output(&self, args: &[&str]) -> std::process::Output {
        let home = self.dir.path();
        Command::new(&self.bin)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            // client-go caches discovery under $HOME/.kube.
            .env("HOME", home)
            .env_remove("KUBECONFIG")
            .env_remove("HELM_DRIVER")
            .env_remove("HELM_NAMESPACE")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()))
    }

    /// Runs helm; panics with its output if it fails. Returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "helm {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn values(&self, name: &str, values: Value) -> String {
        // A JSON file, not --set: --set turns "9" into a number.
        let path = self.dir.path().join(name);
        std::fs::write(&path, values.to_string()).unwrap();
        path.to_string_lossy().into_owned()
    }
}

/// The release records: `(version, status label, decoded release)`.
fn release_records(fake: &FakeKube) -> Vec<(u64, String, Value)> {
    let mut records: Vec<(u64, String, Value)> = fake
        .list("secrets", Some(NS))
        .into_iter()
        .filter(|s| s["type"] == "helm.sh/release.v1")
        .map(|s| {
            let name = s["metadata"]["name"].as_str().unwrap();
            let labels = &s["metadata"]["labels"];
            assert_eq!(labels["owner"], "helm", "{name}");
            assert_eq!(labels["name"], RELEASE, "{name}");
            let version: u64 = labels["version"].as_str().unwrap().parse().unwrap();
            assert_eq!(name, format!("sh.helm.release.v1.{RELEASE}.v{version}"));
            // data.release: base64 (Secret data) of base64 (helm) of gzip'd JSON.
            let helm_b64 = B64.decode(s["data"]["release"].as_str().unwrap()).unwrap();
            let gz = B64.decode(helm_b64).unwrap();
            let mut json = String::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_string(&mut json)
                .unwrap();
            let release: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(release["name"], RELEASE);
            assert_eq!(release["version"], version);
            assert_eq!(release["info"]["status"], labels["status"]);
            (
                version,
                labels["status"].as_str().unwrap().to_string(),
                release,
            )
        })
        .collect();
    records.sort_by_key(|r| r.0);
    records
}

fn statuses(fake: &FakeKube) -> Vec<(u64, String)> {
    release_records(fake)
        .into_iter()
        .map(|(v, s, _)| (v, s))
        .collect()
}

fn get(fake: &FakeKube, gv: &str, plural: &str, name: &str) -> Value {
    fake.get(gv, plural, Some(NS), name)
        .unwrap_or_else(|| panic!("{gv} {plural} {NS}/{name} missing"))
}

fn assert_app(fake: &FakeKube, greeting: &str, image: &str) {
    let cm = get(fake, "v1", "configmaps", &format!("{RELEASE}-config"));
    assert_eq!(cm["data"], json!({"greeting": greeting}));
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(
        cm["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );
    let secret = get(fake, "v1", "secrets", &format!("{RELEASE}-secret"));
    assert_eq!(secret["data"]["password"], B64.encode("s3cret"));
    assert!(secret.get("stringData").is_none());
    let svc = get(fake, "v1", "services", RELEASE);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    let deploy = get(fake, "apps/v1", "deployments", RELEASE);
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], image);
    // Merged, not replaced: the fields the change didn't mention remain.
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(container["env"][0]["name"], "PASSWORD");
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| [&m["manager"], &m["operation"]].map(|v| v.as_str().unwrap().to_string()))
        .map(|[manager, operation]| (manager, operation))
        .collect()
}

/// install, upgrade, status, list, history, rollback, uninstall, with
/// `install_flags` on install and `upgrade_flags` on upgrade and rollback.
/// Returns the fake for further checks.
fn life_cycle(bin: PathBuf, install_flags: &[&str], upgrade_flags: &[&str]) -> FakeKubeHandle {
    let fake = FakeKube::start_blocking();
    let helm = Helm::new(bin, &fake);
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let with = |base: &[&str], extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| helm.run(&args.iter().map(String::as_str).collect::<Vec<_>>());

    run(with(
        &[
            "install",
            RELEASE,
            chart,
            "--namespace",
            NS,
            "--create-namespace",
        ],
        install_flags,
    ));
    assert!(fake.get("v1", "namespaces", None, NS).is_some());
    assert_app(&fake, "hello", "registry.example/demo:1.0.0");
    assert_eq!(statuses(&fake), [(1, "deployed".into())]);

    let values = helm.values("v2.json", json!({"greeting": "hi", "image": "demo:2"}));
    run(with(
        &["upgrade", RELEASE, chart, "-n", NS, "-f", &values],
        upgrade_flags,
    ));
    assert_app(&fake, "hi", "demo:2");
    let deploy = get(&fake, "apps/v1", "deployments", RELEASE);
    assert_eq!(deploy["metadata"]["generation"], 2);
    assert_eq!(
        statuses(&fake),
        [(1, "superseded".into()), (2, "deployed".into())]
    );

    let status: Value =
        serde_json::from_str(&helm.run(&["status", RELEASE, "-n", NS, "-o", "json"])).unwrap();
    assert_eq!(status["name"], RELEASE);
    assert_eq!(status["version"], 2);
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["namespace"], NS);

    let list: Value =
        serde_json::from_str(&helm.run(&["list", "--all-namespaces", "-o", "json"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], RELEASE);
    assert_eq!(list[0]["namespace"], NS);
    assert_eq!(list[0]["revision"], "2");
    assert_eq!(list[0]["status"], "deployed");

    let history: Value =
        serde_json::from_str(&helm.run(&["history", RELEASE, "-n", NS, "-o", "json"])).unwrap();
    let history: Vec<(i64, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["revision"].as_i64().unwrap(),
                h["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(history, [(1, "superseded"), (2, "deployed")]);

    run(with(&["rollback", RELEASE, "1", "-n", NS], upgrade_flags));
    assert_app(&fake, "hello", "registry.example/demo:1.0.0");
    assert_eq!(
        statuses(&fake),
        [
            (1, "superseded".into()),
            (2, "superseded".into()),
            (3, "deployed".into())
        ]
    );

    helm.run(&["uninstall", RELEASE, "-n", NS]);
    for (gv, plural) in [
        ("v1", "configmaps"),
        ("v1", "secrets"),
        ("v1", "services"),
        ("apps/v1", "deployments"),
    ] {
        assert!(
            fake.list(plural, Some(NS)).is_empty(),
            "{gv} {plural} left after uninstall: {:?}",
            fake.list(plural, Some(NS))
        );
    }
    // helm never deletes the namespace it created.
    assert!(fake.get("v1", "namespaces", None, NS).is_some());
    let list: Value = serde_json::from_str(&helm.run(&["list", "-A", "-o", "json"])).unwrap();
    assert_eq!(list, json!([]));
    fake
}

fn wrote_secrets_with(fake: &FakeKube, method: &str) -> bool {
    fake.requests()
        .iter()
        .any(|(m, p)| m == method && p.starts_with(&format!("/api/v1/namespaces/{NS}/secrets")))
}

fn patched_with_apply(fake: &FakeKube) -> bool {
    fake.requests()
        .iter()
        .any(|(m, p)| m == "PATCH" && p.contains("fieldManager=helm") && p.contains("force="))
}

#[test]
fn helm4_server_side_apply() {
    let bin = helm_binary("CHARTBROKER_HELM", "helm");
    // A server-side dry run stores nothing.
    {
        let fake = FakeKube::start_blocking();
        let helm = Helm::new(bin.clone(), &fake);
        let chart = chart();
        helm.run(&[
            "install",
            RELEASE,
            chart.to_str().unwrap(),
            "-n",
            "default",
            "--dry-run=server",
        ]);
        assert!(fake.list("configmaps", Some("default")).is_empty());
        assert!(fake.list("secrets", Some("default")).is_empty());
    }
    let fake = life_cycle(bin, &[], &[]);
    assert!(
        patched_with_apply(&fake),
        "Helm 4 applies server-side by default"
    );
    assert!(wrote_secrets_with(&fake, "PUT"));
}

#[test]
fn helm4_client_side_apply() {
    let bin = helm_binary("CHARTBROKER_HELM", "helm");
    let fake = life_cycle(bin, &["--server-side=false"], &["--server-side=false"]);
    assert!(!patched_with_apply(&fake));
    assert!(fake.requests().iter().any(|(m, p)| m == "POST"
        && p.starts_with(&format!("/apis/apps/v1/namespaces/{NS}/deployments"))));
}

#[test]
fn helm4_client_side_install_then_server_side_upgrade() {
    let bin = helm_binary("CHARTBROKER_HELM", "helm");
    let fake = FakeKube::start_blocking();
    let helm = Helm::new(bin, &fake);
    let chart = chart();
    let chart = chart.to_str().unwrap();
    helm.run(&[
        "install",
        RELEASE,
        chart,
        "-n",
        NS,
        "--create-namespace",
        "--server-side=false",
    ]);
    let cm = get(&fake, "v1", "configmaps", &format!("{RELEASE}-config"));
    assert_eq!(managers(&cm), [("helm".to_string(), "Update".to_string())]);
    let values = helm.values("v2.json", json!({"greeting": "hi", "image": "demo:2"}));
    helm.run(&[
        "upgrade",
        RELEASE,
        chart,
        "-n",
        NS,
        "-f",
        &values,
        "--server-side=true",
    ]);
    assert_app(&fake, "hi", "demo:2");
    // Helm migrated its client-side ownership to an Apply entry.
    let cm = get(&fake, "v1", "configmaps", &format!("{RELEASE}-config"));
    assert_eq!(managers(&cm), [("helm".to_string(), "Apply".to_string())]);
    helm.run(&["uninstall", RELEASE, "-n", NS]);
    assert!(fake.list("configmaps", Some(NS)).is_empty());
}

#[test]
fn helm3_life_cycle() {
    let bin = helm_binary("CHARTBROKER_HELM3", "helm3");
    let fake = life_cycle(bin, &[], &[]);
    assert!(
        !patched_with_apply(&fake),
        "Helm 3 has no server-side apply"
    );
    assert!(wrote_secrets_with(&fake, "POST"));
}

/// `--wait` needs ready workloads: with no controllers nothing gets ready,
/// unless the fake imitates them.
fn wait_for_ready_workloads(bin: PathBuf, wait: &str) {
    let fake = FakeKube::start_blocking();
    let helm = Helm::new(bin, &fake);
    let chart = chart();
    let install = |name: &str| {
        let args = ["install", name, chart.to_str().unwrap(), "-n", "default"];
        helm.output(&[&args[..], &[wait, "--timeout", "2s"]].concat())
    };
    let out = install("slow");
    assert!(
        !out.status.success(),
        "{wait}: nothing can be ready without controllers"
    );

    fake.set_workloads_ready(true);
    let out = install("quick");
    assert!(
        out.status.success(),
        "{wait}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deploy = fake
        .get("apps/v1", "deployments", Some("default"), "quick")
        .unwrap();
    assert_eq!(deploy["status"]["readyReplicas"], 1);
    let replica_sets = fake.list("replicasets", Some("default"));
    assert_eq!(replica_sets.len(), 1, "the current ReplicaSet of 'quick'");
    helm.run(&["uninstall", "quick", "-n", "default"]);
    assert!(
        fake.list("replicasets", Some("default")).is_empty(),
        "collected with their Deployment"
    );
}

#[test]
fn helm4_wait_for_ready_workloads() {
    wait_for_ready_workloads(helm_binary("CHARTBROKER_HELM", "helm"), "--wait=watcher");
}

#[test]
fn helm3_wait_for_ready_workloads() {
    wait_for_ready_workloads(helm_binary("CHARTBROKER_HELM3", "helm3"), "--wait");
}
