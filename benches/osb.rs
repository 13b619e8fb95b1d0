//! Benchmark of the real binary (release build, render engine, example
//! catalog): `GET /v2/catalog` throughput with keep-alive, latency of the
//! provision → last_operation → bind flow, and resident memory when idle.
//!
//! Run: `cargo bench --bench osb` (after scripts/install-tools.sh). Prints a
//! report; asserts nothing, since timings depend on the machine.
//! Knobs: BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 32),
//! BENCH_FLOWS (default 30).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const USER: &str = "bench";
const PASS: &str = "bench-password";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    )
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(root: &std::path::Path, data: &std::path::Path, port: u16) -> Server {
    let helm = std::env::var("CHARTBROKER_HELM")
        .unwrap_or_else(|_| root.join(".tools/bin/helm").display().to_string());
    let child = Command::new(env!("CARGO_BIN_EXE_chartbroker"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--helm",
            &helm,
        ])
        .arg("--catalog")
        .arg(root.join("catalog"))
        .arg("--charts")
        .arg(root.join("charts"))
        .arg("--data-dir")
        .arg(data)
        .env("CHARTBROKER_USERNAME", USER)
        .env("CHARTBROKER_PASSWORD", PASS)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chartbroker");
    Server(child)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(port: u16) -> Sender {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn call(s: &mut Sender, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("authorization", auth())
        .header("x-broker-api-version", "2.17")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    s.ready().await.unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = start(&root, data.path(), port);
    let pid = server.0.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // Wait for readiness.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_start = rss_kib(pid);

        // Catalog throughput.
        let seconds = env_or("BENCH_SECONDS", 5);
        let conns = env_or("BENCH_CONNECTIONS", 32);
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (done, errors) = (done.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut s = connect(port).await;
                let auth = auth();
                while Instant::now() < deadline {
                    let req = Request::builder()
                        .uri("/v2/catalog")
                        .header("host", "127.0.0.1")
                        .header("authorization", auth.as_str())
                        .header("x-broker-api-version", "2.17")
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    s.ready().await.unwrap();
                    let resp = s.send_request(req).await.unwrap();
                    let ok = resp.status() == 200;
                    // Read the whole body (keep-alive needs it) without parsing it.
                    let _ = resp.into_body().collect().await.unwrap();
                    if ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let started = Instant::now();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n = done.load(Ordering::Relaxed);
        let rss_after_load = rss_kib(pid);

        // Provision -> last_operation -> bind flow, sequential.
        let flows = env_or("BENCH_FLOWS", 30);
        let mut s = connect(port).await;
        let (_, catalog) = call(&mut s, "GET", "/v2/catalog", None).await;
        let svc = &catalog["services"][0];
        let (sid, pid_plan) = (svc["id"].as_str().unwrap().to_string(), svc["plans"][0]["id"].as_str().unwrap().to_string());
        let (mut prov, mut polls, mut binds, mut total) = (vec![], vec![], vec![], vec![]);
        for i in 0..flows {
            let id = format!("bench-{i}");
            let t0 = Instant::now();
            let (st, body) = call(
                &mut s,
                "PUT",
                &format!("/v2/service_instances/{id}?accepts_incomplete=true"),
                Some(&json!({"service_id": sid, "plan_id": pid_plan,
                    "context": {"platform": "kubernetes", "namespace": "bench"}})),
            )
            .await;
            assert_eq!(st, 202, "{body}");
            prov.push(t0.elapsed());
            let op = body["operation"].as_str().unwrap().to_string();
            let t1 = Instant::now();
            loop {
                let (st, body) = call(&mut s, "GET", &format!("/v2/service_instances/{id}/last_operation?operation={op}"), None).await;
                assert_eq!(st, 200);
                if body["state"] != "in progress" {
                    assert_eq!(body["state"], "succeeded", "{body}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            polls.push(t1.elapsed());
            let t2 = Instant::now();
            let (st, body) = call(
                &mut s,
                "PUT",
                &format!("/v2/service_instances/{id}/service_bindings/b-{i}"),
                Some(&json!({"service_id": sid, "plan_id": pid_plan})),
            )
            .await;
            assert_eq!(st, 201, "{body}");
            binds.push(t2.elapsed());
            total.push(t0.elapsed());
        }
        for v in [&mut prov, &mut polls, &mut binds, &mut total] {
            v.sort();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_end = rss_kib(pid);

        println!("chartbroker benchmark (release build, render engine, {} cores)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!("GET /v2/catalog, keep-alive, {conns} connections, {seconds}s (load generator shares the machine):");
        println!("  {n} requests, {} errors, {:.0} requests/s", errors.load(Ordering::Relaxed), n as f64 / elapsed);
        println!("provision -> last_operation (until succeeded) -> bind, {flows} sequential flows, ms p50 / p95 / max:");
        for (name, v) in [("provision (202)", &prov), ("poll until done", &polls), ("bind (201)", &binds), ("whole flow", &total)] {
            println!("  {name:<18} {:>8.2} {:>8.2} {:>8.2}", pct(v, 0.5), pct(v, 0.95), pct(v, 1.0));
        }
        println!("resident memory (VmRSS): idle at start {:.1} MiB, after catalog load {:.1} MiB, idle after flows {:.1} MiB",
            idle_start as f64 / 1024.0, rss_after_load as f64 / 1024.0, idle_end as f64 / 1024.0);
    });
    drop(server);
}
