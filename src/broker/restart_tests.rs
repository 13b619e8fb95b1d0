//! Restarts and replicas: a broker resuming the operations a dead process
//! left, failing those past their deadline or attempts, and replicas
//! sharing one store taking over a dead owner's operations only.

use super::*;

#[tokio::test]
async fn a_restarted_broker_resumes_in_progress_operations() {
    let store = Arc::new(MemoryStore::new());
    let first = Arc::new(Scripted::gated());
    let b1 = broker(store.clone(), first.clone());
    let r = b1
        .provision(provision_req("i", "a"), async_meta())
        .await
        .unwrap();
    let Outcome::Accepted { operation } = r.outcome else {
        panic!("expected 202")
    };
    // The first process "dies": its backend never finishes.
    drop(b1);
    let second = Arc::new(Scripted::default());
    let b2 = broker(store.clone(), second.clone());
    assert_eq!(b2.resume().await.unwrap(), 1);
    let done = wait_state(&b2, "i").await;
    assert_eq!(done.state, OpState::Succeeded);
    assert_eq!(second.calls(), vec!["provision i"]);
    let op = b2
        .instance_last_operation("i", Some(&operation))
        .await
        .unwrap();
    assert_eq!(
        op.state,
        OpState::Succeeded,
        "the original token still answers"
    );
}

#[tokio::test]
async fn operations_past_their_deadline_or_attempts_are_failed_on_restart() {
    let store = Arc::new(MemoryStore::new());
    let b1 = broker(store.clone(), Arc::new(Scripted::gated()));
    b1.provision(provision_req("late", "a"), async_meta())
        .await
        .unwrap();
    b1.provision(provision_req("looping", "a"), async_meta())
        .await
        .unwrap();
    // Age one operation past its deadline and exhaust the other's attempts.
    for (id, f) in [
        (
            "late",
            Box::new(|o: &mut model::Operation| o.deadline = 1)
                as Box<dyn Fn(&mut model::Operation)>,
        ),
        (
            "looping",
            Box::new(|o: &mut model::Operation| o.attempts = 99),
        ),
    ] {
        let (mut inst, v) = b1.load_instance(id).await.unwrap().unwrap();
        let op_id = inst.current().unwrap().id.clone();
        f(inst.op_mut(&op_id).unwrap());
        b1.write_instance(&inst, Expect::Version(v)).await.unwrap();
    }
    let second = Arc::new(Scripted::default());
    let b2 = broker(store, second.clone());
    assert_eq!(b2.resume().await.unwrap(), 0);
    let late = b2.instance_last_operation("late", None).await.unwrap();
    assert_eq!(late.state, OpState::Failed);
    assert!(late.description.unwrap().contains("deadline"));
    let looping = b2.instance_last_operation("looping", None).await.unwrap();
    assert_eq!(looping.state, OpState::Failed);
    assert!(looping.description.unwrap().contains("gave up"));
    assert!(second.calls().is_empty());
    // A failed provision leaves an instance a repeated PUT may retry.
    let r = b2
        .provision(provision_req("late", "a"), RequestMeta::default())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Created);
}

fn shared_broker(store: Arc<MemoryStore>, backend: Arc<Scripted>) -> Broker {
    let config = BrokerConfig {
        shared_store: true,
        // Renewed every second; whole-second timestamps need the slack.
        lease: Duration::from_secs(3),
        ..BrokerConfig::default()
    };
    broker_with(store, backend, config)
}

#[tokio::test]
async fn replicas_leave_a_live_owners_operation_alone_and_take_over_a_dead_ones() {
    let store = Arc::new(MemoryStore::new());
    let a_backend = Arc::new(Scripted::gated());
    let a = shared_broker(store.clone(), a_backend.clone());
    a.provision(provision_req("leased", "x"), async_meta())
        .await
        .unwrap();
    let b_backend = Arc::new(Scripted::default());
    let b = shared_broker(store.clone(), b_backend.clone());
    // A is alive: it renews its heartbeat, so B never takes over.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(b.resume().await.unwrap(), 0);
    }
    assert!(b_backend.calls().is_empty());
    // A dies (its heartbeat stops): B takes over once the lease lapses.
    let (mut inst, v) = a.load_instance("leased").await.unwrap().unwrap();
    let id = inst.current().unwrap().id.clone();
    let op = inst.op_mut(&id).unwrap();
    op.owner = Some("dead-replica".into());
    op.heartbeat = Some(now() - 10);
    a.write_instance(&inst, Expect::Version(v)).await.unwrap();
    assert_eq!(b.resume().await.unwrap(), 1);
    assert_eq!(wait_state(&b, "leased").await.state, OpState::Succeeded);
    assert_eq!(b_backend.calls(), vec!["provision leased"]);
    // A second sweep finds nothing left.
    assert_eq!(b.resume().await.unwrap(), 0);
}
