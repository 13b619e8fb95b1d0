//! The dashboard's instance details and health page in Debian's headless
//! chromium over WebDriver, against `chartbroker serve` as a process (the
//! render engine, the example catalog's MySQL and WordPress plus the test
//! catalog's tiny chart): release revisions and redacted manifests shown,
//! no generated secret in any page source, hostile manifest text and a
//! very long name kept as text, used-by links that lead to the user, and a
//! health page with its replicas, upstreams and SVG charts, all without a
//! console error (CSP violations included). Screenshots of the instance and
//! health pages go to `target/ui-screenshots/`.

use crate::common;
use crate::helpers::ui_browser_detail::*;
use common::browser::{browser, chromedriver};
use common::process::{free_port, ready, spawn_serve};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_details_and_health_work_in_chromium() {
    let (_driver_proc, driver) = chromedriver().await;
    let data = tempfile::tempdir().unwrap();
    let (catalog, charts) = catalogs(data.path());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let state = data.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _broker = spawn_serve(
        port,
        &catalog,
        &charts,
        &state,
        &helm_bin(),
        &["--ui", "--ui-username", UI_USER, "--ui-password", UI_PASS],
    );
    ready(port).await;
    let secrets = provision_all(&base, &state).await;
    let c = browser(&driver).await;
    let authed = format!("http://{UI_USER}:{UI_PASS}@127.0.0.1:{port}");
    details(&c, &driver, &authed, &secrets).await;
    hostile(&c, &driver, &base).await;
    health(&c, &driver, &base).await;
    c.close().await.unwrap();
}
