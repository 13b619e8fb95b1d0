//! Issue 21 as a platform met it: the example catalog's `mysql` `standard`
//! plan (per-binding users, no fallback) with no database reachable (render
//! engine: the release's Service name resolves nowhere), driven the way the
//! public conformance suites' lifecycles drive it — provision, update to
//! `standard`, bind, unbind, deprovision — synchronously and
//! asynchronously. The bind fails (no credentials that don't work) and
//! leaves nothing: no binding Secret, and its unbind answers 410 Gone; the
//! deprovision succeeds and removes the release.

use crate::common;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::delete_example_catalog::*;
use common::deletes::Delete;
use common::example_broker;

#[tokio::test(flavor = "multi_thread")]
async fn standard_plan_without_a_database_binds_nothing_and_deletes_cleanly() {
    let b = example_broker().await;
    for (id, accepts) in [("sync-1", false), ("async-1", true)] {
        standard_instance(&b, id, accepts).await;
        let q = if accepts {
            "?accepts_incomplete=true"
        } else {
            ""
        };
        let uri = format!("/v2/service_instances/{id}/service_bindings/b1{q}");
        let body = json!({"service_id": MYSQL, "plan_id": STANDARD, "bind_resource": {}});
        let r = b.put(&uri, body).await;
        let description = if accepts {
            assert_eq!(r.status, StatusCode::ACCEPTED, "{id}: {}", r.text);
            let op = r.json["operation"].as_str().unwrap();
            let lo = b.wait_binding(id, "b1", op).await;
            assert_eq!(lo.json["state"], "failed", "{id}: {}", lo.text);
            lo.json["description"].as_str().unwrap().to_string()
        } else {
            common::assert_osb_error(&r, StatusCode::INTERNAL_SERVER_ERROR, None);
            assert!(r.json["credentials"].is_null());
            r.json["description"].as_str().unwrap().to_string()
        };
        assert!(
            description.contains("could not reach the MySQL database")
                && description.contains("no user was created"),
            "{id}: {description}"
        );
        let bindings = b.release_dir(id).join("bindings");
        assert!(
            std::fs::read_dir(&bindings).map_or(true, |mut d| d.next().is_none()),
            "{id}: a failed bind writes no Secret"
        );
        let (how_unbind, how_deprovision) = if accepts {
            (Delete::UnbindAsync, Delete::DeprovisionAsync)
        } else {
            (Delete::UnbindSync, Delete::DeprovisionSync)
        };
        let seen = b.delete(how_unbind, (MYSQL, STANDARD), id, "b1").await;
        assert_eq!(
            seen.answer.status,
            StatusCode::GONE,
            "{id}: {}",
            seen.answer.text
        );
        b.delete(how_deprovision, (MYSQL, STANDARD), id, "b1")
            .await
            .assert_succeeded(id);
        assert!(!b.release_dir(id).exists(), "{id}: the release is gone");
        let again = b.delete(how_deprovision, (MYSQL, STANDARD), id, "b1").await;
        assert_eq!(
            again.answer.status,
            StatusCode::GONE,
            "{id}: {}",
            again.answer.text
        );
    }
}
