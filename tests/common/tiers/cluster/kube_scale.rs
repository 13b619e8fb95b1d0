//! Helpers of the tests in tests/cluster/kube_scale.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use common::cluster::{BrokerIdentity, Cluster};
use common::process::*;
use common::*;
use serde_json::json;

use chartbroker::broker::model::{Instance, InstanceState, Secrets};

pub const REPLICAS: usize = 3;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `apiserver_request_total` for Secrets and Leases, summed by
/// (resource, verb).
pub async fn requests(k: &Cluster) -> BTreeMap<(String, String), f64> {
    let req = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap();
    let text = k.client.request_text(req).await.expect("GET /metrics");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let resource = label("resource");
        if resource != "secrets" && resource != "leases" {
            continue;
        }
        *out.entry((resource, label("verb"))).or_default() += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}

pub fn diff(
    after: &BTreeMap<(String, String), f64>,
    before: &BTreeMap<(String, String), f64>,
) -> BTreeMap<(String, String), f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

pub fn instance(id: &str, ns: &str) -> Instance {
    Instance {
        id: id.to_string(),
        service_id: "svc-cluster".into(),
        plan_id: "plan-tiny".into(),
        parameters: json!({"message": "seeded"}),
        requested_parameters: None,
        context: json!({"platform": "kubernetes", "namespace": ns}),
        organization_guid: None,
        space_guid: None,
        maintenance_version: None,
        release: format!("cb-{id}"),
        namespace: ns.to_string(),
        secrets: Secrets::default(),
        dashboard_url: None,
        state: InstanceState::Ready,
        provision_fingerprint: String::new(),
        dependencies: BTreeMap::new(),
        teardown: None,
        operations: Vec::new(),
    }
}

pub fn spawn(
    id: &BrokerIdentity,
    data: &Path,
    helm: &Path,
    key: &str,
    port: u16,
    lease: u64,
) -> Proc {
    let bin = std::env::var("CHARTBROKER_SCALE_BIN").unwrap_or_else(|_| broker_bin().to_string());
    Proc(
        id.replica(&bin, data, helm, key, port, lease)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .expect("chartbroker starts"),
    )
}

pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A helm that hangs in `upgrade` (after writing its pid), so an operation
/// stays in flight on the replica using it.
pub fn hanging_helm(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let (pidfile, slow, helm) = (dir.join("hang-helm.pid"), dir.join("hang-helm"), helm_bin());
    let (pid, helm) = (pidfile.display(), helm.display());
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in upgrade) echo $$ > '{pid}'; sleep 600;; esac\nexec {helm} \"$@\"\n"
    );
    std::fs::write(&slow, script).unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    (slow, pidfile)
}

pub struct Row {
    pub instances: usize,
    pub seed_secs: f64,
    pub start_secs: f64,
    pub startup: BTreeMap<(String, String), f64>,
    pub per_min: BTreeMap<(String, String), f64>,
    pub rss: Vec<f64>,
    pub takeover_secs: f64,
}

pub fn fmt_verbs(m: &BTreeMap<(String, String), f64>) -> String {
    m.iter()
        .map(|((r, v), n)| format!("{}:{v}={n:.0}", &r[..r.len() - 1]))
        .collect::<Vec<_>>()
        .join(" ")
}
