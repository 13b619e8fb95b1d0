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

mod common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use common::cluster::{BrokerIdentity, Cluster, chart_template, secret_value};
use common::*;
use serde_json::{Value, json};

const ORG: &str = "2b6b0b8e-5d0a-4c1e-9a39-0f4f3c1d2e11";
const SPACE: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const BINDING: &str = "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716";
const PASSWORD: &str = "provider-osb-password-0123";
/// Reconcile passes before the test gives up: the provider polls every few
/// seconds and would go on forever; here a stuck lifecycle fails.
const PASSES: usize = 600;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The objects the chart renders for provider-osb, as (registration,
/// platforms file text).
fn chart_objects(ns: &str) -> (Value, String) {
    let values = json!({"registration": {"providerOsb": {"enabled": true, "namespaces": [ns]}}});
    let reg = chart_template(
        "chartbroker-system",
        &values,
        &["registration-provider-osb.yaml"],
    );
    let reg: Value = serde_saphyr::from_str(&reg).unwrap();
    let cm = chart_template("chartbroker-system", &values, &["platforms.yaml"]);
    let cm: Value = serde_saphyr::from_str(&cm).unwrap();
    (
        reg,
        cm["data"]["platforms.yaml"].as_str().unwrap().to_string(),
    )
}

/// What provider-osb's ServiceInstance status keeps.
#[derive(Default)]
struct Status {
    state: Option<String>,
    operation: Option<String>,
}

/// Counts of what the client sent, to check it settled.
#[derive(Default, Debug)]
struct Sent {
    provisions: usize,
    updates: usize,
    deletes: usize,
}

struct ProviderOsb<'a> {
    broker: &'a TestBroker,
    authorization: String,
    version: String,
    id: String,
    ns: String,
    params: Value,
    status: Status,
    sent: Sent,
}

enum Observed {
    Missing,
    Stale,
    Current,
}

