//! A broker killed in the middle of a helm run: two replicas of one broker
//! installed on the control plane, the first with a helm that hangs in a
//! chosen subcommand, and the checks on that helm's process afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cluster::{BrokerIdentity, Cluster};
use super::process::{Proc, free_port, ready};
use super::{helm_bin, helm_hanging_in};

/// Two replicas, A and B, of one broker installed on the control plane,
/// sharing a seal key and granted namespace `ns` (`apps-…`). A's helm says
/// where it is (its pid in `pidfile`), then hangs in the helm subcommand
/// given, so a test can kill A mid-operation; B's helm is the real one.
pub struct HangingPair {
    pub k: Cluster,
    pub id: BrokerIdentity,
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub pidfile: PathBuf,
    pub a: Proc,
    pub b: Proc,
    pub pa: u16,
    pub pb: u16,
}

/// Starts a [`HangingPair`] whose A hangs in `helm <subcommand>`; both
/// replicas answer `/readyz` when it returns.
pub async fn hanging_pair(subcommand: &str) -> HangingPair {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let k = Cluster::admin().await;
    let id = k.install_broker(false).await;
    let ns = k.namespace("apps").await;
    k.grant_target(&id, &ns);
    let dir = tempfile::tempdir().unwrap();
    let key = chartbroker::store::seal::Sealer::generate_base64();
    let (slow, pidfile) = helm_hanging_in(dir.path(), subcommand);
    let (pa, pb) = (free_port(), free_port());
    let a = id.spawn_replica(&dir.path().join("a"), &slow, &key, pa);
    let b = id.spawn_replica(&dir.path().join("b"), &helm_bin(), &key, pb);
    ready(pa).await;
    ready(pb).await;
    HangingPair {
        k,
        id,
        ns,
        dir,
        pidfile,
        a,
        b,
        pa,
        pb,
    }
}

/// The pid a hanging helm wrote to `pidfile`, polled `tries` times 50 ms
/// apart. The shell creates the file before it writes the pid: only a
/// whole number counts.
pub async fn helm_pid_in(pidfile: &Path, tries: usize) -> Option<u32> {
    for _ in 0..tries {
        let pid = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if pid.is_some() {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Whether process `pid` still runs (a zombie has exited; only its
/// parent's wait is missing).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}
