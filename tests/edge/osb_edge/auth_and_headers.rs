use super::*;

// === authentication ===

#[tokio::test]
async fn every_v2_route_answers_401_without_valid_credentials() {
    let b = TestBroker::start().await;
    let wrong = [
        None,
        Some(basic(USER, "wrong-password")),
        Some(basic("someone-else", PASS)),
        Some(basic(USER, "")),
        Some("Basic not-base64!!".to_string()),
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(USER)
        )),
        Some("Bearer some-token".to_string()),
        Some(format!("Digest {}", auth())),
    ];
    for (method, uri, body) in v2_routes() {
        for authz in &wrong {
            let mut headers = vec![VERSION, ("content-type", "application/json")];
            if let Some(a) = authz {
                headers.push(("authorization", a));
            }
            let r = b
                .send_bare(method.clone(), uri, &headers, body_bytes(&body))
                .await;
            assert_unauthorized(&r, &format!("{method} {uri} with {authz:?}"));
        }
        // The same request authenticated is not a 401.
        let r = b.send(req(method.clone(), uri, body.clone())).await;
        assert_ne!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {uri}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn unauthenticated_requests_change_nothing() {
    let b = TestBroker::start().await;
    let body = serde_json::to_vec(&provision_body("plan-small", json!({}))).unwrap();
    let r = b
        .send_bare(
            Method::PUT,
            "/v2/service_instances/i-1",
            &[VERSION],
            Some(body),
        )
        .await;
    assert_unauthorized(&r, "PUT");
    let r = b.get("/v2/service_instances/i-1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(!b.release_dir("i-1").exists());
}

#[tokio::test]
async fn authentication_is_checked_before_the_version_header() {
    let b = TestBroker::start().await;
    for version in [None, Some("1.0"), Some("")] {
        let mut headers = vec![];
        if let Some(v) = version {
            headers.push(("x-broker-api-version", v));
        }
        let r = b
            .send_bare(Method::GET, "/v2/catalog", &headers, None)
            .await;
        assert_unauthorized(&r, &format!("version {version:?}"));
    }
}

#[tokio::test]
async fn bearer_tokens_and_users_from_the_credentials_file_are_accepted() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("credentials.yaml");
    std::fs::write(
        &file,
        "tokens: [tok-0123456789abcdef]\nusers:\n  - username: second\n    password: second-pass\n",
    )
    .unwrap();
    let mut cfg = config(data.path());
    cfg.credentials_file = Some(file);
    let b = TestBroker::with_config(data, cfg).await;
    for good in [
        "Bearer tok-0123456789abcdef".to_string(),
        basic("second", "second-pass"),
        auth(),
    ] {
        let r = b.catalog_as(&good).await;
        assert_eq!(r.status, StatusCode::OK, "{good}: {}", r.text);
    }
    for bad in [
        "Bearer tok-0123456789abcde",
        "Bearer ",
        "Bearer tok-0123456789abcdef-more",
        "tok-0123456789abcdef",
    ] {
        let r = b.catalog_as(bad).await;
        assert_unauthorized(&r, bad);
        // With tokens configured, the challenge offers Bearer as well.
        let challenges: Vec<_> = r.headers.get_all(header::WWW_AUTHENTICATE).iter().collect();
        assert!(
            challenges
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("Bearer ")),
            "{challenges:?}"
        );
    }
}

// === X-Broker-API-Version ===

#[tokio::test]
async fn missing_or_unsupported_api_version_returns_412() {
    let b = TestBroker::start().await;
    let authz = auth();
    for version in [
        None,
        Some(""),
        Some("1.0"),
        Some("3.0"),
        Some("2.12"),
        Some("2"),
        Some("latest"),
    ] {
        let mut headers = vec![("authorization", authz.as_str())];
        if let Some(v) = version {
            headers.push(("x-broker-api-version", v));
        }
        for (method, uri, body) in [
            (Method::GET, "/v2/catalog", None),
            (
                Method::PUT,
                "/v2/service_instances/i-1",
                Some(provision_body("plan-small", json!({}))),
            ),
        ] {
            let r = b
                .send_bare(method.clone(), uri, &headers, body_bytes(&body))
                .await;
            let case = format!("{version:?}: the description should name the supported range");
            assert_osb_error_naming(
                &r,
                StatusCode::PRECONDITION_FAILED,
                &["2.13", "2.17"],
                &case,
            );
        }
    }
    let r = b.get("/v2/service_instances/i-1").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a 412 created something: {}",
        r.text
    );
}

