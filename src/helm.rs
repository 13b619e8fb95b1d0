//! The one module that runs the `helm` process.
//!
//! Helm runs with a cleared environment: its cache, config and data homes
//! live under the broker's data directory, so a user's repositories or
//! plugins can't change what the broker does. Values always go in on stdin
//! as JSON (`-f -`): never `--set`, which re-parses types, and never a file,
//! which would put generated passwords on disk.
//!
//! Helm is untrusted in what it prints (a chart decides how much it
//! renders): stdout and stderr are read with a byte cap, and past it helm
//! and everything it started are killed, so the broker never holds more
//! than the cap. A call waits for one of a fixed number of process slots
//! before it starts, so a burst of operations queues instead of running
//! dozens of helm processes at once.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

pub use crate::catalog::DEFAULT_MAX_MANIFEST_BYTES;
mod process;
use process::*;

/// What helm may print on stderr: warnings and one error message, never
/// more than a few KiB from a real chart.
pub(crate) const MAX_STDERR_BYTES: usize = 256 * 1024;

/// Helm processes one broker runs at once unless told otherwise.
pub const DEFAULT_MAX_PROCESSES: usize = 4;

/// Reports how many helm calls run and how many wait for a slot.
pub(crate) type HelmLoadObserver = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Reports each helm call: subcommand, duration, success (for metrics).
pub(crate) type HelmObserver = Arc<dyn Fn(&str, Duration, bool) + Send + Sync>;

/// How to run helm.
#[derive(Clone)]
pub struct Helm {
    bin: PathBuf,
    home: PathBuf,
    timeout: Duration,
    kubeconfig: Option<PathBuf>,
    observer: Option<HelmObserver>,
    slots: Arc<Slots>,
}

