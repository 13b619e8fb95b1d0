//! The operator's dashboard over HTTP: its credential, signed links,
//! strict headers, escaping of what charts and tenants wrote, no secret in
//! any page, filters and paging. A real broker (redb store, real `helm
//! template`) driven in-process; the browser test is `ui_browser.rs`.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::helpers::ui::*;
use chartbroker::ui::links::LinkSigner;
use chartbroker::ui::{Ui, UiSettings};
use common::dashboard::*;
use common::*;

#[tokio::test]
async fn every_page_needs_the_credential_and_carries_strict_headers() {
    let b = ui_broker(false).await;
    let pages = [
        "/ui/instances",
        "/ui/instances/x",
        "/ui/catalog",
        "/ui/health",
        "/ui/events?id=x",
    ];
    for uri in pages {
        for auth in [
            None,
            Some(basic(UI_USER, "wrong-password")),
            Some(auth()),
            Some("Bearer x".into()),
        ] {
            let r = get(&b, uri, auth.as_deref()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri} with {auth:?}");
            assert!(
                r.headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic ")
            );
            assert_strict(&r);
        }
    }
    for uri in [
        "/ui/instances",
        "/ui/catalog",
        "/ui/health",
        "/ui/static/ui.css",
        "/ui/static/live.js",
    ] {
        let r = page(&b, uri).await;
        assert_strict(&r);
    }
    let r = page(&b, "/ui/instances").await;
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // No inline script or style anywhere: the CSP would block it.
    for uri in ["/ui/instances", "/ui/catalog", "/ui/health"] {
        let t = page(&b, uri).await.text;
        assert!(
            !t.contains("<script>") && !t.contains("style=") && !t.contains("<style"),
            "{uri}"
        );
    }
    // The dashboard never answers the broker's own platform credential
    // unless configured to.
    let r = get(&b, "/ui/instances", Some(&auth())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_broker_credential_opens_the_dashboard_when_configured() {
    let b = ui_broker(true).await;
    assert_eq!(
        get(&b, "/ui/instances", Some(&auth())).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&b, "/ui/instances", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&b, "/ui/instances", Some(&basic(USER, "nope")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_confined_broker_credential_does_not_open_the_dashboard() {
    // The dashboard shows every instance: a platform credential that may
    // reach some namespaces only must not see it.
    let b = ui_broker_with(true, |cfg, dir| {
        let creds = dir.join("credentials.yaml");
        std::fs::write(
            &creds,
            "users:\n  - username: confined\n    password: confined-password\n    identity: platform\n    namespaces: [apps]\n",
        )
        .unwrap();
        cfg.credentials_file = Some(creds);
    })
    .await;
    let confined = basic("confined", "confined-password");
    let r = b
        .send(
            Request::builder()
                .uri("/v2/catalog")
                .header("authorization", &confined)
                .header("x-broker-api-version", "2.17")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "the credential works on /v2");
    for uri in [
        "/ui/instances",
        "/ui/catalog",
        "/ui/health",
        "/ui/instances/x",
    ] {
        assert_eq!(
            get(&b, uri, Some(&confined)).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
    }
    assert_eq!(
        get(&b, "/ui/instances", Some(&auth())).await.status,
        StatusCode::OK
    );
}

#[test]
fn the_dashboard_refuses_to_start_without_a_credential() {
    for (user, pass) in [
        (None, None),
        (Some("u"), None),
        (Some("u"), Some("short")),
        (Some(""), Some("long-enough")),
    ] {
        let e = Ui::configure(UiSettings {
            username: user.map(Into::into),
            password: pass.map(Into::into),
            ..UiSettings::default()
        });
        assert!(e.is_err(), "{user:?}");
    }
    let with_key = |key: &str| {
        Ui::configure(UiSettings {
            username: Some(UI_USER.into()),
            password: Some(UI_PASS.into()),
            public_url: Some(PUBLIC.into()),
            link_key: Some(key.into()),
            ..UiSettings::default()
        })
    };
    assert!(with_key("too short to sign").is_err());
    assert!(with_key(&"k".repeat(32)).is_ok_and(|u| u.links.is_some()));
}

#[tokio::test]
async fn a_signed_link_opens_its_instance_and_no_other() {
    let b = ui_broker(false).await;
    let a = provisioned(&b, "inst-a", "apps", json!({"message": "hello a"})).await;
    provisioned(&b, "inst-b", "apps", json!({"message": "hello b"})).await;
    let link_a = link_of(&a);
    // Fetching the instance returns a link too; an async provision's 202 as well.
    let fetched = b.get("/v2/service_instances/inst-a").await;
    assert_eq!(fetched.status, StatusCode::OK);
    let fetched_link = link_of(&fetched);
    let accepted = b
        .put(
            "/v2/service_instances/inst-c?accepts_incomplete=true",
            provision_body("plan-async", json!({})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    assert!(accepted.json["operation"].is_string());
    link_of(&accepted);
    // An update's answer carries a fresh one (the platform keeps the last).
    let updated = b
        .patch(
            "/v2/service_instances/inst-b",
            json!({"service_id": "svc-tiny", "parameters": {"message": "hello b2"}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert!(link_of(&updated).starts_with("/ui/instances/inst-b?"));

    for link in [&link_a, &fetched_link] {
        let r = get(&b, link, None).await;
        assert_eq!(r.status, StatusCode::OK, "{link}: {}", r.text);
        assert_strict(&r);
        assert!(r.text.contains("Instance inst-a") && r.text.contains("hello a"));
        assert!(
            !r.text.contains("inst-b") && !r.text.contains("/ui/catalog"),
            "no way out"
        );
    }
    // The same signature on another instance, the list, the other pages.
    let query = &link_a[link_a.find('?').unwrap()..];
    let r = get(&b, &format!("/ui/instances/inst-b{query}"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text.contains("hello b"));
    for uri in ["/ui/instances", "/ui/catalog", "/ui/health"] {
        let r = get(&b, &format!("{uri}{query}"), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    // Live states of another instance through a's link: refused.
    let r = get(&b, &format!("/ui/events{query}&id=inst-b"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get(&b, &format!("/ui/events{query}&id=inst-a&id=inst-b"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Tampered: another expiry, another signature, none, an expired one, another key.
    let (exp, sig) = {
        let p: Vec<(String, String)> = url_pairs(&query[1..]);
        (p[0].1.clone(), p[1].1.clone())
    };
    let later: u64 = exp.parse::<u64>().unwrap() + 1000;
    let signer = LinkSigner::new(&KEY, PUBLIC, 600).unwrap();
    let now = chartbroker::broker::now();
    let foreign = LinkSigner::new(&[1u8; 32], PUBLIC, 600).unwrap();
    for q in [
        format!("?expires={later}&sig={sig}"),
        format!("?expires={exp}&sig=AAAA{}", &sig[4..]),
        format!("?expires={exp}&sig="),
        format!("?expires={exp}"),
        format!("?expires=soon&sig={sig}"),
        format!(
            "?expires={}&sig={}",
            now - 1,
            signer.sign("inst-a", now - 1)
        ),
        format!(
            "?expires={}&sig={}",
            now + 60,
            foreign.sign("inst-a", now + 60)
        ),
    ] {
        let r = get(&b, &format!("/ui/instances/inst-a{q}"), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{q}");
        assert!(!r.text.contains("hello a"));
        assert_strict(&r);
    }
    // A fresh link of the same key works: it is the key that decides.
    let fresh = signer.path("inst-a", now);
    assert_eq!(get(&b, &fresh, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_text_is_escaped_and_no_secret_reaches_a_page() {
    let b = ui_broker(false).await;
    let hostile_id = "<script>alert('id')<script>\"><img src=x onerror=alert(2)>";
    let long_id = format!("{}{}", "very-long-name-".repeat(16), "end");
    provisioned(&b, hostile_id, "apps", json!({"message": TENANT_SCRIPT})).await;
    provisioned(&b, &long_id, "apps", json!({"message": "x"})).await;
    let r = provision(&b, "loud-1", "plan-hostile", "apps", json!({})).await;
    assert!(
        r.status.is_client_error() || r.status.is_server_error(),
        "{}",
        r.text
    );
    let r = provision(&b, "broken-1", "plan-broken", "apps", json!({})).await;
    assert!(!r.status.is_success(), "{}", r.text);
    let hostile_binding = format!("{}/service_bindings/{}", enc(hostile_id), enc("<b>bind<b>"));
    let bind = bind_body("plan-small", json!({"role": "reader"}));
    let bound = b.put_created(&inst(&hostile_binding), bind).await;
    let password = bound.json["credentials"]["password"].as_str().unwrap();
    assert!(password.len() >= 16);

    let mut texts = Vec::new();
    for uri in [
        "/ui/instances".to_owned(),
        "/ui/catalog".into(),
        "/ui/health".into(),
        format!("/ui/instances/{}", enc(hostile_id)),
        format!("/ui/instances/{}", enc(&long_id)),
        "/ui/instances/loud-1".into(),
        "/ui/instances/broken-1".into(),
    ] {
        let r = page(&b, &uri).await;
        assert_strict(&r);
        texts.push((uri, r.text));
    }
    for (uri, t) in &texts {
        for raw in ["<script>alert", "<img src=x", "<b>bind<b>", "\"><img"] {
            assert!(!t.contains(raw), "{uri} carries {raw} unescaped");
        }
        assert!(!t.contains(password), "{uri} shows the generated password");
    }
    let list = &texts[0].1;
    assert!(
        list.contains("&lt;script&gt;alert(&#39;id&#39;)&lt;script&gt;&quot;&gt;&lt;img"),
        "{list}"
    );
    assert!(list.contains(&long_id));
    let inst = &texts[3].1;
    // JSON-quoted inside the parameters, then HTML-escaped.
    assert!(
        inst.contains(r"&lt;script&gt;alert(\&quot;tenant\&quot;)&lt;/script&gt;"),
        "{inst}"
    );
    assert!(
        inst.contains("&lt;b&gt;bind&lt;b&gt;") && inst.contains("Secret apps/"),
        "{inst}"
    );
    let loud = &texts[5].1;
    assert!(
        loud.contains("&lt;script&gt;alert(&#39;chart&#39;)&lt;/script&gt;"),
        "{loud}"
    );
    assert!(loud.contains("class=\"failed\""), "{loud}");
    // A failed operation shows its reason.
    let broken = &texts[6].1;
    assert!(
        broken.contains("want integer") && broken.contains("failed"),
        "{broken}"
    );
    // The signed link of the hostile instance works, escaped the same way.
    let fetched = b
        .get(&format!("/v2/service_instances/{}", enc(hostile_id)))
        .await;
    let r = get(&b, &link_of(&fetched), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("<script>alert") && !r.text.contains(password));
}

#[tokio::test]
async fn filters_and_pages_are_served() {
    let b = ui_broker(false).await;
    for i in 0..53 {
        provisioned(&b, &format!("many-{i:02}"), "team-a", json!({})).await;
    }
    provision(&b, "other-ns", "plan-small", "team-b", json!({})).await;
    provision(&b, "failed-one", "plan-broken", "team-b", json!({})).await;
    provision(&b, "loud-2", "plan-hostile", "team-b", json!({})).await;

    let first = page(&b, "/ui/instances").await.text;
    assert_eq!(rows(&first), 50);
    assert!(first.contains("56 instances, page 1 of 2") && first.contains("rel=\"next\""));
    let second = page(&b, "/ui/instances?page=2").await.text;
    assert_eq!(rows(&second), 6);
    assert!(second.contains("rel=\"prev\"") && !second.contains("rel=\"next\""));
    let ns = page(&b, "/ui/instances?namespace=team-b").await.text;
    assert_eq!(rows(&ns), 3, "{ns}");
    let failed = page(&b, "/ui/instances?state=provision_failed").await.text;
    assert_eq!(rows(&failed), 2, "{failed}");
    assert!(failed.contains("failed-one") && failed.contains("loud-2"));
    let svc = page(&b, "/ui/instances?service=hostile").await.text;
    assert_eq!(rows(&svc), 1);
    let svc_id = page(&b, "/ui/instances?service=svc-hostile&namespace=team-b")
        .await
        .text;
    assert_eq!(rows(&svc_id), 1);
    let ready_a = page(&b, "/ui/instances?state=ready&namespace=team-a&page=2")
        .await
        .text;
    assert_eq!(rows(&ready_a), 3);
    // The form keeps what was asked, escaped.
    let hostile = page(&b, "/ui/instances?namespace=%22%3E%3Cscript%3Ex")
        .await
        .text;
    assert!(!hostile.contains("\"><script>x") && hostile.contains("&quot;&gt;&lt;script&gt;x"));
    assert_eq!(rows(&hostile), 0);
    // Out-of-range or junk pages land on a real page.
    assert_eq!(rows(&page(&b, "/ui/instances?page=99").await.text), 6);
    assert_eq!(rows(&page(&b, "/ui/instances?page=x").await.text), 50);
}

#[tokio::test]
async fn catalog_and_health_show_allowances_and_counters() {
    let b = ui_broker(false).await;
    provision(&b, "h-1", "plan-small", "apps", json!({})).await;
    let c = page(&b, "/ui/catalog").await.text;
    assert!(
        c.contains("tiny / small") && c.contains("default policy"),
        "{c}"
    );
    assert!(c.contains("Generated secrets</th><td>password"));
    assert!(c.contains("Parameter schemas") && c.contains("Number of replicas"));
    let h = page(&b, "/ui/health").await.text;
    assert!(
        h.contains("<tr><th>Store</th><td>redb</td>") && h.contains("<td>render</td>"),
        "{h}"
    );
    assert!(h.contains("Instances ready</th><td>1"), "{h}");
    assert!(h.contains("chartbroker_operations_total"), "{h}");
}

#[tokio::test]
async fn states_stream_as_server_sent_events() {
    let b = ui_broker(false).await;
    provision(&b, "live-1", "plan-small", "apps", json!({})).await;
    let req = Request::builder()
        .uri("/ui/events?id=live-1&id=missing")
        .header("authorization", basic(UI_USER, UI_PASS))
        .body(Body::empty())
        .unwrap();
    use tower::ServiceExt as _;
    let resp = b.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let mut body = resp.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: states\n"), "{text}");
    let data: Value =
        serde_json::from_str(text.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["live-1"]["state"], "ready");
    let op = data["live-1"]["op"].as_str().unwrap();
    assert!(op.starts_with("provision succeeded"), "{op}");
    assert!(data.get("missing").is_none());
}
