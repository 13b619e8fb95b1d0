//! Group commit under a crash, with the real binary and the example
//! catalog (render engine): many provisions and binds in flight at once, so
//! their store writes share redb transactions; SIGKILL once some of them
//! were answered; a restart on the same data directory. Then:
//! - every request the platform got a 2xx for is in the store, and its
//!   operation settles `succeeded` (the restart rule: an operation found in
//!   progress is resumed unless its deadline passed or it was tried
//!   `max_attempts` times — neither can hold here), and it really happened
//!   (manifests rendered; the binding's credentials readable);
//! - a request that got no answer is either unknown to the broker (404),
//!   with nothing rendered, or it too settles `succeeded` and really
//!   happened: never `succeeded` without its effect.
//!
//! Three rounds on one data directory, each killing a broker that just
//! resumed the previous round's leftovers.

use crate::helpers::group_commit_crash::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_with_a_group_of_commits_in_flight_loses_no_acknowledged_operation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let mut broker = start(&data).await;
    let bound: Vec<String> = (0..4).map(|i| format!("gc-ready-{i}")).collect();
    provision_ready(&broker.url, &bound).await;
    let mut totals = (0, 0, 0);
    for round in 0..ROUNDS {
        let sent = storm(&mut broker, round, &bound).await;
        broker = start(&data).await;
        let (acked, done, absent) = check(&sent, &broker.url, &data).await;
        eprintln!(
            "round {round}: {acked} acknowledged, {done} unanswered but done, {absent} unanswered and absent"
        );
        assert!(
            acked * 3 >= sent.len(),
            "a third was answered before the kill"
        );
        totals = (totals.0 + acked, totals.1 + done, totals.2 + absent);
    }
    eprintln!("all rounds: {totals:?}");
}
