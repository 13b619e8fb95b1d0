//! The dashboard in a real browser: Debian's chromium driven headless over
//! WebDriver (chromedriver), against `chartbroker serve` as a process.
//! Pages load without console errors (CSP violations included), the
//! filter form works, a provision made over OSB shows up, a state changes
//! live (Server-Sent Events), a failed operation shows its reason, hostile
//! text stays text, no generated secret is in any page source, and a
//! signed link opens its instance and no other. Screenshots go to
//! `target/ui-screenshots/`.

use crate::common;

use std::time::Duration;

use fantoccini::Locator;
use reqwest::Method;
use serde_json::json;

use crate::helpers::ui_browser::*;
use common::process::{free_port, ready, spawn_serve};
use common::*;

#[tokio::test]
async fn the_dashboard_works_in_chromium() {
    let (_driver_proc, driver) = chromedriver().await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (catalog, charts) = (fixtures().join("catalog"), fixtures().join("charts"));
    let _broker = spawn_serve(
        port,
        &catalog,
        &charts,
        data.path(),
        &helm_bin(),
        &[
            "--ui",
            "--ui-username",
            UI_USER,
            "--ui-password",
            UI_PASS,
            "--ui-public-url",
            &base,
        ],
    );
    ready(port).await;
    let hostile = "<script>alert('x')<script><img src=x onerror=alert(1)>";
    let enc = |id: &str| chartbroker::ui::html::url_part(id).replace("&amp;", "&");
    let mut links = Vec::new();
    for (id, ns, plan, msg) in [
        ("web-1", "team-a", "plan-small", "hello"),
        ("web-2", "team-a", "plan-small", "<b>bold?</b>"),
        ("db-1", "team-b", "plan-large", "x"),
        (
            hostile,
            "team-b",
            "plan-small",
            "<script>alert('tenant')</script>",
        ),
        ("broken-1", "team-b", "plan-broken", "x"),
    ] {
        let (status, body) = osb(
            format!("{base}/v2/service_instances/{}", enc(id)),
            Some(provision_body_in(plan, ns, json!({"message": msg}))),
            Method::PUT,
        )
        .await;
        assert!(
            status == 201 || plan == "plan-broken",
            "{id}: {status} {body}"
        );
        links.push(
            body["dashboard_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let (status, bound) = osb(
        format!("{base}/v2/service_instances/web-1/service_bindings/b-1"),
        Some(bind_body("plan-small", json!({"role": "reader"}))),
        Method::PUT,
    )
    .await;
    assert_eq!(status, 201, "{bound}");
    let password = bound["credentials"]["password"].as_str().unwrap();

    let c = browser(&driver).await;
    let authed = format!("http://{UI_USER}:{UI_PASS}@127.0.0.1:{port}");
    c.goto(&format!("{authed}/ui/instances")).await.unwrap();
    assert_eq!(rows(&c).await, 5);
    shot(&c, "instances").await;
    assert_quiet(&c, &driver, "the instances page").await;
    // Hostile text is text: no element came out of it.
    assert_absent(&c, "main img, main b").await;
    let cell = element(&c, "#instances a[href*='%3Cscript']").await;
    assert_eq!(cell.text().await.unwrap(), hostile);

    // The filter form, as a person uses it.
    let form = c.form(Locator::Css("form.filters")).await.unwrap();
    form.set_by_name("namespace", "team-b").await.unwrap();
    form.submit().await.unwrap();
    wait_for_url(&c, "namespace=team-b").await;
    assert_eq!(rows(&c).await, 3);
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("namespace=team-b")
    );
    open(&c, &format!("{base}/ui/instances?state=provision_failed")).await;
    assert_eq!(rows(&c).await, 1);
    assert_quiet(&c, &driver, "the filtered page").await;

    // A failed operation shows its reason.
    open(&c, &format!("{base}/ui/instances/broken-1")).await;
    let reason = text_of(&c, "#operations tr.failed td.description").await;
    assert!(reason.contains("want integer"), "{reason}");
    assert_quiet(&c, &driver, "a failed instance").await;

    // An instance's page; hostile parameters stay text.
    open(&c, &format!("{base}/ui/instances/{}", enc(hostile))).await;
    let h1 = text_of(&c, "h1").await;
    assert_eq!(h1, format!("Instance {hostile}"));
    assert_absent(&c, "main img").await;
    c.goto(&format!("{base}/ui/instances/web-1")).await.unwrap();
    let bindings = text_of(&c, "#bindings").await;
    assert!(
        bindings.contains("b-1") && bindings.contains("Secret team-a/"),
        "{bindings}"
    );
    shot(&c, "instance").await;
    assert_quiet(&c, &driver, "an instance page").await;

    // A provision made over OSB shows up; a deprovision changes the state
    // on the open page without a reload.
    osb(
        format!("{base}/v2/service_instances/late-1"),
        Some(provision_body_in("plan-small", "team-c", json!({}))),
        Method::PUT,
    )
    .await;
    // Ids that are names of JavaScript's own properties stay plain ids.
    for id in ["__proto__", "constructor"] {
        let (status, _) = osb(
            format!("{base}/v2/service_instances/{id}"),
            Some(provision_body_in("plan-small", "team-c", json!({}))),
            Method::PUT,
        )
        .await;
        assert_eq!(status, 201);
    }
    open(&c, &format!("{base}/ui/instances?namespace=team-c")).await;
    let state = element(&c, "[data-state-for='late-1']").await;
    assert_eq!(state.text().await.unwrap(), "ready");
    let (status, _) = osb(
        format!("{base}/v2/service_instances/late-1?service_id=svc-tiny&plan_id=plan-small"),
        None,
        Method::DELETE,
    )
    .await;
    assert_eq!(status, 200);
    let mut seen = String::new();
    for _ in 0..100 {
        seen = state.text().await.unwrap();
        if seen == "deleted" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "deleted", "the state did not change live");
    for id in ["__proto__", "constructor"] {
        let cell = text_of(&c, &format!("[data-state-for='{id}']")).await;
        assert_eq!(cell, "ready", "{id}");
    }
    assert_quiet(&c, &driver, "live updates").await;

    // Catalog and health load cleanly; no page's source holds a secret.
    for uri in [
        "/ui/catalog",
        "/ui/health",
        "/ui/instances",
        "/ui/instances/web-1",
    ] {
        c.goto(&format!("{base}{uri}")).await.unwrap();
        let src = c.source().await.unwrap();
        assert!(
            !src.contains(password),
            "{uri} shows the generated password"
        );
        assert!(!src.contains("<script>alert"), "{uri}");
        if uri == "/ui/catalog" {
            shot(&c, "catalog").await;
        }
        assert_quiet(&c, &driver, uri).await;
    }
    c.close().await.unwrap();

    // A signed link, in a session that holds no credential: its instance
    // only.
    let c = browser(&driver).await;
    let link = &links[0];
    assert!(link.starts_with(&base), "{link}");
    c.goto(link).await.unwrap();
    let h1 = text_of(&c, "h1").await;
    assert_eq!(h1, "Instance web-1");
    assert_absent(&c, "nav").await;
    assert!(!c.source().await.unwrap().contains(password));
    shot(&c, "signed-link").await;
    assert_quiet(&c, &driver, "a signed link").await;
    let query = &link[link.find('?').unwrap()..];
    open(&c, &format!("{base}/ui/instances/web-2{query}")).await;
    let h1 = text_of(&c, "h1").await;
    assert_eq!(h1, "Link not valid");
    assert!(!c.source().await.unwrap().contains("bold?"));
    // The console is really read: the refused page's 403 is in it.
    let log = console(&c, &driver).await;
    assert!(
        log.iter()
            .any(|e| e["level"] == "SEVERE" && e["message"].as_str().unwrap_or("").contains("403")),
        "{log:#?}"
    );
    c.close().await.unwrap();
}
