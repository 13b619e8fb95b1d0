//! Issue 23, targets 2 and 3 (the table's only rows for them): the catalog
//! path against the bare axum reference (throughput, p99, instructions per
//! request) and memory (idle RSS split into anonymous and file-backed
//! pages, the binary's size, RSS with many instances and open
//! connections). Each measured in the same run as its reference; nothing
//! asserts on time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{
    Proc, call, connect, cpu_ms, env_or, free_port, row, start, status_kib, try_connect, wrk,
};
use crate::table::Row;

/// Requests counted under callgrind, after as many to warm up.
const CALLGRIND_REQUESTS: u64 = 500;

/// Rows 2 and 3a, and the reference server's CPU per request in ms (what
/// HTTP alone costs, row 1's reference).
pub(crate) async fn rows(work: &Path, helm: &Path, reference: &Path) -> (Vec<Row>, f64) {
    let data = work.join("lean");
    let (b, _) = start(&data, helm).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = Memory::of(b.pid());
    let (_, body) = call(&mut connect(b.port).await, "GET", "/v2/catalog", None).await;
    let body_file = work.join("lean-catalog.json");
    std::fs::write(&body_file, serde_json::to_vec(&body).unwrap()).unwrap();
    let ref_port = free_port();
    let r = spawn_reference(reference, ref_port, &body_file, None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ref_idle = Memory::of(r.0.id());
    let rounds = env_or("BENCH_LEAN_ROUNDS", 3);
    let seconds = env_or("BENCH_WRK_SECONDS", 5);
    // Alternating runs, best of each side, so neither gets the quieter
    // moment of a shared machine.
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    let ref_cpu0 = cpu_ms(r.0.id());
    for _ in 0..rounds {
        mine.push(wrk(b.port, seconds, true));
        theirs.push(wrk(ref_port, seconds, true));
    }
    let ref_cpu1 = cpu_ms(r.0.id());
    let ref_served: f64 = theirs.iter().map(|w| w.rps * seconds as f64).sum();
    let ref_ms_per_request =
        ((ref_cpu1.0 - ref_cpu0.0) + (ref_cpu1.1 - ref_cpu0.1)) / ref_served.max(1.0);
    drop(r);
    drop(b);
    let best = |v: &[super::Wrk]| {
        let rps = v.iter().map(|w| w.rps).fold(0.0, f64::max);
        let p99 = v.iter().map(|w| w.p99_ms).fold(f64::INFINITY, f64::min);
        (rps, p99)
    };
    let ((rps, p99), (ref_rps, ref_p99)) = (best(&mine), best(&theirs));
    let (instructions, ref_instructions) = if std::env::var("BENCH_PROFILE").as_deref() == Ok("0") {
        (String::new(), String::new())
    } else {
        let broker = broker_instructions(work, helm).await;
        let bare = reference_instructions(reference, &body_file).await;
        (
            format!("; {broker} instructions a request (callgrind)"),
            format!("; {bare}"),
        )
    };
    let catalog = row(
        "2. GET /v2/catalog (wrk, 32 connections, best of alternating runs) ≥ 0.9× bare axum; p99 ≤ 1.1× its p99",
        format!(
            "{rps:.0} req/s ({:.2}×); p99 {p99:.2} ms ({:.2}×){instructions}",
            rps / ref_rps,
            p99 / ref_p99
        ),
        Some(rps >= 0.9 * ref_rps && p99 <= 1.1 * ref_p99),
    )
    .reference(format!(
        "bare axum: {ref_rps:.0} req/s; p99 {ref_p99:.2} ms{ref_instructions}"
    ));
    let memory = row(
        "3a. idle RSS ≤ 12 MB",
        format!(
            "{}; binary {:.1} MiB",
            idle.show(),
            file_mib(&broker_binary())
        ),
        Some(idle.rss <= 12.0),
    )
    .reference(format!(
        "bare axum: {}; binary {:.1} MiB",
        ref_idle.show(),
        file_mib(reference)
    ));
    (vec![catalog, memory], ref_ms_per_request)
}

/// Row 3b: the broker `pid` with `n` instances in its store and 100 open
/// connections.
pub(crate) fn many(pid: u32, n: usize) -> Row {
    let m = Memory::of(pid);
    row(
        "3b. RSS with 10,000 instances and 100 open connections ≤ 30 MB",
        format!("{} ({n} instances)", m.show()),
        Some(m.rss <= 30.0),
    )
}

/// Resident memory of a process, in MiB.
struct Memory {
    rss: f64,
    anon: f64,
    file: f64,
    threads: u64,
}

impl Memory {
    fn of(pid: u32) -> Memory {
        let mib = |f| status_kib(pid, f) as f64 / 1024.0;
        Memory {
            rss: mib("VmRSS:"),
            anon: mib("RssAnon:"),
            file: mib("RssFile:"),
            threads: status_kib(pid, "Threads:"),
        }
    }

    fn show(&self) -> String {
        format!(
            "{:.1} MiB ({:.1} anonymous, {:.1} file-backed; {} threads)",
            self.rss, self.anon, self.file, self.threads
        )
    }
}

fn broker_binary() -> std::path::PathBuf {
    std::env::var_os("BENCH_BROKER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_chartbroker").into())
}

fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0, |m| m.len()) as f64 / 1024.0 / 1024.0
}

/// Starts the reference server (under `wrapper`, e.g. valgrind, if given)
/// and waits until it accepts connections.
async fn spawn_reference(
    reference: &Path,
    port: u16,
    body: &Path,
    wrapper: Option<Command>,
) -> Proc {
    let mut cmd = wrapper.unwrap_or_else(|| Command::new(reference));
    if cmd.get_program() != reference.as_os_str() {
        cmd.arg(reference);
    }
    cmd.arg(format!("127.0.0.1:{port}"))
        .arg(body)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let p = Proc(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("reference server {}: {e}", reference.display())),
    );
    for _ in 0..3000 {
        if try_connect(port).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p
}

pub(super) fn callgrind(out: &Path) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()));
    cmd
}

/// Instructions between two counter dumps around CALLGRIND_REQUESTS
/// catalog requests on one keep-alive connection, per request.
async fn count(pid: u32, port: u16, out: &Path) -> u64 {
    let dump = || {
        let ok = Command::new("callgrind_control")
            .args(["-d", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "callgrind_control -d failed");
    };
    let mut s = connect(port).await;
    for _ in 0..CALLGRIND_REQUESTS {
        call(&mut s, "GET", "/v2/catalog", None).await;
    }
    dump();
    for _ in 0..CALLGRIND_REQUESTS {
        call(&mut s, "GET", "/v2/catalog", None).await;
    }
    dump();
    // The second dump file holds only what ran after the first.
    let second = format!("{}.2", out.display());
    let text = std::fs::read_to_string(&second).unwrap_or_default();
    let total: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    total / CALLGRIND_REQUESTS
}

async fn broker_instructions(work: &Path, helm: &Path) -> u64 {
    let dir = work.join("lean-cg-broker");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("cg.out");
    let b = super::broker_under_callgrind(&work.join("lean-cg-data"), helm, &out);
    let port = b.port;
    super::wait_ready(port, Duration::from_secs(300))
        .await
        .expect("the broker starts under valgrind");
    count(b.pid(), port, &out).await
}

async fn reference_instructions(reference: &Path, body: &Path) -> u64 {
    let dir = body.with_file_name("lean-cg-bare");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("cg.out");
    let port = free_port();
    let p = spawn_reference(reference, port, body, Some(callgrind(&out))).await;
    count(p.0.id(), port, &out).await
}
