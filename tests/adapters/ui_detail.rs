//! The dashboard's instance details and health, over HTTP in process (the
//! render engine, the example catalog's MySQL and WordPress, a real
//! upstream broker on openbrokerapi): release revisions and applied
//! manifests with every generated secret redacted, hostile manifest text
//! kept as text, binding Secret types, the instances that use one, the
//! health page's replicas, upstream reachability (probed once however
//! often the page loads) and inline SVG charts under the strict CSP.

use crate::common;
use crate::common::upstream as support;
use crate::helpers::ui_detail::*;
use axum::http::StatusCode;
use base64::Engine as _;
use common::dashboard::*;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn an_instance_shows_its_release_manifests_users_and_secret_types() {
    let b = example_ui().await;
    let secrets = wordpress_on_mysql(&b).await;
    let db = page(&b, "/ui/instances/db-1").await;
    assert_strict(&db);
    let t = &db.text;
    // One revision: the render engine keeps the current rendering only.
    assert!(t.contains("<table id=\"revisions\">"), "{t}");
    assert_eq!(t.matches("<td>rendered</td>").count(), 1, "{t}");
    assert!(t.contains("keeps only the current rendering"));
    // The applied manifests, every object, with Secret values masked.
    assert!(t.contains("<div id=\"manifests\">"), "{t}");
    assert!(t.contains("<summary>StatefulSet cb-db-1"), "{t}");
    assert!(t.contains("<summary>Secret "), "{t}");
    let secret_doc = t
        .split("<summary>Secret cb-db-1")
        .nth(1)
        .expect("the release's Secret")
        .split("</pre>")
        .next()
        .unwrap();
    assert!(
        secret_doc.contains("&quot;: &quot;••••••&quot;"),
        "{secret_doc}"
    );
    assert_hidden(t, &secrets);
    // WordPress uses it: the reverse of `uses`, linked.
    assert!(
        t.contains("<ul id=\"used-by\"><li><a href=\"/ui/instances/wp-1\">wp-1</a> <span class=\"state\">ready</span>"),
        "{t}"
    );
    // Each binding's Secret type, as the service writes it.
    assert!(
        t.contains("<td class=\"secret-type\">servicebinding.io/mysql</td>"),
        "{t}"
    );

    let wp = page(&b, "/ui/instances/wp-1").await.text;
    assert!(wp.contains("<ul id=\"uses\">") && wp.contains("href=\"/ui/instances/db-1\""));
    assert!(!wp.contains("id=\"used-by\""), "nothing uses WordPress");
    assert!(wp.contains("<summary>Deployment cb-wp-1"), "{wp}");
    assert_hidden(&wp, &secrets);

    // A signed link shows the same details, linking nowhere else.
    let r = b.get("/v2/service_instances/db-1").await;
    let link = link_of(&r);
    let linked = get(&b, &link, None).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.text);
    assert!(linked.text.contains("<ul id=\"used-by\"><li>wp-1 "));
    assert!(!linked.text.contains("href=\"/ui/instances/wp-1\""));
    assert_hidden(&linked.text, &secrets);
}

#[tokio::test]
async fn hostile_manifest_text_stays_text_and_generated_secrets_stay_hidden() {
    let b = ui_broker(false).await;
    let long = "n".repeat(3000);
    let hostile = format!("<script>alert('m')</script><img src=x onerror=alert(1)>{long}");
    let plain = json!({"message": "plain"});
    let r = provision(&b, "tiny-1", "plan-small", "apps", plain).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let update = json!({"service_id": "svc-tiny", "parameters": {"message": hostile[..180]}});
    let r = b.patch("/v2/service_instances/tiny-1", update).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secrets = secret_values(&b.release_dir("tiny-1"));
    let n = secrets.len();
    assert_eq!(n, 1, "tiny's Secret holds its generated password");
    let t = page(&b, "/ui/instances/tiny-1").await.text;
    assert!(!t.contains("<script>alert"), "{t}");
    assert!(!t.contains("<img"), "{t}");
    assert!(
        t.contains("&lt;script&gt;alert(&#39;m&#39;)&lt;/script&gt;"),
        "{t}"
    );
    assert!(t.contains("<summary>ConfigMap cb-tiny-1"), "{t}");
    assert_hidden(&t, &secrets);
    // The timeline shows both operations; parameters were masked before.
    assert!(t.contains("<td>update</td>") && t.contains("<td>provision</td>"));
}