#[tokio::test]
async fn supported_api_versions_are_accepted() {
    let b = TestBroker::start().await;
    let authz = auth();
    for version in ["2.13", "2.14", "2.17"] {
        let r = b
            .send_bare(
                Method::GET,
                "/v2/catalog",
                &[("authorization", &authz), ("x-broker-api-version", version)],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{version}: {}", r.text);
    }
}

// === X-Broker-API-Request-Identity ===

#[tokio::test]
async fn request_identity_is_echoed_on_success_and_error() {
    let b = TestBroker::start().await;
    let authz = auth();
    let id = "9c2d6d8e-request-identity";
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = vec![("x-broker-api-request-identity", id)];
        h.extend_from_slice(extra);
        h
    };
    let provision = serde_json::to_vec(&provision_body("plan-small", json!({}))).unwrap();
    let full: Vec<(&str, &str)> = vec![
        ("x-broker-api-request-identity", id),
        ("authorization", authz.as_str()),
        VERSION,
    ];
    let cases = vec![
        (
            StatusCode::OK,
            bare(Method::GET, "/v2/catalog", &full, None),
        ),
        (
            StatusCode::CREATED,
            bare(
                Method::PUT,
                "/v2/service_instances/i-1",
                &full,
                Some(provision.clone()),
            ),
        ),
        (
            StatusCode::ACCEPTED,
            bare(
                Method::PUT,
                "/v2/service_instances/i-2?accepts_incomplete=true",
                &full,
                Some(provision.clone()),
            ),
        ),
        (
            StatusCode::UNAUTHORIZED,
            bare(Method::GET, "/v2/catalog", &with(&[VERSION]), None),
        ),
        (
            StatusCode::PRECONDITION_FAILED,
            bare(
                Method::GET,
                "/v2/catalog",
                &[
                    ("x-broker-api-request-identity", id),
                    ("authorization", authz.as_str()),
                ],
                None,
            ),
        ),
        (
            StatusCode::BAD_REQUEST,
            bare(
                Method::PUT,
                "/v2/service_instances/i-3",
                &full,
                Some(b"{".to_vec()),
            ),
        ),
        (
            StatusCode::NOT_FOUND,
            bare(Method::GET, "/v2/service_instances/nope", &full, None),
        ),
        (
            StatusCode::NOT_FOUND,
            bare(Method::GET, "/v2/no-such-route", &full, None),
        ),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            bare(Method::POST, "/v2/catalog", &full, None),
        ),
        (
            StatusCode::CONFLICT,
            bare(
                Method::PUT,
                "/v2/service_instances/i-1",
                &full,
                Some(serde_json::to_vec(&provision_body("plan-large", json!({}))).unwrap()),
            ),
        ),
        (
            StatusCode::GONE,
            bare(
                Method::DELETE,
                "/v2/service_instances/nope?service_id=svc-tiny&plan_id=plan-small",
                &full,
                None,
            ),
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            bare(
                Method::PUT,
                "/v2/service_instances/i-4",
                &full,
                Some(serde_json::to_vec(&provision_body("plan-async", json!({}))).unwrap()),
            ),
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            bare(
                Method::PUT,
                "/v2/service_instances/i-5",
                &full,
                Some(vec![b' '; 2 * 1024 * 1024]),
            ),
        ),
    ];
    for (status, request) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let r = b.send(request).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert_eq!(
            r.header("x-broker-api-request-identity"),
            Some(id),
            "{what} ({status}) did not echo the request identity"
        );
    }
}

