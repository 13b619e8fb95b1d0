//! The delete fault matrix, helm engine: the real helm 4 against the real
//! API server (tests/testenv), the broker running as deploy/'s
//! ServiceAccount. Rows are faults — the release already gone, left
//! `failed`, `pending-install` or `pending-upgrade`, its namespace already
//! gone, the chart removed, the plan removed from the catalog, the
//! database of per-binding users unreachable — and columns the delete
//! paths the helm engine serves (unbind sync and async, deprovision async;
//! a synchronous deprovision is 422 AsyncRequired on this engine). Each
//! cell checks what the platform sees and that nothing is left: release
//! records, the release's objects, binding Secrets, the instance's own
//! namespace, database users.

use crate::common;

use axum::http::StatusCode;

use crate::helpers::delete_faults_helm::*;
use common::cluster::{release_records, suffix};
use common::cluster_calls::all_cases;
use common::deletes::Delete;

/// One row per fault, two at a time; each case is named for the test it
/// was (release_already_gone ... plan_removed_from_the_catalog).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_row_deletes_on_every_path() {
    let rows = [
        ("release_already_gone", Fault::ReleaseGone, "plan-ctx"),
        ("release_failed", Fault::ReleaseFailed, "plan-ctx"),
        ("release_pending_install", Fault::PendingInstall, "plan-ctx"),
        ("release_pending_upgrade", Fault::PendingUpgrade, "plan-ctx"),
        ("namespace_already_gone", Fault::NamespaceGone, "plan-own"),
        ("chart_removed", Fault::ChartRemoved, "plan-ctx"),
        (
            "plan_removed_from_the_catalog",
            Fault::PlanRemoved,
            "plan-own",
        ),
    ];
    let cases = rows
        .into_iter()
        .map(|(name, fault, plan)| (name, row(fault, plan)));
    all_cases(2, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_deprovision_is_refused_without_changing_anything() {
    let e = env(1).await;
    let id = format!("hd-{}", suffix());
    e.instance(&id, "plan-ctx").await;
    let seen =
        e.b.delete(Delete::DeprovisionSync, (SVC, "plan-ctx"), &id, "b1")
            .await;
    common::assert_osb_error(
        &seen.answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("AsyncRequired"),
    );
    assert_eq!(
        release_records(&e.k, &e.apps, &format!("cb-{id}"))
            .await
            .len(),
        1
    );
}

/// The database of per-binding users stopped: the deprovision succeeds
/// (the database goes with the release) and removes every binding Secret;
/// an unbind fails, naming the user, until the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_unreachable() {
    let mut server = mariadb().await;
    let e = env(server.port).await;
    for how in PATHS {
        let cell = format!("DatabaseDown × {how:?}");
        let id = format!("hd-{}", suffix());
        let user = e.instance(&id, "plan-db").await;
        server.stop();
        let seen = e.b.delete(how, (SVC, "plan-db"), &id, "b1").await;
        if how.unbinds() {
            let d = seen.assert_failed(&cell);
            assert!(
                d.contains(&user) && d.contains("a retry finishes it"),
                "{cell}: {d}"
            );
            server.start();
            e.b.delete(how, (SVC, "plan-db"), &id, "b1")
                .await
                .assert_succeeded(&cell);
            assert!(
                !user_exists(&server, &user).await,
                "{cell}: the user is left"
            );
        } else {
            let d = seen.assert_succeeded(&cell);
            assert!(d.contains("need no dropping"), "{cell}: {d}");
            server.start();
        }
        e.assert_nothing_left(how, &id, "plan-db", &cell).await;
    }
}