#[tokio::test]
async fn a_chart_that_never_rendered_has_no_release() {
    let b = ui_broker(false).await;
    let r = provision(&b, "loud-1", "plan-hostile", "apps", json!({})).await;
    assert_ne!(r.status, StatusCode::CREATED, "{}", r.text);
    let t = page(&b, "/ui/instances/loud-1").await.text;
    assert!(t.contains("id=\"revisions-none\""), "{t}");
    assert!(!t.contains("id=\"manifests\""), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shows_replicas_upstreams_probed_once_and_charts() {
    let cloud = support::Cloud::start("sync", 0, &[]);
    let data = tempfile::tempdir().unwrap();
    let catalog = support::write_catalog(data.path(), &support::CatalogOpts::new(&cloud.url));
    // A second upstream nobody listens for.
    let closed = common::process::free_port();
    std::fs::write(
        catalog.join("down.yaml"),
        format!(
            "upstreams:\n  - name: down\n    url: \"http://127.0.0.1:{closed}\"\n    \
             allow_insecure_http: true\n    timeout_seconds: 1\n"
        ),
    )
    .unwrap();
    let mut cfg = config(data.path());
    cfg.catalog_dir = catalog;
    let b = ui_broker_from(data, cfg, false).await;
    let catalog_gets = || cloud.received("GET", "/v2/catalog").len();
    let before = catalog_gets();

    let h = page(&b, "/ui/health").await;
    assert_strict(&h);
    let t = &h.text;
    assert!(t.contains("id=\"replicas-none\""), "{t}");
    assert!(t.contains("One replica"), "{t}");
    assert!(
        t.contains("<td>cloud</td>") && t.contains("<td class=\"reach\">reachable</td>"),
        "{t}"
    );
    assert!(
        t.contains("<td>down</td>") && t.contains("unreachable ("),
        "{t}"
    );
    assert!(!t.contains(support::CLOUD_PASSWORD));
    assert!(t.contains(&format!("http://127.0.0.1:{closed}")), "{t}");
    assert_eq!(catalog_gets(), before + 1, "one probe");
    // A storm of loads is not passed on: the answer is cached.
    let loads = (0..20).map(|_| page(&b, "/ui/health"));
    for r in futures::future::join_all(loads).await {
        assert!(r.text.contains("<td class=\"reach\">reachable</td>"));
    }
    assert_eq!(catalog_gets(), before + 1, "still one probe");

    // Charts: inline SVG, one bar per series that counted something, no
    // style attribute (the CSP has no 'unsafe-inline').
    let t = page(&b, "/ui/health").await.text;
    assert!(t.contains("<div id=\"charts\">"), "{t}");
    let chart = t
        .split("<figure class=\"chart\">")
        .find(|c| c.starts_with("<figcaption>chartbroker_http_requests"))
        .expect("a chart of HTTP requests");
    assert!(chart.contains("<svg") && chart.contains("<rect"), "{chart}");
    assert!(!t.contains("style="), "no inline style");
    assert!(t.contains("<td id=\"reload-failures\">0</td>"), "{t}");
}

#[tokio::test]
async fn a_generated_secret_is_redacted_wherever_a_chart_writes_it() {
    let b = ui_broker_with(false, |_, data| spill_chart(data)).await;
    let mut body = provision_body_in("plan-spill", "apps", json!({}));
    body["service_id"] = json!("svc-spill");
    let r = b.put("/v2/service_instances/spill-1", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let text = std::fs::read_to_string(b.data.path().join("render/apps/cb-spill-1/manifests.yaml"))
        .unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let encoded = docs[0]["data"]["encoded"].as_str().unwrap();
    let token = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(token.len(), 24);
    let shouted = token.to_uppercase();
    assert_eq!(docs[0]["data"]["shouted"], shouted.as_str());

    let t = page(&b, "/ui/instances/spill-1").await.text;
    assert!(t.contains("<summary>ConfigMap cb-spill-1"), "{t}");
    assert!(t.contains("&quot;url&quot;: &quot;mysql://app:"), "{t}");
    assert!(t.contains("&lt;script&gt;alert(&#39;chart&#39;)"), "{t}");
    assert!(!t.contains("<script>alert"));
    for form in [token.as_str(), encoded, shouted.as_str()] {
        assert!(!t.contains(form), "{form} is on the page");
    }
    // No run of eight of its characters survives either.
    for i in 0..token.len() - 8 {
        assert!(
            !t.contains(&token[i..i + 8]),
            "part of the token is on the page"
        );
    }
}
