//! Helpers of the tests in tests/edge/ui_scale.rs
//! (helpers live under tests/common: tests/README.md).

use serde_json::json;

pub fn record(i: usize) -> Vec<u8> {
    let id = format!("scale-{i:06}");
    serde_json::to_vec(&json!({
        "id": id, "service_id": "svc-tiny", "plan_id": "plan-small",
        "parameters": {"message": "m"}, "context": {"platform": "kubernetes", "namespace": format!("ns-{}", i % 100)},
        "organization_guid": null, "space_guid": null, "maintenance_version": null,
        "release": format!("cb-{id}"), "namespace": format!("ns-{}", i % 100),
        "secrets": {"password": "p"}, "dashboard_url": null,
        "state": if i % 10 == 0 { "provision_failed" } else { "ready" },
        "provision_fingerprint": "f",
        "operations": [{"id": "op", "kind": "provision",
            "state": if i % 10 == 0 { "failed" } else { "succeeded" },
            "description": "done", "instance_usable": null, "update_repeatable": null,
            "started_at": 1_796_000_000u64 + i as u64, "finished_at": 1_796_000_001u64 + i as u64,
            "deadline": 1_797_000_000u64, "attempts": 1, "fingerprint": "f", "target": null,
            "originating_identity": null, "request_identity": null}]
    }))
    .unwrap()
}
