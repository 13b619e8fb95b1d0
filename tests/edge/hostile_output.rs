//! A chart that renders far too much (`tests/fixtures/abuse/charts/huge-output`,
//! a template that loops up to three million times) against the real
//! binary: the broker stops helm at the plan's manifest cap, names the cap,
//! writes nothing, keeps serving, and its memory stays flat.

use std::time::Duration;

use crate::helpers::hostile_output::*;
use serde_json::Value;

#[tokio::test]
async fn a_chart_rendering_too_much_fails_at_the_cap_and_memory_stays_flat() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let b = start(data.path()).await;
    let pid = b.proc.0.id();
    // Warm up the paths a provision uses, so what follows measures helm's output.
    let r = osb(reqwest::Method::GET, format!("{}/v2/catalog", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (hwm_before, rss_before) = memory_kib(pid);

    let put = osb(
        reqwest::Method::PUT,
        format!("{}/v2/service_instances/huge-1", b.url),
    )
    .json(&provision(LINES))
    .send();
    let put = tokio::spawn(put);
    // Other requests keep being answered while helm renders.
    let mut served_meanwhile = 0;
    while !put.is_finished() {
        let r = osb(reqwest::Method::GET, format!("{}/v2/catalog", b.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        served_meanwhile += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = put.await.unwrap().unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let (hwm_after, rss_after) = memory_kib(pid);
    println!(
        "broker memory around a provision whose chart renders ~{} MB under a 1 MiB cap: \
         peak {hwm_before} -> {hwm_after} KiB, resident {rss_before} -> {rss_after} KiB; \
         {served_meanwhile} catalog requests served meanwhile",
        LINES * 80 / 1_000_000
    );
    assert_eq!(status, 500, "{body}");
    let d = body["description"].as_str().unwrap_or_default();
    assert!(
        d.contains("limit of 1048576 bytes") && d.contains("max_manifest_bytes"),
        "the failure names the cap and the setting: {body}"
    );
    assert!(served_meanwhile > 0);
    assert!(
        hwm_after.saturating_sub(hwm_before) < 8 * 1024,
        "peak memory grew by {} KiB",
        hwm_after - hwm_before
    );
    assert!(
        !data.path().join("render/apps/cb-huge-1").exists(),
        "nothing is written for a failed render"
    );

    // Asynchronously, last_operation says the same.
    let r = osb(
        reqwest::Method::PUT,
        format!(
            "{}/v2/service_instances/huge-2?accepts_incomplete=true",
            b.url
        ),
    )
    .json(&provision(LINES))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let op = r.json::<Value>().await.unwrap()["operation"]
        .as_str()
        .unwrap()
        .to_string();
    let last = loop {
        let r = osb(
            reqwest::Method::GET,
            format!(
                "{}/v2/service_instances/huge-2/last_operation?operation={op}",
                b.url
            ),
        )
        .send()
        .await
        .unwrap();
        let v: Value = r.json().await.unwrap();
        if v["state"] != "in progress" {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last["state"], "failed", "{last}");
    let d = last["description"].as_str().unwrap_or_default();
    assert!(d.contains("limit of 1048576 bytes"), "{last}");
}
