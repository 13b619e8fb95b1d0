//! How the dashboard's pages behave over many instances: a measurement,
//! not a check of speed (it asserts what the pages show, and prints how
//! long they took). Run: `cargo test --release --test ui_scale --
//! --ignored --nocapture` (UI_SCALE: how many instances, 100,000 unless
//! told).

use crate::common;

use std::time::{Duration, Instant};

use crate::helpers::ui_scale::*;
use chartbroker::broker::ports::Table;
use chartbroker::runtime::Runtime;
use chartbroker::store::redb::RedbStore;
use chartbroker::store::seal::Sealer;
use chartbroker::ui::{Ui, UiSettings};
use common::dashboard::*;
use common::*;

#[tokio::test]
#[ignore = "a measurement: run it by hand"]
async fn pages_over_many_instances() {
    let n: usize = std::env::var("UI_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path());
    {
        let (sealer, _) = Sealer::load_or_create(&data.path().join("store.key")).unwrap();
        let store = RedbStore::open(&data.path().join("chartbroker.redb"), sealer).unwrap();
        let started = Instant::now();
        // One transaction per 20,000 records: a commit per record would
        // measure fsync, not the pages.
        for start in (0..n).step_by(20_000) {
            let rows = (start..n.min(start + 20_000))
                .map(|i| (format!("scale-{i:06}"), record(i)))
                .collect();
            store.import(Table::Instances, rows).unwrap();
        }
        println!("wrote {n} records in {:?}", started.elapsed());
    }
    let mut runtime = Runtime::start(&cfg).await.expect("broker starts");
    runtime.enable_ui(
        Ui::configure(UiSettings {
            username: Some(UI_USER.into()),
            password: Some(UI_PASS.into()),
            link_ttl: Duration::from_secs(60),
            ..UiSettings::default()
        })
        .unwrap(),
    );
    let b = TestBroker {
        app: runtime.app(),
        runtime,
        data,
    };
    for uri in [
        "/ui/instances",
        "/ui/instances?page=7",
        "/ui/instances?namespace=ns-7&state=provision_failed",
        "/ui/health",
        "/ui/instances/scale-000123",
    ] {
        let started = Instant::now();
        let r = page(&b, uri).await;
        println!("{uri}: {:?}, {} bytes", started.elapsed(), r.text.len());
        if uri == "/ui/instances" {
            assert_eq!(rows(&r.text), 50);
            assert!(r.text.contains(&format!("{n} instances, page 1 of")));
        }
    }
}