/// What happens to helm's stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capture {
    /// Kept and returned, up to this many bytes; past them helm is stopped.
    Upto(usize),
    /// Read and dropped (output nobody parses, such as a release with its
    /// values): costs no memory, however long.
    Discard,
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
    /// It printed more than the broker keeps and was killed.
    #[error(
        "helm {command} printed more than the limit of {limit} bytes on {stream} and was stopped{hint}"
    )]
    OutputTooLarge {
        /// The subcommand.
        command: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The cap.
        limit: usize,
        /// Which setting raises the cap, if one does.
        hint: &'static str,
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
pub(crate) struct Pull<'a> {
    /// A chart name (with `repo`) or an `oci://` reference.
    pub(crate) chart: &'a str,
    /// The HTTPS repository holding `chart`; `None` for OCI.
    pub(crate) repo: Option<&'a str>,
    /// The exact version.
    pub(crate) version: &'a str,
    /// Where helm writes the archive (and the `.prov` when verifying).
    pub(crate) destination: &'a Path,
    /// Verify the provenance file against this keyring.
    pub(crate) keyring: Option<&'a Path>,
    /// CA bundle for the repository's or registry's TLS.
    pub(crate) ca_file: Option<&'a Path>,
    /// A private registry config file (`--registry-config`) holding the
    /// registry's credentials: never on the command line.
    pub(crate) registry_config: Option<&'a Path>,
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
            slots: Slots::new(DEFAULT_MAX_PROCESSES, None),
        }
    }

    /// Runs at most `max` helm processes at once (this driver and its
    /// clones); further calls wait, and report the load to `observer`.
    pub(crate) fn with_max_processes(
        mut self,
        max: usize,
        observer: Option<HelmLoadObserver>,
    ) -> Self {
        self.slots = Slots::new(max, observer);
        self
    }

    /// Talk to the cluster described by this kubeconfig (the release
    /// engine sets a per-call one; see [`Helm::credentials`]).
    pub(crate) fn with_kubeconfig(mut self, path: Option<PathBuf>) -> Self {
        self.kubeconfig = path;
        self
    }

    /// Report every call.
    pub(crate) fn with_observer(mut self, observer: HelmObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How long one call may run.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Where helm keeps its state (its data home is `home/data`).
    pub(crate) fn home(&self) -> &Path {
        &self.home
    }

    /// `helm version --short`, to check the binary works at start-up.
    pub(crate) async fn version(&self) -> Result<String, HelmError> {
        let out = self
            .run("version", &["version".into(), "--short".into()], None)
            .await?;
        Ok(out.trim().to_string())
    }

    /// `helm template`: the manifests an install would apply, offline; more
    /// than `max_bytes` of them is an [`HelmError::OutputTooLarge`].
    pub async fn template(
        &self,
        release: &str,
        chart: &Path,
        namespace: &str,
        values: &serde_json::Value,
        max_bytes: usize,
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
        self.run_with("template", &args, Some(stdin), Capture::Upto(max_bytes))
            .await
            .map_err(|e| match e {
                HelmError::OutputTooLarge {
                    command,
                    stream: "stdout",
                    limit,
                    ..
                } => HelmError::OutputTooLarge {
                    command,
                    stream: "stdout",
                    limit,
                    hint: " (the plan's chart.limits.max_manifest_bytes)",
                },
                e => e,
            })
    }

    /// `helm pull`: downloads one chart version into `destination` (which
    /// should be an empty, private directory: on a failed verification
    /// helm leaves the files it downloaded there).
    pub(crate) async fn pull(&self, p: &Pull<'_>) -> Result<(), HelmError> {
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
        if let Some(c) = p.registry_config {
            args.extend(["--registry-config".into(), c.into()]);
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

    /// `helm verify`: checks `archive` against the `.prov` file beside it
    /// and `keyring`.
    pub(crate) async fn verify(&self, archive: &Path, keyring: &Path) -> Result<(), HelmError> {
        let args: Vec<OsString> = vec![
            "verify".into(),
            "--keyring".into(),
            keyring.into(),
            "--".into(),
            archive.into(),
        ];
        self.run("verify", &args, None).await.map(|_| ())
    }

    /// Runs helm with `args`, optional stdin, the timeout, and a clean
    /// environment; returns stdout (at most [`DEFAULT_MAX_MANIFEST_BYTES`]).
    pub(crate) async fn run(
        &self,
        command: &str,
        args: &[OsString],
        stdin: Option<Vec<u8>>,
    ) -> Result<String, HelmError> {
        self.run_with(
            command,
            args,
            stdin,
            Capture::Upto(DEFAULT_MAX_MANIFEST_BYTES),
        )
        .await
    }

    /// [`Helm::run`] with a choice of what happens to stdout. The timeout
    /// starts once the call has a process slot: time spent queued behind
    /// other calls is bounded by the operation's own deadline instead.
    pub(crate) async fn run_with(
        &self,
        command: &str,
        args: &[OsString],
        stdin: Option<Vec<u8>>,
        capture: Capture,
    ) -> Result<String, HelmError> {
        let _slot = self.slots.acquire().await;
        let started = Instant::now();
        let result = match self.spawn(args, stdin) {
            Ok(child) => self.wait_for(command, child, capture).await,
            Err(e) => Err(e),
        };
        if let Some(o) = &self.observer {
            o(command, started.elapsed(), result.is_ok());
        }
        result
    }

    /// helm with a clean environment of its own (home, caches), stdout and
    /// stderr piped, in its own process group, dying with the broker when
    /// `dies_with_broker` ([`changes_cluster`]: only then does it fork).
    fn command(&self, args: &[OsString], piped_stdin: bool, dies_with_broker: bool) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .stdin(if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out or abandoned helm must not outlive the operation.
            .kill_on_drop(true);
        // Its own process group, so whatever helm starts (plugins,
        // post-renderers) is killed with it.
        #[cfg(unix)]
        cmd.process_group(0);
        if dies_with_broker {
            die_with_parent(&mut cmd);
        }
        self.credentials(&mut cmd);
        cmd
    }

    /// helm started with `args`, `stdin` (if any) written to it in the
    /// background.
    fn spawn(&self, args: &[OsString], stdin: Option<Vec<u8>>) -> Result<Child, HelmError> {
        // Either it dies with the broker, or its CPU is capped.
        let dies_with_broker = changes_cluster(args);
        let mut cmd = self.command(args, stdin.is_some(), dies_with_broker);
        let mut child = cmd.spawn().map_err(|source| HelmError::Spawn {
            path: self.bin.display().to_string(),
            source,
        })?;
        if !dies_with_broker {
            bound_orphan_cpu(child.id(), self.timeout);
        }
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A helm that exits early closes the pipe; its exit status then
            // tells what went wrong, so a write error here is not the story.
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
            });
        }
        Ok(child)
    }

    /// Waits for `child` (helm running `command`) under the timeout,
    /// collecting its output.
    async fn wait_for(
        &self,
        command: &str,
        mut child: Child,
        capture: Capture,
    ) -> Result<String, HelmError> {
        // A call abandoned mid-way (its operation hit its deadline) takes
        // helm's whole group down with it, not only helm.
        let mut group = GroupGuard(child.id());
        let outcome = tokio::time::timeout(self.timeout, collect(&mut child, capture)).await;
        let (stdout, stderr, status) = match outcome {
            Ok(Ok(done)) => {
                // Reaped: the group id may be reused from now on.
                group.0 = None;
                done
            }
            Ok(Err(Collect::Io(source))) => {
                group.0 = None;
                kill_group(&mut child).await;
                return Err(HelmError::Spawn {
                    path: self.bin.display().to_string(),
                    source,
                });
            }
            Ok(Err(Collect::TooLarge { stream, limit })) => {
                group.0 = None;
                kill_group(&mut child).await;
                return Err(HelmError::OutputTooLarge {
                    command: command.into(),
                    stream,
                    limit,
                    hint: "",
                });
            }
            Err(_) => {
                group.0 = None;
                kill_group(&mut child).await;
                return Err(HelmError::Timeout {
                    command: command.into(),
                    secs: self.timeout.as_secs(),
                });
            }
        };
        exited(command, status, &stdout, &stderr)
    }
}

