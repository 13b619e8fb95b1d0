//! The one module that runs the `helm` process.
//!
//! Helm runs with a cleared environment: its cache, config and data homes
//! live under the broker's data directory, so a user's repositories or
//! plugins can't change what the broker does. Values always go in on stdin
//! as JSON (`-f -`): never `--set`, which re-parses types, and never a file,
//! which would put generated passwords on disk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Reports each helm call: subcommand, duration, success (for metrics).
pub type HelmObserver = Arc<dyn Fn(&str, Duration, bool) + Send + Sync>;

/// How to run helm.
#[derive(Clone)]
pub struct Helm {
    bin: PathBuf,
    home: PathBuf,
    timeout: Duration,
    kubeconfig: Option<PathBuf>,
    observer: Option<HelmObserver>,
}

/// Why a helm call failed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The binary could not be started.
    #[error("could not run helm ({path}): {source}")]
    Spawn {
        /// The binary.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It ran past the timeout and was killed.
    #[error("helm {command} did not finish within {secs}s and was stopped")]
    Timeout {
        /// The subcommand.
        command: String,
        /// The timeout.
        secs: u64,
    },
    /// It exited non-zero; `stderr` is helm's own message.
    #[error("helm {command} failed: {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// Helm's stderr, trimmed.
        stderr: String,
    },
    /// It died from a signal (crashed or was killed).
    #[error("helm {command} crashed ({detail})")]
    Crashed {
        /// The subcommand.
        command: String,
        /// What we know.
        detail: String,
    },
}

/// One `helm pull` ([`Helm::pull`]).
#[derive(Debug, Clone, Copy)]
pub struct Pull<'a> {
    /// A chart name (with `repo`) or an `oci://` reference.
    pub chart: &'a str,
    /// The HTTPS repository holding `chart`; `None` for OCI.
    pub repo: Option<&'a str>,
    /// The exact version.
    pub version: &'a str,
    /// Where helm writes the archive (and the `.prov` when verifying).
    pub destination: &'a Path,
    /// Verify the provenance file against this keyring.
    pub keyring: Option<&'a Path>,
    /// CA bundle for the repository's or registry's TLS.
    pub ca_file: Option<&'a Path>,
}

impl HelmError {
    /// Label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            HelmError::Spawn { .. } => "spawn",
            HelmError::Timeout { .. } => "timeout",
            HelmError::Failed { .. } => "failed",
            HelmError::Crashed { .. } => "crashed",
        }
    }
}

impl Helm {
    /// A driver for the binary at `bin`, keeping helm's state under `home`.
    pub fn new(bin: impl Into<PathBuf>, home: impl Into<PathBuf>, timeout: Duration) -> Self {
        Helm {
            bin: bin.into(),
            home: home.into(),
            timeout,
            kubeconfig: None,
            observer: None,
        }
    }

    /// Talk to the cluster described by this kubeconfig.
    pub fn with_kubeconfig(mut self, path: Option<PathBuf>) -> Self {
        self.kubeconfig = path;
        self
    }

