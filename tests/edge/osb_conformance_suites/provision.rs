use super::*;

// === catalog ===

// osb-checker test.js "should return list of registered service classes as
// JSON payload"; kotlin CatalogJUnit5 `validateCatalog`.
#[tokio::test]
async fn catalog_is_json_matching_the_suites_catalog_schema() {
    for b in [TestBroker::start().await, example_broker().await] {
        let r = call_get(&b, "/v2/catalog").await;
        assert_status(&r, StatusCode::OK);
        assert_json_content_type(&r);
        assert_schema(&catalog_schema(), &r);
    }
}

// === headers ===

// osb-checker test.js/testAPIVersionHeader.js "should reject requests without
// X-Broker-API-Version header with 412" (header absent); Go
// test/common/*.go "should return 412 PreconditionFailed if missing
// X-Broker-API-Version header" (the generated client sends it empty);
// kotlin ContractJUnit5 `testHeaderForAPIVersion` (including its binding
// "delete" that is a PUT without body, and DELETE with ids "Invalid").
#[tokio::test]
async fn every_route_without_an_api_version_returns_412() {
    let b = TestBroker::start().await;
    let a = auth();
    for (method, uri, body) in routes() {
        for headers in [
            vec![("authorization", a.as_str())],
            vec![("authorization", a.as_str()), ("x-broker-api-version", "")],
        ] {
            let r = send(&b, method.clone(), &uri, &headers, body.clone()).await;
            assert_status(&r, StatusCode::PRECONDITION_FAILED);
        }
    }
}

// osb-checker test.js/testAuthentication.js "should reject unauthorized
// requests with 401" and "should reject bad credentials with 401"
// (spock:spockpass); Go "should return 401 Unauthorized if missing
// Authorization header"; kotlin AuthenticationJUnit5 (no auth, wrong user,
// wrong password; its binding `putWrongUser` sends a mangled version header,
// so authentication must be checked first).
#[tokio::test]
async fn every_route_without_valid_credentials_returns_401() {
    let b = TestBroker::start().await;
    let wrong_user = basic("f0c3b1d6-unknown-user", PASS);
    let wrong_password = basic(USER, "f0c3b1d6-wrong-password");
    let spock = basic("spock", "spockpass");
    let mangled_version = "de.evoila.osb.checker.config.Configuration@1b2c3d.apiVersion";
    for (method, uri, body) in routes() {
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![VERSION],
            vec![VERSION, ("authorization", &spock)],
            vec![VERSION, ("authorization", &wrong_user)],
            vec![VERSION, ("authorization", &wrong_password)],
            vec![
                ("x-broker-api-version", mangled_version),
                ("authorization", &wrong_user),
            ],
        ];
        for headers in cases {
            let r = send(&b, method.clone(), &uri, &headers, body.clone()).await;
            assert_status(&r, StatusCode::UNAUTHORIZED);
        }
    }
}