impl Helm {
    /// The only cluster credentials helm ever gets: the kubeconfig this
    /// driver was given (for release calls, a private per-call file with a
    /// token of the release identity). Never the broker's own: without a
    /// kubeconfig helm gets neither `KUBERNETES_SERVICE_HOST` nor `_PORT`,
    /// so in a pod it can't fall back to the broker's mounted token, and a
    /// call that needs a cluster fails instead.
    fn credentials(&self, cmd: &mut Command) {
        if let Some(k) = &self.kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
    }
}

/// The outcome of a helm that exited: its stdout, or why it failed.
fn exited(
    command: &str,
    status: ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> Result<String, HelmError> {
    if status.success() {
        return Ok(String::from_utf8_lossy(stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(stderr).trim().to_string();
    match status.code() {
        Some(_) => Err(HelmError::Failed {
            command: command.into(),
            stderr: if stderr.is_empty() {
                format!("exit status {status}")
            } else {
                stderr
            },
        }),
        None => Err(HelmError::Crashed {
            command: command.into(),
            detail: format!("{status}{}", tail(&stderr)),
        }),
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

/// What helm prints holds text the chart wrote (`fail`, template errors),
/// so messages about releases mask generated secrets however a chart
/// transformed them.
pub(crate) use crate::redact::redact_chart_text as redact;

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

    /// A helm that only reads or renders is spawned without the
    /// die-with-the-broker hook (so without forking the broker) and gets a
    /// CPU cap instead; one that may change the cluster keeps the hook
    /// and gets no cap.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn only_read_only_helm_calls_are_spared_the_fork_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let limits = script(
            dir.path(),
            "helm",
            "sleep 0.3\ngrep 'Max cpu time' /proc/$$/limits",
        );
        let h = Helm::new(&limits, dir.path(), Duration::from_secs(60));
        let cap = |out: &str| out.split_whitespace().nth(3).unwrap_or("").to_string();
        for read_only in ["template", "status", "get", "pull"] {
            let out = h.run(read_only, &[read_only.into()], None).await.unwrap();
            assert_eq!(cap(&out), "120", "{read_only}: {out}");
            assert!(!changes_cluster(&[read_only.into()]));
        }
        for changing in ["upgrade", "uninstall", "rollback", "install", "plugin"] {
            let out = h.run(changing, &[changing.into()], None).await.unwrap();
            assert_eq!(cap(&out), "unlimited", "{changing}: {out}");
            assert!(changes_cluster(&[changing.into()]));
        }
        assert!(changes_cluster(&[]), "no subcommand: treated as a change");
    }

    #[cfg(unix)]
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// The stream and cap of an [`HelmError::OutputTooLarge`].
    #[cfg(unix)]
    fn too_large(e: &HelmError) -> Option<(&'static str, usize)> {
        match e {
            HelmError::OutputTooLarge { stream, limit, .. } => Some((stream, *limit)),
            _ => None,
        }
    }

    #[cfg(unix)]
    fn gone(pid: i32) -> bool {
        // A reaped process has no /proc entry; one killed but not yet
        // reaped by its new parent is a zombie.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn output_past_the_cap_stops_helm_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        // A child that would outlive helm, then far more output than the cap.
        let flood = script(
            dir.path(),
            "flood",
            &format!(
                "sleep 300 &\necho $! > '{}'\nwhile :; do echo 'kind: ConfigMap padding padding padding'; done",
                pidfile.display()
            ),
        );
        let h = Helm::new(&flood, dir.path(), Duration::from_secs(60));
        let e = h
            .template("r", dir.path(), "ns", &serde_json::json!({}), 64 * 1024)
            .await
            .unwrap_err();
        assert_eq!(too_large(&e), Some(("stdout", 65536)), "{e}");
        assert_eq!(
            e.to_string(),
            "helm template printed more than the limit of 65536 bytes on stdout and was stopped \
             (the plan's chart.limits.max_manifest_bytes)"
        );
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut tries = 0;
        while !gone(child) {
            tries += 1;
            assert!(tries < 200, "helm's child {child} outlived it");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn stderr_is_capped_and_discarded_stdout_costs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let noisy = script(
            dir.path(),
            "noisy",
            "while :; do echo 'warning: x' >&2; done",
        );
        let e = Helm::new(&noisy, dir.path(), Duration::from_secs(60))
            .version()
            .await
            .unwrap_err();
        assert_eq!(too_large(&e), Some(("stderr", MAX_STDERR_BYTES)), "{e}");
        // 32 MiB on stdout, above the default cap, read and dropped.
        let big = script(dir.path(), "big", "head -c 33554432 /dev/zero");
        let out = Helm::new(&big, dir.path(), Duration::from_secs(60))
            .run_with("upgrade", &[], None, Capture::Discard)
            .await
            .unwrap();
        assert!(out.is_empty());
        let e = Helm::new(&big, dir.path(), Duration::from_secs(60))
            .run("status", &[], None)
            .await
            .unwrap_err();
        assert_eq!(
            too_large(&e),
            Some(("stdout", DEFAULT_MAX_MANIFEST_BYTES)),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn calls_past_the_process_cap_wait_for_a_slot() {
        use std::sync::Mutex;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("starts");
        let log = log.display();
        // Each process records that it runs, checks it runs alone, and ends.
        let body = format!(
            "echo start >> '{log}'\nsleep 0.3\n[ $(wc -l < '{log}') -eq 1 ] || exit 7\n: > '{log}'"
        );
        let slow = script(dir.path(), "slow", &body);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let h = Helm::new(&slow, dir.path(), Duration::from_secs(60)).with_max_processes(
            1,
            Some(Arc::new(move |running, waiting| {
                s.lock().unwrap().push((running, waiting))
            })),
        );
        let (a, b, c) = tokio::join!(h.version(), h.version(), h.version());
        for r in [a, b, c] {
            r.unwrap();
        }
        let seen = seen.lock().unwrap();
        assert!(seen.iter().all(|(running, _)| *running <= 1), "{seen:?}");
        assert!(seen.iter().any(|(_, waiting)| *waiting == 2), "{seen:?}");
        assert_eq!(seen.last(), Some(&(0, 0)), "{seen:?}");
    }
}