#[tokio::test]
async fn malformed_originating_identity_returns_400() {
    let b = TestBroker::start().await;
    let authz = auth();
    let provision = serde_json::to_vec(&provision_body("plan-small", json!({}))).unwrap();
    for identity in malformed_identities() {
        let headers = [
            ("authorization", authz.as_str()),
            VERSION,
            ("x-broker-api-originating-identity", identity.as_str()),
        ];
        for (method, uri, body) in [
            (Method::GET, "/v2/catalog", None),
            (
                Method::PUT,
                "/v2/service_instances/i-1",
                Some(provision.clone()),
            ),
        ] {
            let r = b.send_bare(method.clone(), uri, &headers, body).await;
            assert_400_naming(&r, "X-Broker-API-Originating-Identity", &identity);
        }
    }
    let r = b.get("/v2/service_instances/i-1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[tokio::test]
async fn originating_identity_is_checked_after_authentication() {
    let b = TestBroker::start().await;
    for identity in malformed_identities() {
        let r = b
            .send_bare(
                Method::GET,
                "/v2/catalog",
                &[
                    VERSION,
                    ("x-broker-api-originating-identity", identity.as_str()),
                ],
                None,
            )
            .await;
        assert_unauthorized(&r, &identity);
    }
}

#[tokio::test]
async fn valid_originating_identities_are_accepted() {
    let b = TestBroker::start().await;
    let authz = auth();
    // The profile's own examples, byte for byte.
    let k8s = "kubernetes ew0KICAidXNlcm5hbWUiOiAiZHVrZSIsDQogICJ1aWQiOiAiYzJkZGUyNDItNWNlNC0xMWU3LTk4OGMtMDAwYzI5NDZmMTRmIiwNCiAgImdyb3VwcyI6IFsgImFkbWluIiwgImRldiIgXSwNCiAgImV4dHJhIjogew0KICAgICJteWRhdGEiOiBbICJkYXRhMSIsICJkYXRhMyIgXQ0KICB9DQp9";
    let cf = "cloudfoundry eyANCiAgInVzZXJfaWQiOiAiNjgzZWE3NDgtMzA5Mi00ZmY0LWI2NTYtMzljYWNjNGQ1MzYwIg0KfQ==";
    let other = format!(
        "someplatform {}",
        b64_encode(&json!({"anything": ["goes"]}).to_string())
    );
    for (n, identity) in [k8s, cf, other.as_str()].into_iter().enumerate() {
        let headers = [
            ("authorization", authz.as_str()),
            VERSION,
            ("content-type", "application/json"),
            ("x-broker-api-originating-identity", identity),
        ];
        let r = b
            .send_bare(Method::GET, "/v2/catalog", &headers, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{identity}: {}", r.text);
        let body = serde_json::to_vec(&provision_body("plan-small", json!({}))).unwrap();
        let r = b
            .send_bare(
                Method::PUT,
                &format!("/v2/service_instances/i-{n}"),
                &headers,
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{identity}: {}", r.text);
    }
}

// === bodies ===

#[tokio::test]
async fn body_over_one_mib_returns_413() {
    let b = TestBroker::start().await;
    let mut body = provision_body("plan-small", json!({"message": "m".repeat(1024 * 1024)}));
    let bytes = serde_json::to_vec(&body).unwrap();
    assert!(bytes.len() > 1024 * 1024);
    let r = send_json_bytes(&b, Method::PUT, "/v2/service_instances/i-1", Some(bytes)).await;
    assert_osb_error(&r, StatusCode::PAYLOAD_TOO_LARGE, None);

    // Streamed without a length, the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let mut request = req(Method::PUT, "/v2/service_instances/i-1", None);
    *request.body_mut() = axum::body::Body::from_stream(futures::stream::iter(chunks));
    let r = b.send(request).await;
    assert_osb_error(&r, StatusCode::PAYLOAD_TOO_LARGE, None);
    let r = b.get("/v2/service_instances/i-1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Just under the limit the body is read, and judged on its content.
    body["parameters"]["message"] = json!("m".repeat(1000 * 1024));
    let r = b.put("/v2/service_instances/i-1", body).await;
    assert_osb_error(&r, StatusCode::BAD_REQUEST, None);
    assert!(
        r.json["description"].as_str().unwrap().contains("message"),
        "{}",
        &r.text[..200]
    );
}
