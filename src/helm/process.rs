//! helm's processes: the shared slots capping how many run, reading their
//! output within caps, and killing their process group.

use super::*;

/// The process slots every clone of one [`Helm`] shares.
pub(super) struct Slots {
    pub(super) permits: Semaphore,
    pub(super) running: AtomicUsize,
    pub(super) waiting: AtomicUsize,
    pub(super) observer: Option<HelmLoadObserver>,
}

impl Slots {
    pub(super) fn new(max: usize, observer: Option<HelmLoadObserver>) -> Arc<Slots> {
        Arc::new(Slots {
            permits: Semaphore::new(max.max(1)),
            running: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            observer,
        })
    }

    pub(super) fn report(&self) {
        if let Some(o) = &self.observer {
            o(
                self.running.load(Ordering::Relaxed),
                self.waiting.load(Ordering::Relaxed),
            );
        }
    }

    /// Waits for a slot; the guard frees it.
    pub(super) async fn acquire(self: &Arc<Self>) -> SlotGuard {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.report();
        // Decrements `waiting` even when the caller gives up while queued.
        let queued = Queued(self.clone());
        let permit = self.permits.acquire().await;
        // The guard gives the permit back, also when the call is cancelled.
        permit.expect("the semaphore is never closed").forget();
        self.running.fetch_add(1, Ordering::Relaxed);
        drop(queued);
        SlotGuard(self.clone())
    }
}

pub(super) struct Queued(Arc<Slots>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
        self.0.report();
    }
}

pub(super) struct SlotGuard(Arc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        self.0.permits.add_permits(1);
        self.0.report();
    }
}

/// Why reading helm's output stopped early.
pub(super) enum Collect {
    Io(std::io::Error),
    TooLarge { stream: &'static str, limit: usize },
}

/// Reads stdout and stderr to their ends (each within its cap), then
/// reaps the process.
pub(super) async fn collect(
    child: &mut Child,
    capture: Capture,
) -> Result<(Vec<u8>, Vec<u8>, ExitStatus), Collect> {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (out, err) = tokio::try_join!(
        read_capped(stdout, capture, "stdout"),
        read_capped(stderr, Capture::Upto(MAX_STDERR_BYTES), "stderr"),
    )?;
    let status = child.wait().await.map_err(Collect::Io)?;
    Ok((out, err, status))
}

/// Reads `pipe` to its end, keeping at most the cap: one byte more fails.
pub(super) async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    capture: Capture,
    stream: &'static str,
) -> Result<Vec<u8>, Collect> {
    let Some(mut pipe) = pipe else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = pipe.read(&mut chunk).await.map_err(Collect::Io)?;
        if n == 0 {
            return Ok(kept);
        }
        if let Capture::Upto(limit) = capture {
            if kept.len() + n > limit {
                return Err(Collect::TooLarge { stream, limit });
            }
            kept.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Kills helm and everything in its process group, then reaps it. The
/// group is signalled before helm is reaped, so its id cannot have been
/// reused by then.
pub(super) async fn kill_group(child: &mut Child) {
    signal_group(child.id());
    let _ = child.kill().await;
}

pub(super) fn signal_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals a process group; it
        // touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Kills helm's process group when dropped while armed (helm not reaped).
pub(super) struct GroupGuard(pub(super) Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0.take());
    }
}

/// Whether helm run with `args` changes a cluster, and so must die with
/// the broker ([`die_with_parent`]). Only the commands known to read
/// (or render offline) are spared; anything else is treated as a change.
///
/// Why spare any: `die_with_parent` needs code between fork and exec, so
/// the standard library forks the whole broker (copying its page tables,
/// then copy-on-write faults on every page the broker touches until helm
/// execs: measured 0.8 ms of the broker's CPU a call, more than its own
/// work for a provision); without it, it spawns with `posix_spawn`
/// (vfork). An orphaned `helm template` or `status` changes nothing: its
/// output pipe is gone and [`bound_orphan_cpu`] caps what it can burn.
pub(super) fn changes_cluster(args: &[OsString]) -> bool {
    !matches!(
        args.first().and_then(|a| a.to_str()),
        Some("template" | "version" | "pull" | "verify" | "status" | "history" | "get" | "show")
    )
}

/// Caps the CPU seconds a helm that doesn't die with the broker may use
/// (SIGXCPU, then SIGKILL a second later): while the broker lives its
/// timeout kills helm first (twice the timeout's seconds: a helm on one
/// core reaches the wall timeout long before); after the broker was killed
/// outright it is what stops a hostile chart's template loop.
pub(super) fn bound_orphan_cpu(pid: Option<u32>, timeout: Duration) {
    #[cfg(target_os = "linux")]
    if let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) {
        let secs = timeout.as_secs().saturating_mul(2).max(2);
        let limit = libc::rlimit {
            rlim_cur: secs as libc::rlim_t,
            rlim_max: secs.saturating_add(1) as libc::rlim_t,
        };
        // SAFETY: prlimit(2) on a child of ours, reading `limit` only. A
        // failure (helm already exited) leaves nothing to bound.
        unsafe {
            libc::prlimit(pid, libc::RLIMIT_CPU, &limit, std::ptr::null_mut());
        }
    }
}

/// A helm whose broker was killed outright (SIGKILL, OOM) must die too:
/// otherwise it goes on upgrading a release that another replica has taken
/// over, and the same operation runs twice. `kill_on_drop` can't cover that,
/// since nothing is dropped in a killed process. (The signal follows the
/// thread that forked; tokio forks from its worker threads, which live as
/// long as the runtime.)
pub(super) fn die_with_parent(cmd: &mut Command) {
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