    /// Report every call.
    pub fn with_observer(mut self, observer: HelmObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How long one call may run.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Where helm keeps its state (its data home is `home/data`).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// `helm version --short`, to check the binary works at start-up.
    pub async fn version(&self) -> Result<String, HelmError> {
        let out = self
            .run("version", &["version".into(), "--short".into()], None)
            .await?;
        Ok(out.trim().to_string())
    }

    /// `helm template`: the manifests an install would apply, offline.
    pub async fn template(
        &self,
        release: &str,
        chart: &Path,
        namespace: &str,
        values: &serde_json::Value,
    ) -> Result<String, HelmError> {
        let args: Vec<OsString> = vec![
            "template".into(),
            release.into(),
            chart.into(),
            "--namespace".into(),
            namespace.into(),
            "--values".into(),
            "-".into(),
        ];
        let stdin = serde_json::to_vec(values).expect("values serialize");
        self.run("template", &args, Some(stdin)).await
    }

    /// `helm pull`: downloads one chart version into `destination` (which
    /// should be an empty, private directory: on a failed verification
    /// helm leaves the files it downloaded there).
    pub async fn pull(&self, p: &Pull<'_>) -> Result<(), HelmError> {
        let mut args: Vec<OsString> = vec![
            "pull".into(),
            "--version".into(),
            p.version.into(),
            "--destination".into(),
            p.destination.into(),
        ];
        if let Some(repo) = p.repo {
            args.extend(["--repo".into(), repo.into()]);
        }
        if let Some(k) = p.keyring {
            args.extend(["--verify".into(), "--keyring".into(), k.into()]);
        }
        if let Some(ca) = p.ca_file {
            args.extend(["--ca-file".into(), ca.into()]);
        }
        // Whatever the chart reference holds, it is never read as a flag.
        args.extend(["--".into(), p.chart.into()]);
        match self.run("pull", &args, None).await {
            Ok(_) => Ok(()),
            // OCI pulls print progress ("Pulled: ...", "Digest: ...") on
            // stderr before the error; the error is the message.
            Err(HelmError::Failed { command, stderr }) => Err(HelmError::Failed {
                command,
                stderr: from_error_line(&stderr).to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Runs helm with `args`, optional stdin, the timeout, and a clean
    /// environment; returns stdout.
    pub async fn run(
        &self,
        command: &str,
        args: &[OsString],
        stdin: Option<Vec<u8>>,
    ) -> Result<String, HelmError> {
        let started = Instant::now();
        let result = self.run_inner(command, args, stdin).await;
        if let Some(o) = &self.observer {
            o(command, started.elapsed(), result.is_ok());
        }
        result
    }

    async fn run_inner(
        &self,
        command: &str,
        args: &[OsString],
        stdin: Option<Vec<u8>>,
    ) -> Result<String, HelmError> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out or abandoned helm must not outlive the operation.
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        match &self.kubeconfig {
            Some(k) => {
                cmd.env("KUBECONFIG", k);
            }
            None => {
                // In a pod, helm finds the service account on its own; it
                // needs these two variables for that.
                for var in ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"] {
                    if let Some(v) = std::env::var_os(var) {
                        cmd.env(var, v);
                    }
                }
            }
        }
        let mut child = cmd.spawn().map_err(|source| HelmError::Spawn {
            path: self.bin.display().to_string(),
            source,
        })?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A helm that exits early closes the pipe; its exit status then
            // tells what went wrong, so a write error here is not the story.
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
            });
        }
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|source| HelmError::Spawn {
                path: self.bin.display().to_string(),
                source,
            })?,
            Err(_) => {
                return Err(HelmError::Timeout {
                    command: command.into(),
                    secs: self.timeout.as_secs(),
                });
            }
        };
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        match output.status.code() {
            Some(_) => Err(HelmError::Failed {
                command: command.into(),
                stderr: if stderr.is_empty() {
                    format!("exit status {}", output.status)
                } else {
                    stderr
                },
            }),
            None => Err(HelmError::Crashed {
                command: command.into(),
                detail: format!("{}{}", output.status, tail(&stderr)),
            }),
        }
    }
}

/// `stderr` from its first line starting with `Error:` (all of it if none).
fn from_error_line(stderr: &str) -> &str {
    let mut at = 0;
    for line in stderr.split_inclusive('\n') {
        if line.starts_with("Error:") {
            return &stderr[at..];
        }
        at += line.len();
    }
    stderr
}

fn tail(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        let start = stderr.len().saturating_sub(500);
        let start = (start..stderr.len())
            .find(|i| stderr.is_char_boundary(*i))
            .unwrap_or(0);
        format!(": {}", &stderr[start..])
    }
}

pub use crate::redact::redact;

/// A helm whose broker was killed outright (SIGKILL, OOM) must die too:
/// otherwise it goes on upgrading a release that another replica has taken
/// over, and the same operation runs twice. `kill_on_drop` can't cover that,
/// since nothing is dropped in a killed process. (The signal follows the
/// thread that forked; tokio forks from its worker threads, which live as
/// long as the runtime.)
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls are made:
    // prctl and getppid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The broker may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other(
                    "the broker exited before helm started",
                ));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_errors_start_at_helms_error_line() {
        let progress = "Pulled: r/c:1.0.0\nDigest: sha256:ab\nError: openpgp: bad\nmore";
        assert_eq!(from_error_line(progress), "Error: openpgp: bad\nmore");
        assert_eq!(from_error_line("no error line"), "no error line");
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error() {
        let h = Helm::new("/nonexistent/helm", "/tmp", Duration::from_secs(5));
        let e = h.version().await.unwrap_err();
        assert!(matches!(e, HelmError::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/helm"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn hung_and_crashing_helm_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let hang = dir.path().join("hang");
        std::fs::write(&hang, "#!/bin/sh\nsleep 30\n").unwrap();
        let crash = dir.path().join("crash");
        std::fs::write(&crash, "#!/bin/sh\necho boom >&2\nkill -9 $$\n").unwrap();
        let fail = dir.path().join("fail");
        std::fs::write(&fail, "#!/bin/sh\necho 'Error: bad chart' >&2\nexit 1\n").unwrap();
        for p in [&hang, &crash, &fail] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let t = Duration::from_millis(300);
        let e = Helm::new(&hang, dir.path(), t).version().await.unwrap_err();
        assert!(matches!(e, HelmError::Timeout { .. }), "{e}");
        let e = Helm::new(&crash, dir.path(), t)
            .version()
            .await
            .unwrap_err();
        assert!(matches!(e, HelmError::Crashed { .. }), "{e}");
        let e = Helm::new(&fail, dir.path(), t).version().await.unwrap_err();
        assert_eq!(e.to_string(), "helm version failed: Error: bad chart");
    }
}
