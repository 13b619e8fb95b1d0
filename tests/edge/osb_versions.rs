//! Responses shaped to the platform's `X-Broker-API-Version`: each version
//! from 2.13 to 2.17 gets the fields its spec defines and none added later
//! (spec release notes: 2.14 retrievable flags, 2.15 plan-level
//! `plan_updateable`, `maintenance_info`, `maximum_polling_duration`,
//! `allow_context_updates` and the polling delay, 2.16 `instance_usable` /
//! `update_repeatable`, 2.17 `binding_rotatable`).

use crate::common;

use crate::helpers::osb_versions::*;
use axum::http::{Method, StatusCode, header};
use common::*;
use serde_json::json;

#[tokio::test]
async fn each_version_gets_exactly_its_catalog_fields() {
    let b = broker().await;
    for minor in 13..=18u32 {
        let version = format!("2.{minor}");
        let r = send_versioned(&b, Method::GET, "/v2/catalog", &version, None).await;
        assert_eq!(r.status, StatusCode::OK, "{version}: {}", r.text);
        let (services, plans) = catalog_keys(&r.json);
        for (key, on, since) in GATED {
            let present = match on {
                "service" => services.iter().any(|k| k == key),
                _ => plans.iter().any(|k| k == key),
            };
            assert_eq!(
                present,
                minor >= since,
                "{version}: {on} field {key} (since 2.{since}) in {}",
                r.text
            );
        }
        // What every supported version defines stays.
        for key in [
            "id",
            "name",
            "description",
            "bindable",
            "plans",
            "plan_updateable",
        ] {
            assert!(services.iter().any(|k| k == key), "{version}: {key}");
        }
        for key in ["id", "name", "description", "schemas"] {
            assert!(plans.iter().any(|k| k == key), "{version}: {key}");
        }
    }
}

#[tokio::test]
async fn versions_have_their_own_etags() {
    let b = broker().await;
    let mut tags = Vec::new();
    for minor in 13..=17u32 {
        let r = send_versioned(&b, Method::GET, "/v2/catalog", &format!("2.{minor}"), None).await;
        tags.push(r.headers[header::ETAG].to_str().unwrap().to_string());
    }
    // 2.16 added no catalog field, so its body is 2.15's; every other step
    // changes the bytes and so the tag.
    assert_eq!(tags[2], tags[3], "{tags:?}");
    for (a, b) in [(0, 1), (1, 2), (3, 4)] {
        assert_ne!(tags[a], tags[b], "2.{} vs 2.{}: {tags:?}", a + 13, b + 13);
    }
    // A 2.13 platform's cached tag does not match a 2.17 body.
    let mut r = versioned(Method::GET, "/v2/catalog", "2.17", None);
    r.headers_mut()
        .insert(header::IF_NONE_MATCH, tags[0].parse().unwrap());
    assert_eq!(b.send(r).await.status, StatusCode::OK);
    let mut r = versioned(Method::GET, "/v2/catalog", "2.13", None);
    r.headers_mut()
        .insert(header::IF_NONE_MATCH, tags[0].parse().unwrap());
    assert_eq!(b.send(r).await.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn fetched_instance_has_maintenance_info_from_2_15() {
    let b = versions_broker_with_instance().await;
    for (version, present) in [("2.14", false), ("2.15", true), ("2.17", true)] {
        let r = send_versioned(&b, Method::GET, "/v2/service_instances/i-1", version, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["plan_id"], "plan-small");
        assert_eq!(
            r.json.get("maintenance_info").is_some(),
            present,
            "{version}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn last_operation_has_instance_usable_from_2_16() {
    let b = versions_broker_with_instance().await;
    // 7 passes the update schema and fails in the chart's own schema: a
    // failed update that leaves the instance usable.
    let mut body = json!({"service_id": "svc-tiny", "parameters": {"replicas": 7}});
    body["plan_id"] = json!("plan-small");
    let r = b.patch("/v2/service_instances/i-1", body).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    for (version, present) in [
        ("2.13", false),
        ("2.15", false),
        ("2.16", true),
        ("2.17", true),
    ] {
        let r = send_versioned(
            &b,
            Method::GET,
            "/v2/service_instances/i-1/last_operation",
            version,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["state"], "failed", "{}", r.text);
        assert_failure_flags(&r, version, present);
    }
}

#[tokio::test]
async fn polling_delay_is_sent_from_2_15() {
    let (b, gate, op) = provisioning_broker(json!({"message": "hi"})).await;
    let uri = format!("/v2/service_instances/i-1/last_operation?operation={op}");
    for (version, present) in [
        ("2.13", false),
        ("2.14", false),
        ("2.15", true),
        ("2.17", true),
    ] {
        let r = send_versioned(&b, Method::GET, &uri, version, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["state"], "in progress", "{}", r.text);
        assert_eq!(
            r.headers.contains_key(header::RETRY_AFTER),
            present,
            "{version}: {:?}",
            r.headers
        );
    }
    gate.open();
    b.wait_instance("i-1", &op).await;
}

#[tokio::test]
async fn a_failed_synchronous_update_has_instance_usable_from_2_16() {
    let b = versions_broker_with_instance().await;
    for (version, present) in [("2.14", false), ("2.15", false), ("2.16", true)] {
        // Fails in the chart's own schema (maximum 5), after validation.
        let body = json!({"service_id": "svc-tiny", "plan_id": "plan-small",
            "parameters": {"replicas": 7}});
        let r = send_versioned(
            &b,
            Method::PATCH,
            "/v2/service_instances/i-1",
            version,
            Some(body),
        )
        .await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
        assert_eq!(r.json["error"], "OperationFailed", "{}", r.text);
        assert_failure_flags(&r, version, present);
    }
}
