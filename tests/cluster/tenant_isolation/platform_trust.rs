//! Trust bound to the platform's credential, not to a label in the
//! request: each platform credential says whether its requests must carry
//! a user identity the broker checks (a SubjectAccessReview answered by the
//! real API server's RBAC) or the platform is its own authorizer, and which
//! namespaces it may reach. Two credentials with different trust are used
//! side by side; a request that relabels its platform (`context.platform:
//! cloudfoundry`, or no context at all) is still checked.

use crate::common;

use axum::http::{Method, StatusCode};
use common::cluster::Cluster;
use common::*;
use serde_json::{Value, json};

use crate::helpers::tenant_isolation_platform_trust::*;
// Its own bind body (the platform catalog), not common's.
use crate::helpers::tenant_isolation_platform_trust::bind_body;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_platform_credentials_with_different_trust_side_by_side() {
    let k = Cluster::admin().await;
    let ns_a = k.namespace("trust-a").await;
    k.default_release_identity(&ns_a);
    let ns_b = k.namespace("trust-b").await;
    k.default_release_identity(&ns_b);
    k.grant_user(&ns_a, "alice");
    let b = cluster_broker(&k, &[&ns_a]).await;
    let put = |id: &str| format!("/v2/service_instances/{id}?accepts_incomplete=true");
    let params = json!({"database": "shop"});

    // The platform that is its own authorizer: no identity, in its namespace.
    let r = as_platform(
        XP,
        Method::PUT,
        &put("tr-x1"),
        Some(provision(Some(&ns_a), "kubernetes", params.clone())),
        None,
    );
    let done = run(&b, r, XP).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    assert!(
        k.has(&format!("/api/v1/namespaces/{ns_a}/configmaps/cb-tr-x1"))
            .await
    );
    // ... but not outside it, though the operator allows that namespace.
    let r = put_as(
        &b,
        XP,
        &put("tr-x2"),
        provision(Some(&ns_b), "kubernetes", params.clone()),
        None,
    )
    .await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    let d = r.json["description"].as_str().unwrap();
    assert!(d.contains(XP.0) && d.contains(&ns_b), "{d}");
    assert_nothing_recorded(&b, XP, "tr-x2").await;

    // The platform whose users are checked, in the same namespace: no
    // identity, and a user RBAC refuses, get 403; alice may.
    for id in [None, Some(kube_user("bob"))] {
        let r = put_as(
            &b,
            CF,
            &put("tr-c1"),
            provision(Some(&ns_a), "kubernetes", params.clone()),
            id.as_deref(),
        )
        .await;
        assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    }
    let alice = kube_user("alice");
    let r = as_platform(
        CF,
        Method::PUT,
        &put("tr-c1"),
        Some(provision(Some(&ns_a), "kubernetes", params.clone())),
        Some(&alice),
    );
    let done = run(&b, r, CF).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);

    // Binds: provider-osb's empty username is fine for its own credential,
    // not for the checked one.
    let empty = kube_user("");
    let bind_uri = "/v2/service_instances/tr-x1/service_bindings/tr-xb?accepts_incomplete=true";
    let r = put_as(&b, CF, bind_uri, bind_body(), Some(&empty)).await;
    assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    let r = as_platform(XP, Method::PUT, bind_uri, Some(bind_body()), Some(&empty));
    let done = run(&b, r, XP).await;
    assert!(
        done.status == StatusCode::CREATED || done.json["state"] == "succeeded",
        "{}",
        done.text
    );

    // Each credential's deprovision poll: 410 for the platform that waits
    // for it, 200 `succeeded` for the other.
    let r = as_platform(
        XP,
        Method::DELETE,
        "/v2/service_instances/tr-x1/service_bindings/tr-xb?service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f&accepts_incomplete=true",
        None,
        Some(&empty),
    );
    let done = run(&b, r, XP).await;
    assert!(
        done.status == StatusCode::OK || done.status == StatusCode::GONE,
        "{}",
        done.text
    );
    let del = |id: &str| {
        format!(
            "/v2/service_instances/{id}?service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f&accepts_incomplete=true"
        )
    };
    let done = run(
        &b,
        as_platform(XP, Method::DELETE, &del("tr-x1"), None, Some(&empty)),
        XP,
    )
    .await;
    assert_osb_error(&done, StatusCode::GONE, None);
    let done = run(
        &b,
        as_platform(CF, Method::DELETE, &del("tr-c1"), None, Some(&alice)),
        CF,
    )
    .await;
    assert_delete_done(&done);
    for id in ["tr-x1", "tr-c1"] {
        let path = format!("/api/v1/namespaces/{ns_a}/configmaps/cb-{id}");
        k.wait_gone(&path, std::time::Duration::from_secs(60)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_relabelling_does_not_skip_the_user_check() {
    let k = Cluster::admin().await;
    let ns = k.namespace("relabel").await;
    k.default_release_identity(&ns);
    k.grant_user(&ns, "alice");
    let b = cluster_broker(&k, &[]).await;
    let put = "/v2/service_instances/relabel-1?accepts_incomplete=true";
    let params = json!({"database": "shop"});
    let cf_user = identity("cloudfoundry", json!({"user_id": "alice"}));
    // Whatever the request calls its platform, the identity-required
    // credential's request is checked: no identity, another platform's
    // identity, an empty Kubernetes user name, a user without rights.
    let cases: Vec<(Value, Option<String>)> = vec![
        (provision(Some(&ns), "cloudfoundry", params.clone()), None),
        (provision(None, "", params.clone()), None),
        (
            provision(Some(&ns), "cloudfoundry", params.clone()),
            Some(cf_user.clone()),
        ),
        (provision(None, "", params.clone()), Some(cf_user)),
        (
            provision(Some(&ns), "sapbtp", params.clone()),
            Some(kube_user("")),
        ),
        (
            provision(Some(&ns), "cloudfoundry", params.clone()),
            Some(kube_user("bob")),
        ),
    ];
    for (body, id) in cases {
        let r = put_as(&b, CF, put, body.clone(), id.as_deref()).await;
        assert_osb_error(&r, StatusCode::FORBIDDEN, Some("Forbidden"));
    }
    assert_nothing_recorded(&b, CF, "relabel-1").await;
    assert!(
        !k.has(&format!("/api/v1/namespaces/{ns}/configmaps/cb-relabel-1"))
            .await
    );
    // The same relabelled request with a user RBAC allows goes through:
    // it was checked, not skipped.
    let r = as_platform(
        CF,
        Method::PUT,
        put,
        Some(provision(Some(&ns), "cloudfoundry", params)),
        Some(&kube_user("alice")),
    );
    let done = run(&b, r, CF).await;
    assert_eq!(done.json["state"], "succeeded", "{}", done.text);
    let r = as_platform(
        CF,
        Method::DELETE,
        "/v2/service_instances/relabel-1?service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f&accepts_incomplete=true",
        None,
        Some(&kube_user("bob")),
    );
    assert_osb_error(&b.send(r).await, StatusCode::FORBIDDEN, Some("Forbidden"));
}

/// The trust is reloaded with the files, like the credentials: a platforms
/// file (what a chart renders into a ConfigMap) narrows a credential's
/// namespaces without a restart, and a broken one keeps the trust in force.
#[tokio::test]
async fn the_platforms_file_is_reloaded() {
    let data = tempfile::tempdir().unwrap();
    let mut cfg = platform_config(data.path());
    cfg.credentials_file = Some(write_credentials(data.path(), &["apps", "other"]));
    let platforms = data.path().join("platforms.yaml");
    let write = |text: &str| {
        let tmp = platforms.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &platforms).unwrap();
    };
    write(&format!(
        "platforms:\n  - name: {}\n    namespaces: [apps]\n",
        XP.0
    ));
    cfg.platforms_file = Some(platforms.clone());
    let b = TestBroker::with_config(data, cfg).await;
    let put = |id: &str, ns: &str| {
        as_platform(
            XP,
            Method::PUT,
            &format!("/v2/service_instances/{id}"),
            Some(provision(
                Some(ns),
                "kubernetes",
                json!({"database": "shop"}),
            )),
            None,
        )
    };
    // The platforms file wins over the credentials file's [apps, other].
    assert_only(&b, put("rl-1", "apps"), put("rl-2", "other")).await;

    let reloader = b.runtime.reloader(None);
    write(&format!(
        "platforms:\n  - name: {}\n    namespaces: [other]\n",
        XP.0
    ));
    assert!(
        reloader
            .reload(chartbroker::reload::What::Credentials)
            .await
    );
    assert_only(&b, put("rl-2", "other"), put("rl-3", "apps")).await;

    // A broken file (unknown field, wrong value) changes nothing.
    for broken in [
        format!("platforms:\n  - name: {}\n    namespace: [apps]\n", XP.0),
        format!("platforms:\n  - name: {}\n    identity: nobody\n", XP.0),
        format!(
            "platforms:\n  - name: {}\n    namespaces: [\"Not A Name\"]\n",
            XP.0
        ),
    ] {
        write(&broken);
        assert!(
            !reloader
                .reload(chartbroker::reload::What::Credentials)
                .await
        );
        assert_osb_error(
            &b.send(put("rl-3", "apps")).await,
            StatusCode::FORBIDDEN,
            Some("Forbidden"),
        );
    }
}
