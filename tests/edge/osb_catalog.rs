//! `GET /v2/catalog` over HTTP: the body, what it must not reveal, and
//! caching with `ETag` / `If-None-Match`.

use crate::common;

use crate::helpers::osb_catalog::*;
use axum::http::{Method, StatusCode, header};
use common::*;

#[tokio::test]
async fn catalog_returns_200_with_services_and_plans() {
    let b = TestBroker::start().await;
    let r = b.get("/v2/catalog").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    let services = r.json["services"].as_array().expect("services array");
    assert_eq!(services.len(), 1, "{}", r.text);
    let s = &services[0];
    // The fields the spec marks REQUIRED on a service offering.
    assert_eq!(s["id"], "svc-tiny");
    assert_eq!(s["name"], "tiny");
    assert_eq!(s["description"], "Tiny test service");
    assert_eq!(s["bindable"], true);
    assert_eq!(s["instances_retrievable"], true);
    assert_eq!(s["bindings_retrievable"], true);
    assert_eq!(s["plan_updateable"], true);
    let plans = s["plans"].as_array().expect("plans array");
    let ids: Vec<&str> = plans.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "plan-small",
            "plan-large",
            "plan-async",
            "plan-unbindable",
            "plan-broken"
        ]
    );
    for p in plans {
        for field in ["id", "name", "description"] {
            assert!(
                p[field].as_str().is_some_and(|v| !v.is_empty()),
                "plan needs a non-empty {field}: {p}"
            );
        }
    }
    let small = &plans[0];
    assert_eq!(
        small["maintenance_info"],
        serde_json::json!({"version": "1.0.0"})
    );
    assert_eq!(small["binding_rotatable"], true);
    assert_eq!(plans[2]["plan_updateable"], false);
    assert_eq!(plans[3]["bindable"], false);
}

#[tokio::test]
async fn catalog_reveals_no_broker_only_keys() {
    let b = TestBroker::start().await;
    let r = b.get("/v2/catalog").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut all = Vec::new();
    keys(&r.json, "", &mut all);
    assert!(all.len() > 20, "walked too little of {}", r.text);
    for forbidden in [
        "chart",
        "values",
        "secrets",
        "credentials",
        "async_required",
        "upstream",
        "path",
    ] {
        let hits: Vec<_> = all.iter().filter(|(k, _)| k == forbidden).collect();
        assert!(hits.is_empty(), "catalog leaks {forbidden:?} at {hits:?}");
    }
    // Nor the templates they hold.
    assert!(
        !r.text.contains("{{"),
        "catalog leaks a template: {}",
        r.text
    );
}

#[tokio::test]
async fn catalog_parameter_schemas_declare_their_dialect() {
    // spec: "The `$schema` key MUST be present in the schema".
    let b = TestBroker::start().await;
    let r = b.get("/v2/catalog").await;
    let mut seen = 0;
    for plan in r.json["services"][0]["plans"].as_array().unwrap() {
        let Some(schemas) = plan.get("schemas") else {
            continue;
        };
        for (group, op) in [
            ("service_instance", "create"),
            ("service_instance", "update"),
            ("service_binding", "create"),
        ] {
            if let Some(p) = schemas.get(group).and_then(|g| g.get(op)) {
                let s = &p["parameters"]["$schema"];
                assert!(
                    s.as_str().is_some_and(|s| !s.is_empty()),
                    "{group}.{op} of {}: {p}",
                    plan["id"]
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 5, "plan-small has 3 schemas, plan-large 2");
}

#[tokio::test]
async fn catalog_etag_is_a_valid_entity_tag() {
    // RFC 7232 §2.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, where etagc
    // excludes DQUOTE.
    let b = TestBroker::start().await;
    let etag = etag_of(&b).await;
    let opaque = etag.strip_prefix("W/").unwrap_or(&etag);
    assert!(
        opaque.len() > 2 && opaque.starts_with('"') && opaque.ends_with('"'),
        "ETag {etag:?} is not quoted"
    );
    assert!(
        !opaque[1..opaque.len() - 1].contains('"'),
        "ETag {etag:?} has a quote inside its opaque tag"
    );
    assert_eq!(etag, etag_of(&b).await, "the ETag must be stable");
}

#[tokio::test]
async fn catalog_if_none_match_with_current_etag_gives_304() {
    let b = TestBroker::start().await;
    let etag = etag_of(&b).await;
    let r = get_with_if_none_match(&b, &etag).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.text);
    assert_eq!(r.text, "", "a 304 has no body");
    assert_eq!(r.headers[header::ETAG], etag.as_str());

    // One of several tags.
    let r = get_with_if_none_match(&b, &format!("\"other\", {etag}")).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.text);
    // RFC 7232 §3.2: If-None-Match uses the weak comparison, so a tag a proxy
    // weakened still matches.
    let r = get_with_if_none_match(&b, &format!("W/{etag}")).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.text);
    let r = get_with_if_none_match(&b, "*").await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.text);
}

#[tokio::test]
async fn catalog_if_none_match_with_other_etag_gives_200() {
    let b = TestBroker::start().await;
    let r = get_with_if_none_match(&b, "\"0123456789abcdef\"").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json["services"].is_array(), "{}", r.text);
    assert!(r.headers.contains_key(header::ETAG));
}

#[tokio::test]
async fn every_method_and_spelling_of_the_catalog_path_answers_as_its_route() {
    // GET is answered before routing (`osb::App`); HEAD and the other
    // methods go through the router. They must agree.
    let b = TestBroker::start().await;
    let with_id = |method: Method, uri: &str| {
        let mut r = req(method, uri, None);
        r.headers_mut()
            .insert("x-broker-api-request-identity", "rid-1".parse().unwrap());
        r
    };
    let get = b.send(with_id(Method::GET, "/v2/catalog")).await;
    let head = b.send(with_id(Method::HEAD, "/v2/catalog")).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text);
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.text.is_empty(), "{}", head.text);
    for name in [header::ETAG, header::CONTENT_TYPE] {
        assert_eq!(get.headers.get(&name), head.headers.get(&name), "{name}");
    }
    for r in [&get, &head] {
        assert_eq!(r.headers["x-broker-api-request-identity"], "rid-1");
    }
    let query = b.send(with_id(Method::GET, "/v2/catalog?anything=1")).await;
    assert_eq!((query.status, &query.text), (StatusCode::OK, &get.text));
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let r = b.send(with_id(method.clone(), "/v2/catalog")).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(r.json["error"], "MethodNotAllowed", "{method}");
        assert_eq!(r.headers[header::ALLOW], "GET,HEAD", "{method}");
        assert_eq!(r.headers["x-broker-api-request-identity"], "rid-1");
    }
    for other in [
        "/v2/catalog/",
        "/v2/Catalog",
        "/v2//catalog",
        "/v2/catalog%2F",
    ] {
        let r = b.send(with_id(Method::GET, other)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{other}: {}", r.text);
    }
    // The checks run on every path to the catalog, unauthenticated first.
    let mut anonymous = with_id(Method::GET, "/v2/catalog");
    anonymous.headers_mut().remove(header::AUTHORIZATION);
    let r = b.send(anonymous).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["x-broker-api-request-identity"], "rid-1");
    let mut old = with_id(Method::HEAD, "/v2/catalog");
    old.headers_mut()
        .insert("x-broker-api-version", "2.12".parse().unwrap());
    assert_eq!(b.send(old).await.status, StatusCode::PRECONDITION_FAILED);
}
