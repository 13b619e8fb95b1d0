//! The broker's identities in the control plane: its ServiceAccount (as
//! `deploy/` and the chart grant it), its replicas, and the per-namespace
//! release identity, applied from the chart's own RBAC templates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::kubectl;
use crate::common::repo;

/// The broker's own identity in the control plane: a ServiceAccount token
/// from the TokenRequest API, with exactly the RBAC `deploy/` grants.
pub struct BrokerIdentity {
    /// Where its state lives (and its ServiceAccount).
    pub state_namespace: String,
    /// Suffix of its cluster-scoped RBAC names.
    pub suffix: String,
    /// A kubeconfig with the ServiceAccount's token.
    pub kubeconfig: PathBuf,
    pub(super) _dir: tempfile::TempDir,
}

impl BrokerIdentity {
    /// Replica `data` of this broker as a real process on `port` (two
    /// operation workers), its log beside its data directory
    /// (`<data>.log`) for a failing test to show.
    pub fn spawn_replica(
        &self,
        data: &Path,
        helm: &Path,
        key: &str,
        port: u16,
    ) -> crate::common::process::Proc {
        std::fs::create_dir_all(data).unwrap();
        let log: Stdio = std::fs::File::create(data.with_extension("log"))
            .unwrap()
            .into();
        crate::common::process::Proc(
            self.replica(
                crate::common::process::broker_bin(),
                data,
                helm,
                key,
                port,
                2,
            )
            .stderr(log)
            .spawn()
            .expect("chartbroker starts"),
        )
    }

    /// The release identity as this broker's RBAC names it (suffixed).
    pub fn identity_names(&self) -> chartbroker::cluster::IdentityNames {
        chartbroker::cluster::IdentityNames {
            service_account: format!("chartbroker-release-{}", self.suffix),
            release_role: format!("chartbroker-release-{}", self.suffix),
            target_role: format!("chartbroker-target-{}", self.suffix),
        }
    }

    /// `chartbroker serve` as a replica on the Kubernetes store (helm
    /// engine, the cluster test catalog) under this identity, sharing
    /// `store_key` with the other replicas; callers add the environment and
    /// output they need, then spawn it.
    pub fn replica(
        &self,
        bin: &str,
        data: &Path,
        helm: &Path,
        store_key: &str,
        port: u16,
        lease_seconds: u64,
    ) -> Command {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--engine", "helm", "--store", "kube"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--lease-seconds", &lease_seconds.to_string()])
            .args(["--state-namespace", &self.state_namespace])
            // These requests carry no originating identity.
            .args(["--subject-access-review", "false"])
            .arg("--catalog")
            .arg(crate::common::fixtures().join("catalog-cluster"))
            .arg("--charts")
            .arg(crate::common::fixtures().join("charts"))
            .arg("--data-dir")
            .arg(data)
            .arg("--helm")
            .arg(helm)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "--release-service-account",
                &format!("chartbroker-release-{}", self.suffix),
            ])
            .args([
                "--release-cluster-role",
                &format!("chartbroker-release-{}", self.suffix),
            ])
            .args([
                "--target-cluster-role",
                &format!("chartbroker-target-{}", self.suffix),
            ])
            .env("CHARTBROKER_STORE_KEY", store_key)
            .env("CHARTBROKER_USERNAME", crate::common::USER)
            .env("CHARTBROKER_PASSWORD", crate::common::PASS)
            .stdout(Stdio::null());
        cmd
    }
}

/// The chart's release and target ClusterRoles (default names) and, in each
/// of `namespaces`, the release identity and the broker's RoleBinding (the
/// broker as `chartbroker` in `state_namespace`), applied with `kubeconfig`.
pub fn apply_release_identity(kubeconfig: &Path, state_namespace: &str, namespaces: &[&str]) {
    let values = json!({"targetNamespaces": namespaces});
    let mut templates = vec!["rbac-release-clusterrole.yaml"];
    if !namespaces.is_empty() {
        templates.push("rbac-targets.yaml");
    }
    let yaml = chart_template(state_namespace, &values, &templates);
    let (ok, out) = kubectl(kubeconfig, &["apply", "--server-side", "-f", "-"], &yaml);
    assert!(ok, "applying the release identity failed:\n{out}");
}

/// `helm template` of the chart's `templates` only, released as
/// `chartbroker` (the names `deploy/kubernetes` has) in `namespace`.
pub fn chart_template(namespace: &str, values: &Value, templates: &[&str]) -> String {
    let f = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(f.path(), values.to_string()).unwrap();
    let mut cmd = Command::new(super::helm_bin());
    cmd.arg("template")
        .arg("chartbroker")
        .arg(repo().join("deploy/chart/chartbroker"))
        .args(["--namespace", namespace, "--values"])
        .arg(f.path())
        .env_clear()
        .env("HOME", std::env::temp_dir());
    for t in templates {
        cmd.args(["--show-only", &format!("templates/{t}")]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm template of deploy/chart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The names of cluster-scoped RBAC objects (and the references to them,
/// `resourceNames` included) get a suffix; the broker's ServiceAccount keeps
/// the name `deploy/` gives it. The release ServiceAccount shares its name
/// with the release ClusterRole, so it gets the suffix too (the broker is
/// told: [`BrokerIdentity::identity_names`]).
pub(super) fn rename(yaml: &str, sfx: &str) -> String {
    let mut out = yaml.replace('\r', "");
    for name in [
        "chartbroker-release-identity",
        "chartbroker-release",
        "chartbroker-target",
        "chartbroker-subjectaccessreviews",
        "chartbroker-namespaces",
    ] {
        out = out
            .replace(&format!("name: {name}\n"), &format!("name: {name}-{sfx}\n"))
            .replace(&format!("- {name}\n"), &format!("- {name}-{sfx}\n"))
            .replace(&format!("\"{name}\""), &format!("\"{name}-{sfx}\""));
    }
    out
}
