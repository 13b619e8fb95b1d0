//! Scale of `--store kube` on the real API server (tests/testenv): how many
//! requests three replicas make per minute in steady state at 100, 1,000
//! and 10,000 instance records, their memory, and how long until a
//! SIGKILLed replica's in-flight operation is taken over.
//!
//! A measurement, not a test: `#[ignore]`d, run by
//! `scripts/bench-kube-store.sh`, which prints the table. Requests are
//! counted by the API server itself (`apiserver_request_total` on its
//! `/metrics`, Secrets and Leases only), diffed over the window; the test
//! control plane runs nothing else that touches those (its
//! controller-manager does no leader election), and an idle window measured
//! first is subtracted.
//!
//! Knobs (environment): `CHARTBROKER_SCALE_SIZES` (default
//! `100,1000,10000`), `CHARTBROKER_SCALE_WINDOW` seconds (default 60),
//! `CHARTBROKER_SCALE_LEASE` seconds (default 15), `CHARTBROKER_SCALE_BIN`
//! (the broker binary; default the one cargo built).

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::process::*;
use common::*;
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::helpers::kube_scale::*;
use chartbroker::broker::ports::{Expect, Store, Table};
use chartbroker::cluster::Kube;
use chartbroker::store::kubernetes::KubeStore;
use chartbroker::store::seal::Sealer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: scripts/bench-kube-store.sh"]
async fn kube_store_scale() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sizes: Vec<usize> = std::env::var("CHARTBROKER_SCALE_SIZES")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes are numbers"))
        .collect();
    let window = Duration::from_secs(env_or("CHARTBROKER_SCALE_WINDOW", 60));
    let lease: u64 = env_or("CHARTBROKER_SCALE_LEASE", 15);
    let k = Cluster::admin().await;
    let admin = Kube::connect(Some(&k.kubeconfig)).await.unwrap();

    // What the control plane does on its own in such a window.
    let idle_from = requests(&k).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let idle = diff(&requests(&k).await, &idle_from);
    let idle_per_min: BTreeMap<_, _> = idle
        .into_iter()
        .map(|(k, v)| (k, v * 60.0 / 20.0))
        .collect();

    let mut rows = Vec::new();
    for &n in &sizes {
        let id = k.install_broker(false).await;
        let ns = k.namespace("apps").await;
        k.grant_target(&id, &ns);
        let key = Sealer::generate_base64();
        let store = KubeStore::new(
            &admin,
            id.state_namespace.clone(),
            Sealer::from_base64(&key).unwrap(),
        );
        store.check_key().await.unwrap();
        let seeding = Instant::now();
        let store = &store;
        let ns_ref = &ns;
        futures::stream::iter(0..n)
            .map(|i| async move {
                let inst = instance(&format!("seed-{i:05}"), ns_ref);
                let bytes = serde_json::to_vec(&inst).unwrap();
                store
                    .put(Table::Instances, &inst.id, bytes, Expect::Absent)
                    .await
                    .unwrap();
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await;
        let seed_secs = seeding.elapsed().as_secs_f64();

        let dir = tempfile::tempdir().unwrap();
        let (hang, pidfile) = hanging_helm(dir.path());
        let before_start = requests(&k).await;
        let starting = Instant::now();
        let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
        let mut procs: Vec<Proc> = ports
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                // Replica 0 is the one killed later, with an operation in flight.
                let helm = if i == 0 { hang.clone() } else { helm_bin() };
                spawn(
                    &id,
                    &dir.path().join(format!("r{i}")),
                    &helm,
                    &key,
                    p,
                    lease,
                )
            })
            .collect();
        for &p in &ports {
            ready(p).await;
        }
        let start_secs = starting.elapsed().as_secs_f64();
        // Let every replica's start-up work finish before the window.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let from = requests(&k).await;
        let startup = diff(&from, &before_start);
        tokio::time::sleep(window).await;
        let to = requests(&k).await;
        let rss: Vec<f64> = procs.iter().map(|p| rss_mib(p.0.id())).collect();
        let mins = window.as_secs_f64() / 60.0;
        let per_min: BTreeMap<_, _> = diff(&to, &from)
            .into_iter()
            .map(|(key, v)| {
                let idle = idle_per_min.get(&key).copied().unwrap_or(0.0);
                (key, (v / mins - idle).max(0.0))
            })
            .filter(|(_, v)| *v >= 0.5)
            .collect();

        // Takeover: an operation in flight on replica 0, which is SIGKILLed.
        let (status, body) = http(
            reqwest::Method::PUT,
            format!(
                "http://127.0.0.1:{}/v2/service_instances/inflight?accepts_incomplete=true",
                ports[0]
            ),
            Some(json!({
                "service_id": "svc-cluster", "plan_id": "plan-tiny",
                "organization_guid": "org", "space_guid": "space",
                "context": {"platform": "kubernetes", "namespace": ns},
                "parameters": {"message": "in flight"},
            })),
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{body}");
        for _ in 0..600 {
            if std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(pidfile.exists(), "replica 0 started helm upgrade");
        let owner_of = |v: &Value| v["operations"][0]["owner"].as_str().map(str::to_string);
        let record = |_: ()| async {
            let (bytes, _) = store
                .get(Table::Instances, "inflight")
                .await
                .unwrap()
                .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        let first_owner = owner_of(&record(()).await);
        procs[0].0.kill().unwrap();
        procs[0].0.wait().unwrap();
        let killed = Instant::now();
        let takeover_secs = loop {
            let r = record(()).await;
            if owner_of(&r) != first_owner {
                break killed.elapsed().as_secs_f64();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(lease * 6),
                "nobody took the operation over in {} s: {r}",
                lease * 6
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
        drop(procs);
        rows.push(Row {
            instances: n,
            seed_secs,
            start_secs,
            startup,
            per_min,
            rss,
            takeover_secs,
        });
        // The records stay: the control plane is this binary's alone.
    }

    let mut out = String::new();
    out.push_str(&format!(
        "kube store scale: {REPLICAS} replicas, --lease-seconds {lease}, window {} s; \
         requests counted by the API server (Secrets and Leases), idle control plane subtracted \
         ({})\n\n",
        window.as_secs(),
        fmt_verbs(&idle_per_min)
    ));
    out.push_str(
        "| instances | seed (s) | start (s) | start-up requests | steady requests/min (total) | by verb | RSS per replica (MiB) | takeover after SIGKILL (s) |\n\
         |---:|---:|---:|---|---:|---|---|---:|\n",
    );
    for r in &rows {
        let total: f64 = r.per_min.values().sum();
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {} | {:.0} | {} | {} | {:.1} |\n",
            r.instances,
            r.seed_secs,
            r.start_secs,
            fmt_verbs(&r.startup),
            total,
            fmt_verbs(&r.per_min),
            r.rss
                .iter()
                .map(|m| format!("{m:.0}"))
                .collect::<Vec<_>>()
                .join("/"),
            r.takeover_secs,
        ));
    }
    println!("\n{out}");
    if let Ok(path) = std::env::var("CHARTBROKER_SCALE_OUT") {
        std::fs::write(path, &out).unwrap();
    }
}