// kotlin RequestHandler `useRequestIdentity` (API >= 2.15): every response,
// errors included, echoes X-Broker-API-Request-Identity; its configured
// originating identity (`cloudfoundry` + base64 JSON) is accepted.
#[tokio::test]
async fn request_identity_is_echoed_and_originating_identity_accepted() {
    let b = TestBroker::start().await;
    let a = auth();
    let identity = format!(
        "cloudfoundry {}",
        base64::engine::general_purpose::STANDARD
            .encode(r#"{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360"}"#)
    );
    let id = "OSB-Checker-PUT-instance-8b3f0e6a";
    let headers = [
        ("authorization", a.as_str()),
        VERSION,
        ("x-broker-api-originating-identity", identity.as_str()),
        ("x-broker-api-request-identity", id),
    ];
    let requests = [
        (
            Method::PUT,
            inst("i-1"),
            Some(go_provision_body("plan-small", json!({}))),
            StatusCode::CREATED,
        ),
        (Method::GET, inst("i-1"), None, StatusCode::OK),
        (
            Method::PUT,
            inst("i-2"),
            Some(json!({"plan_id": "plan-small"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            async_deprovision("i-9"),
            None,
            StatusCode::GONE,
        ),
    ];
    for (method, uri, body, status) in requests {
        let r = send(&b, method, &uri, &headers, body).await;
        assert_status(&r, status);
        assert_eq!(r.header("x-broker-api-request-identity"), Some(id), "{uri}");
    }
}

// === provision ===

// osb-checker test.js "should reject if missing service_id" / "... plan_id"
// (field deleted), Go (field `""`, with `maintenance_info: {}`), kotlin
// ProvisionJUnit5 `createInvalidPutTestsForPlan` (`""` and
// NoServiceFieldProvisioning / NoPlanFieldProvisioning, body checked against
// its error schema). Nothing may be created.
#[tokio::test]
async fn provision_without_service_id_or_plan_id_returns_400() {
    let b = TestBroker::start().await;
    let full = go_provision_body("plan-small", json!({}));
    let mut bodies = Vec::new();
    for field in ["service_id", "plan_id"] {
        let mut deleted = full.clone();
        deleted.as_object_mut().unwrap().remove(field);
        let mut empty = full.clone();
        empty[field] = json!("");
        let mut null = full.clone();
        null[field] = Value::Null;
        bodies.extend([deleted, empty, null]);
    }
    for body in bodies {
        provision_refused(&b, body.clone()).await;
    }
    let r = call_get(&b, &inst("i-1")).await;
    assert_status(&r, StatusCode::NOT_FOUND);
}

// osb-checker test.js "should reject if service_id is invalid" /
// "plan_id is invalid" ("xxxxx-xxxxx"; Go "xxxx-xxxx-xxxx-xxxx"); kotlin
// "should reject if missing service_id is Invalid" ("Invalid").
#[tokio::test]
async fn provision_with_unknown_service_or_plan_returns_400() {
    let b = TestBroker::start().await;
    for bad in ["xxxxx-xxxxx", "xxxx-xxxx-xxxx-xxxx", "Invalid"] {
        for field in ["service_id", "plan_id"] {
            let mut body = go_provision_body("plan-small", json!({}));
            body[field] = json!(bad);
            provision_refused(&b, body).await;
        }
    }
}

// osb-checker test.js "should reject if request payload is missing
// organization_guid" / "... space_guid" (deleted; Go sends `""`); kotlin
// NoOrgFieldProvisioning / NoSpaceFieldProvisioning. The spec marks both
// REQUIRED and non-empty. None of the suites sends a `context`; with one
// (some Kubernetes platforms send `""` for both; Crossplane's provider-osb
// sends the UUIDs its spec requires) they stay optional, which is the
// broker's documented choice.
#[tokio::test]
async fn provision_without_organization_or_space_guid_returns_400_unless_context_is_sent() {
    let b = TestBroker::start().await;
    for field in ["organization_guid", "space_guid"] {
        let mut deleted = go_provision_body("plan-small", json!({}));
        deleted.as_object_mut().unwrap().remove(field);
        let mut empty = go_provision_body("plan-small", json!({}));
        empty[field] = json!("");
        for body in [deleted, empty] {
            let r = provision_refused(&b, body).await;
            assert!(r.text.contains(field), "{}", r.text);
        }
    }
    let r = call_get(&b, &inst("i-1")).await;
    assert_status(&r, StatusCode::NOT_FOUND);

    // What some Kubernetes platforms send: empty guids next to a context.
    let r = call(
        &b,
        Method::PUT,
        &inst("i-2"),
        Some(json!({
            "service_id": "svc-tiny",
            "plan_id": "plan-small",
            "organization_guid": "",
            "space_guid": "",
            "context": {"platform": "kubernetes", "namespace": "apps",
                        "clusterid": "c-1", "instance_name": "db"},
        })),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
}

// osb-checker test.js / Go "should reject if parameters are not following
// schema" (`{"can-not": "be-good"}`, sent only when the plan has a create
// schema that refuses it).
#[tokio::test]
async fn provision_parameters_not_following_the_plan_schema_return_400() {
    let b = TestBroker::start().await;
    provision_refused(
        &b,
        go_provision_body("plan-small", json!({"can-not": "be-good"})),
    )
    .await;
}

// osb-checker test.js "PROVISION - new" (202 + provision schema), "PROVISION
// - poll" (GET last_operation with `?operation=`, 200, JSON, last_operation
// schema, until "succeeded"), "PROVISION - existed" / Go "should return 200
// OK when instance Id exists with identical properties", "should return 409
// Conflict when instance Id exists with different properties"
// (conflictiveProvision: other plan and parameters); Go polls without
// `operation` or with it empty; kotlin BindingContainers
// `createValidProvisionTests` (201/202/200 + schema, poll, repeat -> 200,
// other organization_guid/space_guid -> 409) and the instance fetch (Go
// "should accept a valid get instance request").
#[tokio::test]
async fn provision_async_polls_to_succeeded_then_repeat_is_200_and_changes_are_409() {
    let b = TestBroker::start().await;
    let body = go_provision_body("plan-small", json!({"message": "hi"}));
    let put = format!("{}?accepts_incomplete=true", inst("i-1"));
    let r = call(&b, Method::PUT, &put, Some(body.clone())).await;
    assert_status(&r, StatusCode::ACCEPTED);
    assert_schema(&provision_schema(), &r);
    let op = r.json["operation"].as_str().unwrap().to_string();

    for query in [
        String::new(),
        "?operation=".into(),
        format!("?operation={op}"),
    ] {
        let r = call_get(&b, &format!("{}/last_operation{query}", inst("i-1"))).await;
        assert_status(&r, StatusCode::OK);
        assert_json_content_type(&r);
        assert_schema(&last_operation_schema(), &r);
    }
    let r = b.wait_instance("i-1", &op).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
    assert_schema(&last_operation_schema(), &r);

    for uri in [put.clone(), inst("i-1")] {
        let r = call(&b, Method::PUT, &uri, Some(body.clone())).await;
        assert_status(&r, StatusCode::OK);
        assert_schema(&provision_schema(), &r);
    }

    let mut other_plan = go_provision_body("plan-large", json!({"message": "other"}));
    other_plan["maintenance_info"] = json!({});
    let mut other_org = body.clone();
    other_org["organization_guid"] = json!("5e7d3c1a-other-org");
    other_org["space_guid"] = json!("9a8b7c6d-other-space");
    for conflicting in [other_plan, other_org] {
        let r = call(&b, Method::PUT, &put, Some(conflicting)).await;
        assert_status(&r, StatusCode::CONFLICT);
    }

    let r = call_get(&b, &inst("i-1")).await;
    assert_status(&r, StatusCode::OK);
    assert_schema(&fetch_instance_schema(), &r);
    assert_eq!(r.json["service_id"], "svc-tiny");
    assert_eq!(r.json["plan_id"], "plan-small");
}

// osb-checker testAsyncParameter ("should return 422 if request doesn't have
// the accepts_incomplete parameter" / "... is false") for PUT, PATCH and
// DELETE of an asynchronous plan; Go "should return 422 UnprocessableEntity
// if missing accepts_incomplete" (the valid body); kotlin ProvisionJUnit5
// "Sync PUT provision request" (201, or 422 with its AsyncRequired schema)
// followed by "Sync DELETE provision request" (200, or 422 again: the
// instance was never created, so 422 wins over 410 here), and the same pair
// for bindings in BindingContainers `createSyncBindingTest`.
//
// Conflict: an older Go revision sent an *empty* provision body with
// `accepts_incomplete=false` and still expected 422; without ids the plan
// is unknown, so the broker answers 400 (the spec's "missing mandatory
// data"). The Go bind test still sends an empty body: same 400.
#[tokio::test]
async fn asynchronous_plans_refuse_requests_without_accepts_incomplete_with_422() {
    let b = TestBroker::start().await;
    let body = json!({"service_id": "svc-tiny", "plan_id": "plan-async",
                      "organization_guid": "org-guid-here", "space_guid": "space-guid-here"});
    let async_required = error_schema(Some("AsyncRequired"));
    for uri in [
        inst("i-1"),
        format!("{}?accepts_incomplete=false", inst("i-1")),
    ] {
        let r = call(&b, Method::PUT, &uri, Some(body.clone())).await;
        assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_schema(&async_required, &r);
    }
    // kotlin's synchronous delete of what it could not create.
    let r = call_delete(
        &b,
        &format!("{}?service_id=svc-tiny&plan_id=plan-async", inst("i-1")),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_schema(&async_required, &r);

    let op = b.provision_async("i-1", "plan-async", json!({})).await;
    b.wait_instance("i-1", &op).await;
    for uri in [
        inst("i-1"),
        format!("{}?accepts_incomplete=false", inst("i-1")),
    ] {
        let r = call(
            &b,
            Method::PATCH,
            &uri,
            Some(json!({"service_id": "svc-tiny"})),
        )
        .await;
        assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_schema(&async_required, &r);
    }
    // Binding an async-only plan synchronously, then unbinding it.
    let bind = json!({"service_id": "svc-tiny", "plan_id": "plan-async"});
    let r = call(&b, Method::PUT, &binding("i-1", "b-1"), Some(bind)).await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_schema(&async_required, &r);
    let r = call_delete(
        &b,
        &format!(
            "{}?service_id=svc-tiny&plan_id=plan-async",
            binding("i-1", "b-1")
        ),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_schema(&async_required, &r);

    let delete = format!("{}?plan_id=plan-async&service_id=svc-tiny", inst("i-1"));
    for uri in [delete.clone(), format!("{delete}&accepts_incomplete=false")] {
        let r = call_delete(&b, &uri).await;
        assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert_schema(&async_required, &r);
    }
    // Still there: nothing above changed it.
    let r = call_get(&b, &inst("i-1")).await;
    assert_status(&r, StatusCode::OK);
}

// kotlin ProvisionJUnit5 "Sync PUT provision request" / "Sync DELETE
// provision request" for a plan that is served synchronously, after "should
// return 4XX when trying to retrieve a non existing service instance".
#[tokio::test]
async fn synchronous_provision_and_deprovision_return_201_and_200() {
    let b = TestBroker::start().await;
    let r = call_get(&b, &inst("i-1")).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    let body = json!({"service_id": "svc-tiny", "plan_id": "plan-small",
                      "organization_guid": "0d9e8f7a-org", "space_guid": "1c2b3a4d-space"});
    let r = call(&b, Method::PUT, &inst("i-1"), Some(body)).await;
    assert_status(&r, StatusCode::CREATED);
    assert_schema(&provision_schema(), &r);
    let r = call_delete(
        &b,
        &format!("{}?service_id=svc-tiny&plan_id=plan-small", inst("i-1")),
    )
    .await;
    assert_status(&r, StatusCode::OK);
    assert_schema(&delete_schema(), &r);
    assert_eq!(r.json, json!({}));
}

// kotlin ProvisionJUnit5 "PUT should reject if maintenance_info doesn't
// match" (`{"version": "Invalid", "description": "Should return 422"}` ->
// 422 with its MaintenanceInfoConflict schema) and "DELETE should return
// 410 ... as it should not have been created"; its valid provisions send the
// plan's own maintenance_info (version and description), the Go client
// `maintenance_info: {}`: both accepted.
#[tokio::test]
async fn provision_maintenance_info_mismatch_is_422_and_matching_or_empty_is_accepted() {
    let b = TestBroker::start().await;
    let mut body = go_provision_body("plan-small", json!({}));
    body["maintenance_info"] = json!({"version": "Invalid", "description": "Should return 422"});
    let r = call(
        &b,
        Method::PUT,
        &format!("{}?accepts_incomplete=true", inst("i-1")),
        Some(body),
    )
    .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_schema(&error_schema(Some("MaintenanceInfoConflict")), &r);
    let r = call_delete(&b, &async_deprovision("i-1")).await;
    assert_status(&r, StatusCode::GONE);

    let mut catalog_info = go_provision_body("plan-small", json!({}));
    catalog_info["maintenance_info"] =
        json!({"version": "1.0.0", "description": "from the catalog"});
    for (id, body) in [
        ("i-2", catalog_info),
        ("i-3", go_provision_body("plan-small", json!({}))),
    ] {
        let r = call(&b, Method::PUT, &inst(id), Some(body)).await;
        assert_status(&r, StatusCode::CREATED);
    }
}
