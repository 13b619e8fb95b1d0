//! kubectl, as `scripts/install-tools.sh` installs it, and kubeconfigs for
//! tokens.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kube::config::Kubeconfig;

/// The kubectl binary `scripts/install-tools.sh` installs.
pub fn kubectl_bin() -> PathBuf {
    let how = "kubectl: run scripts/install-tools.sh";
    crate::common::cluster_calls::tool("CHARTBROKER_KUBECTL", ".tools/bin/kubectl", how)
}

/// Runs kubectl with `stdin`; (success, stdout + stderr).
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new(kubectl_bin())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A kubeconfig for the same server and CA as `admin`, with a bearer token.
pub fn write_token_kubeconfig(admin: &Path, token: &str, dest: &Path) {
    let kc = Kubeconfig::read_from(admin).unwrap();
    let cluster = kc.clusters[0].cluster.clone().unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: {}\n    \
         certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: c\n  \
         context:\n    cluster: testenv\n    user: u\ncurrent-context: c\n",
        cluster.server.unwrap(),
        cluster.certificate_authority_data.unwrap(),
        token
    );
    std::fs::write(dest, yaml).unwrap();
}
