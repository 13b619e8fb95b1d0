//! A plan removed from the catalog while instances of them live: deleting
//! never depends on the plan still being offered. Each instance keeps what
//! deleting it needs of its plan, so unbind and deprovision work (sync and
//! async) and leave nothing behind, while the plan stays out of the
//! catalog and new requests for it are refused. Runs the real binary twice
//! on one data directory, with the plan in its catalog and then without it.

use crate::common;

use crate::helpers::catalog_change::*;
use common::process::{Remote, free_port, ready};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbind_and_deprovision_need_no_plan_in_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (with, without) = (dir.path().join("with"), dir.path().join("without"));
    catalog(&with, false);
    catalog(&without, true);

    let port = free_port();
    let first = start(&data, &with, port);
    ready(port).await;
    let osb = Remote::on(port);
    let (s, body) = osb.put(INSTANCE, common::hi_body()).await;
    assert_eq!(s, 201, "{body}");
    let bind = json!({"service_id": "svc-tiny", "plan_id": "plan-small"});
    let (s, body) = osb
        .put(&format!("{INSTANCE}/service_bindings/b1"), bind.clone())
        .await;
    assert_eq!(s, 201, "{body}");
    drop(first);

    // The same data, a catalog without the plan.
    let port = free_port();
    let _second = start(&data, &without, port);
    ready(port).await;
    let osb = Remote::on(port);
    let (s, cat) = osb.get("/v2/catalog").await;
    assert_eq!(s, 200);
    assert!(!cat.to_string().contains("plan-small"), "{cat}");

    // Still refused for anything new.
    let (s, body) = osb
        .put(&format!("{INSTANCE}/service_bindings/b2"), bind)
        .await;
    assert_eq!(s, 400, "{body}");
    let rendered = data.join("render/apps/cb-gone-plan");
    let secrets = rendered.join("bindings");
    let any_secret = || secrets.read_dir().unwrap().next().is_some();
    assert!(any_secret());
    let (s, body) = osb
        .delete(&format!("{INSTANCE}/service_bindings/b1?{IDS}"))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, json!({}));
    assert!(!any_secret(), "the binding Secret is gone");
    let (s, body) = osb
        .delete(&format!("{INSTANCE}?{IDS}&accepts_incomplete=true"))
        .await;
    assert_eq!(s, 202, "{body}");
    let op = body["operation"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    for _ in 0..200 {
        let (_, lo) = osb
            .get(&format!("{INSTANCE}/last_operation?operation={op}"))
            .await;
        last = lo;
        if last["state"] != "in progress" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last["state"], "succeeded", "{last}");
    assert!(!rendered.exists(), "the release is gone");
    let (s, body) = osb.delete(&format!("{INSTANCE}?{IDS}")).await;
    assert_eq!(s, 410, "{body}");
}
