//! The delete fault matrix, render engine: every delete path (unbind and
//! deprovision, sync and async) against every fault the render engine can
//! meet — the database unreachable, the release already gone, the chart
//! removed, the plan removed from the catalog (reload), the broker killed
//! mid-delete — on the repository's real `charts/mysql` with per-binding
//! users in a real MariaDB. Each cell checks what the platform sees (status,
//! body, `last_operation`) and that nothing is left: release folder,
//! binding Secret, binding record, database user.
//!
//! The helm engine's cells are in tests/cluster/delete_faults_helm.rs, the upstream
//! ones in tests/adapters/upstream_faults.rs; README "Deleting whatever broke" has
//! the whole table.

use crate::common;

use sqlx::Connection;

use crate::helpers::delete_faults::*;
use common::databases::{self};
use common::deletes::Delete;

/// The rows whose every delete succeeds at once, leaving nothing.
#[tokio::test(flavor = "multi_thread")]
async fn rows_whose_deletes_succeed() {
    for (case, fault) in [
        ("release_already_gone", Fault::ReleaseGone),
        ("chart_removed", Fault::ChartRemoved),
        ("plan_removed_from_the_catalog", Fault::PlanRemoved),
    ] {
        row(case, fault, &Succeeds).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn database_unreachable() {
    row("database_unreachable", Fault::DatabaseDown, &DownChecks).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_killed_mid_delete() {
    row("broker_killed_mid_delete", Fault::Killed, &KilledChecks).await;
}

/// The database-unreachable row's deprovision cells on PostgreSQL and
/// Redis (MariaDB's are in [`database_unreachable`]): the user exists, the
/// server is stopped, both deprovisions succeed and leave nothing.
#[tokio::test(flavor = "multi_thread")]
async fn database_unreachable_postgresql_and_redis_deprovisions() {
    for engine in ["postgresql", "redis"] {
        let mut server = match engine {
            "postgresql" => databases::postgresql(),
            _ => databases::redis(),
        };
        if engine == "postgresql" {
            let opts = sqlx::postgres::PgConnectOptions::new()
                .host("127.0.0.1")
                .port(server.port)
                .username("postgres")
                .password(&server.admin_password)
                .database("postgres");
            let mut admin = sqlx::PgConnection::connect_with(&opts).await.unwrap();
            sqlx::Executor::execute(&mut admin, "CREATE DATABASE shop")
                .await
                .unwrap();
        }
        for how in [Delete::DeprovisionSync, Delete::DeprovisionAsync] {
            let cell = format!("{engine} DatabaseDown × {how:?}");
            let bed = engine_bed(engine, &server).await;
            server.stop();
            DownChecks.run(&cell, how, &mut server, bed).await;
            server.start();
        }
    }
}
