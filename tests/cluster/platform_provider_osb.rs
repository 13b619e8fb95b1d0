//! Crossplane's provider-osb, as it behaves (github.com/orange-cloudfoundry/
//! provider-osb at 071ec47, read from its source and seen running against
//! this broker), drives the whole lifecycle against a broker configured
//! with the chart's `registration.providerOsb` settings, on the helm engine
//! and the real API server.
//!
//! The client below reproduces what matters of its controllers:
//! - it logs in with the credentials its ClusterProviderConfig names: a
//!   Secret key holding base64 of `{"user": …, "password": …}`;
//! - no originating identity on provisions, an identity with an empty
//!   username on everything else; UUID instance, plan, organization and
//!   space ids (its CRD's patterns); its context with camelCase keys;
//! - Observe: while an operation is pending it polls `last_operation`; a
//!   404/410 there means the instance does not exist (the only way a
//!   delete completes); any 200 replaces its state (so a 200 `succeeded`
//!   after a delete makes it forget the delete). Else, once the resource is
//!   being deleted, it reports "exists" without asking, and Crossplane
//!   calls Delete again (a DELETE answered 410 changes nothing). Otherwise
//!   it fetches the instance: 404/410 means create, parameters that differ
//!   from its spec (exact comparison) mean update, with the whole spec
//!   PATCHed;
//! - connection details are each credential JSON-encoded.

use crate::common;

use crate::helpers::platform_provider_osb::*;
use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::cluster::{Cluster, secret_value};
use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_osb_drives_the_whole_lifecycle_with_the_chart_settings() {
    let k = Cluster::admin().await;
    let (identity, ns) = k.broker_and_target("xp").await;
    let (broker, setup) = broker_for(&k, &identity, &ns).await;
    // The provider reads its ClusterProviderConfig and credentials Secret.
    let reg = &setup["registration"];
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(setup["secret"].as_str().unwrap())
        .unwrap();
    let login: Value = serde_json::from_slice(&decoded).unwrap();
    let mut xp = ProviderOsb {
        broker: &broker,
        authorization: basic(
            login["user"].as_str().unwrap(),
            login["password"].as_str().unwrap(),
        ),
        version: reg["spec"]["osbVersion"].as_str().unwrap().to_string(),
        id: "0f8e6c2a-4b1d-4e3f-9a7b-5c6d7e8f9a0b".into(),
        ns: ns.clone(),
        params: json!({"database": "shop"}),
        status: Status::default(),
        sent: Sent::default(),
    };
    let release = format!("cb-{}", xp.id);
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps/{release}");

    // Provisioned without an identity, then in sync: the plan's default
    // (replicas: 1) reached the chart, and no PATCH came back for it.
    xp.converge(false).await;
    assert_eq!(
        (xp.sent.provisions, xp.sent.updates),
        (1, 0),
        "{:?}",
        xp.sent
    );
    let cm = k.get(&cm_path).await.expect("the release's ConfigMap");
    assert_eq!(cm["data"]["replicas"], "1");
    assert_eq!(k.helm_history(&ns, &release).len(), 1);
    for _ in 0..3 {
        assert!(xp.reconcile(false).await, "stays in sync");
    }
    assert_eq!(xp.sent.updates, 0);

    // A binding with credentials; the connection details are JSON-encoded.
    let details = xp.bind(BINDING).await;
    let delivered = format!("/api/v1/namespaces/{ns}/secrets/cb-bind-{BINDING}");
    assert!(
        k.get(&delivered).await.is_some(),
        "the binding Secret is delivered"
    );
    let decode = |k: &str| serde_json::from_slice::<Value>(&details[k]).unwrap();
    assert_eq!(decode("database"), "shop");
    let chart_secret = k
        .get(&format!("/api/v1/namespaces/{ns}/secrets/{release}"))
        .await
        .unwrap();
    assert_eq!(
        decode("password").as_str(),
        secret_value(&chart_secret, "password").as_deref()
    );

    // The spec changes; provider-osb PATCHes all of it (the creation-only
    // `database` too): applied as helm revision 2, then in sync again.
    xp.params = json!({"database": "shop", "message": "hi", "replicas": 2});
    xp.converge(false).await;
    assert_eq!(xp.sent.updates, 1, "{:?}", xp.sent);
    assert_eq!(k.helm_history(&ns, &release).len(), 2);
    let cm = k.get(&cm_path).await.unwrap();
    assert_eq!(cm["data"]["replicas"], "2");
    assert_eq!(cm["data"]["message"], "shop: hi");
    for _ in 0..3 {
        assert!(xp.reconcile(false).await, "stays in sync after the update");
    }
    assert_eq!(xp.sent.updates, 1);

    // Unbind, then delete: the delete completes (one DELETE, its poll ends
    // in 410) and nothing is left anywhere.
    xp.unbind(BINDING).await;
    let binding_uri = format!("{}/service_bindings/{BINDING}", xp.path());
    let r = xp.send(Method::GET, &binding_uri, None, true).await;
    assert!(
        r.status == StatusCode::NOT_FOUND || r.status == StatusCode::GONE,
        "{}",
        r.text
    );
    assert!(
        k.get(&delivered).await.is_none(),
        "the binding Secret is gone"
    );
    xp.converge(true).await;
    k.wait_gone(&cm_path, std::time::Duration::from_secs(60))
        .await;
    assert!(
        common::cluster::release_records(&k, &ns, &release)
            .await
            .is_empty()
    );
    let left: Vec<_> = k
        .list(&format!("/api/v1/namespaces/{ns}/secrets"))
        .await
        .into_iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
        .filter(|n| n.starts_with("cb-") || n.starts_with("sh.helm"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let r = xp.send(Method::GET, &xp.path(), None, false).await;
    assert!(
        r.status == StatusCode::NOT_FOUND || r.status == StatusCode::GONE,
        "{}",
        r.text
    );
}
