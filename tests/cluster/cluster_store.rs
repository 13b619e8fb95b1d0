//! `--store kube` against a real API server (tests/testenv): replicas
//! running as the deploy/ ServiceAccount share state in sealed Secrets,
//! resourceVersion conflicts keep one operation per instance across them,
//! and a replica killed with SIGKILL mid-install has its operation finished
//! by another — with its helm child gone too, so nothing runs twice. The
//! survivor learns of the death from the dead replica's Lease lapsing and
//! reads only the records it owned, never every record again.

use crate::common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::cluster::Cluster;
use common::hanging_helm::{alive, hanging_pair, helm_pid_in};
use common::process::*;
use serde_json::{Value, json};

use crate::helpers::cluster_store::*;
use chartbroker::store::seal::Sealer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_race_on_the_real_api_and_exactly_one_operation_wins() {
    let k = Cluster::admin().await;
    let (id, ns) = k.broker_and_target("apps").await;
    let key = Sealer::generate_base64();
    let (a, b) = (replica(&id, &key).await, replica(&id, &key).await);

    // Eight identical provisions of one instance, split over two replicas,
    // at once: one operation, every answer names it, one helm revision.
    let uri = "/v2/service_instances/race-1?accepts_incomplete=true";
    let calls = (0..8).map(|i| {
        let r = if i % 2 == 0 { &a } else { &b };
        r.call(Method::PUT, uri, Some(provision(&ns, "first")))
    });
    let answers = futures::future::join_all(calls).await;
    let mut ops: Vec<String> = answers
        .iter()
        .map(|r| {
            assert!(
                r.status == StatusCode::ACCEPTED || r.status == StatusCode::OK,
                "{}",
                r.text
            );
            r.json["operation"].as_str().unwrap_or("").to_string()
        })
        .filter(|o| !o.is_empty())
        .collect();
    ops.dedup();
    assert_eq!(ops.len(), 1, "one operation for all: {ops:?}");
    let done = b.wait_instance("race-1", &ops[0]).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    assert_eq!(k.helm_history(&ns, "cb-race-1").len(), 1);

    // Two different updates at once through two replicas: one 202, one 422.
    let patch = |m: &str| json!({"service_id": "svc-cluster", "parameters": {"message": m}});
    let (ra, rb) = tokio::join!(
        a.call(Method::PATCH, uri, Some(patch("a"))),
        b.patch(uri, patch("b"))
    );
    let mut statuses = [ra.status.as_u16(), rb.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [202, 422], "{} / {}", ra.text, rb.text);
    let accepted = |r: &&common::Resp| r.status == StatusCode::ACCEPTED;
    let winner = [&ra, &rb].into_iter().find(accepted).unwrap();
    let done = a
        .wait_instance("race-1", winner.json["operation"].as_str().unwrap())
        .await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    assert_eq!(k.helm_history(&ns, "cb-race-1").len(), 2);

    // The records are sealed Secrets in the broker's own namespace.
    let state = k
        .list(&format!(
            "/api/v1/namespaces/{}/secrets",
            id.state_namespace
        ))
        .await;
    let state: Vec<&Value> = state
        .iter()
        .filter(|s| s["type"] == "chartbroker.io/state")
        .collect();
    assert!(!state.is_empty());
    assert!(!serde_json::to_string(&state).unwrap().contains("first"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_install_is_taken_over_and_its_helm_dies_with_it() {
    // Replica A's helm says where it is, then hangs before upgrading; if it
    // outlived A it would upgrade later, behind B's back.
    let mut p = hanging_pair("upgrade").await;
    let (k, id, ns, dir, pidfile) = (&p.k, &p.id, &p.ns, &p.dir, &p.pidfile);
    let (pa, pb) = (p.pa, p.pb);

    let mut ops = Vec::new();
    for i in 0..3 {
        let (status, body) = http(
            reqwest::Method::PUT,
            format!(
                "http://127.0.0.1:{pa}/v2/service_instances/orphan-{i}?accepts_incomplete=true"
            ),
            Some(provision(ns, "survives")),
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{body}");
        ops.push(body["operation"].as_str().unwrap().to_string());
    }
    // A is inside helm upgrade for at least one of them. The shell creates
    // the pid file before it writes the pid: wait for a whole number.
    let helm_pid = helm_pid_in(pidfile, 200)
        .await
        .expect("A started helm upgrade");
    // Each replica holds a Lease of its own.
    let leases = || async {
        k.list(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases?labelSelector=chartbroker.io%2Freplica-lease%3Dtrue",
            id.state_namespace
        ))
        .await
        .iter()
        .map(|l| l["spec"]["holderIdentity"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
    };
    assert_eq!(leases().await.len(), 2, "{:?}", leases().await);
    let full_lists_before = store_lists(pb, "all").await;
    p.a.0.kill().unwrap(); // SIGKILL: no clean-up, A's lease stops being renewed
    p.a.0.wait().unwrap();

    for (i, op) in ops.iter().enumerate() {
        let url = format!(
            "http://127.0.0.1:{pb}/v2/service_instances/orphan-{i}/last_operation?operation={op}"
        );
        let last = poll_last_operation(&url, 600, Duration::from_millis(100)).await;
        if last["state"] != "succeeded" {
            let logs = |r: &str| {
                std::fs::read_to_string(dir.path().join(r).with_extension("log"))
                    .unwrap_or_default()
            };
            panic!(
                "B did not take orphan-{i} over: {last}\n--- A ---\n{}\n--- B ---\n{}",
                logs("a"),
                logs("b")
            );
        }
        let cm = k
            .get(&format!("/api/v1/namespaces/{ns}/configmaps/cb-orphan-{i}"))
            .await
            .expect("installed by B");
        assert_eq!(cm["data"]["message"], "survives");
        let history = k.helm_history(ns, &format!("cb-orphan-{i}"));
        assert_eq!(history.len(), 1, "installed once: {history:?}");
    }
    // B found A's work by A's lapsed Lease and the records labelled with A
    // as owner: no LIST of every record since its start-up.
    assert_eq!(
        store_lists(pb, "all").await,
        full_lists_before,
        "B re-listed every record to find A's operations"
    );
    assert!(
        store_lists(pb, "tagged").await >= 2.0,
        "B listed A's in-flight records by label"
    );
    // A's Lease is released once its operations are taken over.
    let mut left = leases().await;
    for _ in 0..100 {
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = leases().await;
    }
    assert_eq!(left.len(), 1, "A's Lease is gone, B's stays: {left:?}");
    // The helm A started went down with A instead of upgrading later.
    assert!(
        !alive(helm_pid),
        "A's helm (pid {helm_pid}) outlived A: it would still upgrade the release"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_owners_and_tombstones_are_labels_found_by_selector() {
    use chartbroker::broker::ports::{Expect, Put, Store, Table, Tag, Tags};
    use chartbroker::store::kubernetes::KubeStore;
    let k = Cluster::admin().await;
    let ns = k.namespace("state").await;
    let kube = chartbroker::cluster::Kube::connect(Some(&k.kubeconfig))
        .await
        .unwrap();
    let sealer = Sealer::from_base64(&Sealer::generate_base64()).unwrap();
    let store = KubeStore::new(&kube, ns.clone(), sealer);
    let owned = |o: &str| Tags {
        owner: Some(o.to_string()),
        tombstone: false,
    };
    // The keys `tagged` finds (the Kubernetes store keeps tags).
    let tagged = async |table: Table, tag: Tag<'_>| -> Vec<String> {
        let rows = store.tagged(table, tag).await.unwrap();
        let rows = rows.expect("the Kubernetes store keeps tags");
        rows.into_iter().map(|(k, _, _)| k).collect()
    };
    let va = store
        .put_tagged(
            Put::new(Table::Instances, "a", b"1".to_vec(), Expect::Absent),
            &owned("r1"),
        )
        .await
        .unwrap();
    store
        .put_tagged(
            Put::new(Table::Instances, "b", b"2".to_vec(), Expect::Absent),
            &owned("r2"),
        )
        .await
        .unwrap();
    store
        .put_tagged(
            Put::new(Table::Bindings, "b\0x", b"3".to_vec(), Expect::Absent),
            &owned("r1"),
        )
        .await
        .unwrap();
    store
        .put(Table::Instances, "c", b"4".to_vec(), Expect::Absent)
        .await
        .unwrap();
    assert_eq!(tagged(Table::Instances, Tag::Owner("r1")).await, ["a"]);
    assert_eq!(tagged(Table::Bindings, Tag::Owner("r1")).await, ["b\0x"]);
    let secret = k
        .get(&format!(
            "/api/v1/namespaces/{ns}/secrets/{}",
            chartbroker::store::kubernetes::secret_name(Table::Instances, "a")
        ))
        .await
        .unwrap();
    assert_eq!(secret["metadata"]["labels"]["chartbroker.io/owner"], "r1");

    // The operation finished: the owner label goes; deleted: a tombstone.
    store
        .put_tagged(
            Put::new(Table::Instances, "a", b"5".to_vec(), Expect::Version(va)),
            &Tags {
                owner: None,
                tombstone: true,
            },
        )
        .await
        .unwrap();
    assert!(tagged(Table::Instances, Tag::Owner("r1")).await.is_empty());
    assert_eq!(tagged(Table::Instances, Tag::Tombstone).await, ["a"]);
    // An id that is no label value is hashed into one, still found.
    let odd = "replica/with spaces and a very long name that exceeds the sixty-three limit";
    store
        .put_tagged(
            Put::new(Table::Instances, "d", b"6".to_vec(), Expect::Absent),
            &owned(odd),
        )
        .await
        .unwrap();
    assert_eq!(tagged(Table::Instances, Tag::Owner(odd)).await, ["d"]);
}