impl ProviderOsb<'_> {
    fn request(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        identity: bool,
    ) -> Request<Body> {
        let mut r = req(method, uri, body);
        let h = r.headers_mut();
        h.insert("authorization", self.authorization.parse().unwrap());
        h.insert("x-broker-api-version", self.version.parse().unwrap());
        if identity {
            // Impersonate.UserName and UID unset: empty, groups null.
            let v = json!({"username": "", "uid": "", "groups": null});
            let header = format!("kubernetes {}", b64(&v.to_string()));
            h.insert("x-broker-api-originating-identity", header.parse().unwrap());
        }
        r
    }

    /// Its spec's context as it sends it (camelCase keys, not the OSB
    /// profile's `clusterid`/`instance_name`).
    fn context(&self) -> Value {
        json!({"platform": "kubernetes", "namespace": self.ns,
            "clusterId": "8a3c1f0e-2b4d-4e6f-9a1b-3c5d7e9f1a2b", "instanceName": "shop-db"})
    }

    fn path(&self) -> String {
        format!("/v2/service_instances/{}", self.id)
    }

    async fn send(&self, method: Method, uri: &str, body: Option<Value>, identity: bool) -> Resp {
        self.broker
            .send(self.request(method, uri, body, identity))
            .await
    }

    fn pending(&mut self, r: &Resp, state: &str) {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        self.status.state = Some(state.into());
        self.status.operation = r.json["operation"].as_str().map(str::to_string);
    }

    async fn observe(&mut self, deleting: bool) -> Observed {
        let pending = matches!(
            self.status.state.as_deref(),
            Some("in progress" | "deleting")
        );
        if pending {
            let mut uri = format!(
                "{}/last_operation?service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f",
                self.path()
            );
            if let Some(op) = &self.status.operation {
                uri.push_str(&format!("&operation={op}"));
            }
            let r = self.send(Method::GET, &uri, None, true).await;
            if r.status == StatusCode::NOT_FOUND || r.status == StatusCode::GONE {
                return Observed::Missing;
            }
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            self.status.state = r.json["state"].as_str().map(str::to_string);
            return Observed::Current;
        }
        // Being deleted and nothing pending: "exists", without asking.
        if deleting {
            return Observed::Current;
        }
        let r = self.send(Method::GET, &self.path(), None, false).await;
        if r.status == StatusCode::NOT_FOUND || r.status == StatusCode::GONE {
            return Observed::Missing;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.json["parameters"] == self.params {
            Observed::Current
        } else {
            Observed::Stale
        }
    }

    /// One pass of Crossplane's managed reconciler; true once the resource
    /// is where it should be (Synced and Ready, or deleted).
    async fn reconcile(&mut self, deleting: bool) -> bool {
        let observed = self.observe(deleting).await;
        let settled = self.status.state.as_deref() == Some("succeeded");
        match (deleting, observed) {
            (true, Observed::Missing) => return true,
            // Crossplane calls Delete on every pass while the resource
            // exists, pending delete or not.
            (true, _) => {
                self.sent.deletes += 1;
                let uri = format!(
                    "{}?service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f&accepts_incomplete=true",
                    self.path()
                );
                let r = self.send(Method::DELETE, &uri, None, true).await;
                if r.status != StatusCode::GONE && r.status != StatusCode::NOT_FOUND {
                    self.pending(&r, "deleting");
                }
            }
            (false, Observed::Missing) => {
                self.sent.provisions += 1;
                let body = json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f",
                    "organization_guid": ORG, "space_guid": SPACE,
                    "context": self.context(),
                    "parameters": self.params});
                let uri = format!("{}?accepts_incomplete=true", self.path());
                let r = self.send(Method::PUT, &uri, Some(body), false).await;
                self.pending(&r, "in progress");
            }
            (false, Observed::Stale) => {
                self.sent.updates += 1;
                let body = json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f",
                    "context": self.context(),
                    "parameters": self.params});
                let uri = format!("{}?accepts_incomplete=true", self.path());
                let r = self.send(Method::PATCH, &uri, Some(body), true).await;
                self.pending(&r, "in progress");
            }
            (false, Observed::Current) => return settled || self.status.state.is_none(),
        }
        false
    }

    async fn converge(&mut self, deleting: bool) {
        for _ in 0..PASSES {
            if self.reconcile(deleting).await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!(
            "provider-osb did not settle (deleting: {deleting}, state {:?}, sent {:?})",
            self.status.state, self.sent
        );
    }

    /// Binds, waits, fetches the binding and returns its connection details
    /// as provider-osb writes them (each value JSON-encoded).
    async fn bind(&self, binding: &str) -> BTreeMap<String, Vec<u8>> {
        let uri = format!("{}/service_bindings/{binding}", self.path());
        let body = json!({"service_id": "svc-platform", "plan_id": "3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f",
            "bind_resource": {"app_guid": "8d1f2a4e-3b5c-4d6e-8f90-a1b2c3d4e5f6"}});
        let r = self
            .send(
                Method::PUT,
                &format!("{uri}?accepts_incomplete=true"),
                Some(body),
                true,
            )
            .await;
        if r.status == StatusCode::ACCEPTED {
            let op = r.json["operation"].as_str().unwrap_or_default().to_string();
            let poll = format!("{uri}/last_operation?operation={op}");
            for _ in 0..PASSES {
                let r = self.send(Method::GET, &poll, None, true).await;
                if r.json["state"] != "in progress" {
                    assert_eq!(r.json["state"], "succeeded", "{}", r.text);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        } else {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
        let r = self.send(Method::GET, &uri, None, true).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json["credentials"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_vec(v).unwrap()))
            .collect()
    }

    /// Unbinds until the binding is gone (404/410 from its poll or its
    /// DELETE, or 200 `succeeded`, which provider-osb's binding controller
    /// accepts).
    async fn unbind(&self, binding: &str) {
        let uri = format!("{}/service_bindings/{binding}", self.path());
        let del = format!(
            "{uri}?service_id=svc-platform&plan_id=3f1e2d4c-5b6a-4978-8e9f-0a1b2c3d4e5f&accepts_incomplete=true"
        );
        let r = self.send(Method::DELETE, &del, None, true).await;
        if r.status != StatusCode::ACCEPTED {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            return;
        }
        let op = r.json["operation"].as_str().unwrap_or_default().to_string();
        let poll = format!("{uri}/last_operation?operation={op}");
        for _ in 0..PASSES {
            let r = self.send(Method::GET, &poll, None, true).await;
            if r.status == StatusCode::GONE || r.json["state"] == "succeeded" {
                return;
            }
            assert_eq!(r.json["state"], "in progress", "{}", r.text);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("unbind of {binding} did not finish");
    }
}

async fn broker_for(k: &Cluster, identity: &BrokerIdentity, ns: &str) -> (TestBroker, Value) {
    let (registration, platforms) = chart_objects(ns);
    // The credentials Secret, as the registration's comment says to make it.
    let secret_ref = &registration["spec"]["credentials"]["secretRef"];
    let secret_ns = k.namespace("crossplane").await;
    let user = "osb-crossplane";
    let creds = b64(&json!({"user": user, "password": PASSWORD}).to_string());
    k.create(
        &format!("/api/v1/namespaces/{secret_ns}/secrets"),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_ref["name"], "namespace": secret_ns},
            "stringData": {secret_ref["key"].as_str().unwrap(): creds}}),
    )
    .await;
    let secret = k
        .get(&format!(
            "/api/v1/namespaces/{secret_ns}/secrets/{}",
            secret_ref["name"].as_str().unwrap()
        ))
        .await
        .unwrap();
    let broker = TestBroker::on_cluster(identity, |dir, cfg| {
        cfg.catalog_dir = fixtures().join("catalog-platform");
        let creds_file = dir.join("credentials.yaml");
        std::fs::write(
            &creds_file,
            format!("users:\n  - username: {user}\n    password: {PASSWORD}\n"),
        )
        .unwrap();
        cfg.credentials_file = Some(creds_file);
        let platforms_file = dir.join("platforms.yaml");
        std::fs::write(&platforms_file, &platforms).unwrap();
        cfg.platforms_file = Some(platforms_file);
        assert!(cfg.subject_access_review, "SubjectAccessReviews stay on");
    })
    .await;
    let key = secret_ref["key"].as_str().unwrap();
    (
        broker,
        json!({"registration": registration, "secret": secret_value(&secret, key)}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_osb_drives_the_whole_lifecycle_with_the_chart_settings() {
    let k = Cluster::admin().await;
    let identity = k.install_broker(false).await;
    let ns = k.namespace("xp").await;
    k.grant_target(&identity, &ns);
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
