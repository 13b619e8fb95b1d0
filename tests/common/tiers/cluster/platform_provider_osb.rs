//! Helpers of the tests in tests/cluster/platform_provider_osb.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::cluster::{BrokerIdentity, Cluster, chart_template, secret_value};
use common::*;
use serde_json::{Value, json};

pub const ORG: &str = "2b6b0b8e-5d0a-4c1e-9a39-0f4f3c1d2e11";
pub const SPACE: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
pub const BINDING: &str = "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716";
pub const PASSWORD: &str = "provider-osb-password-0123";
/// Reconcile passes before the test gives up: the provider polls every few
/// seconds and would go on forever; here a stuck lifecycle fails.
pub const PASSES: usize = 600;

/// The objects the chart renders for provider-osb, as (registration,
/// platforms file text).
pub fn chart_objects(ns: &str) -> (Value, String) {
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
pub struct Status {
    pub state: Option<String>,
    pub operation: Option<String>,
}

/// Counts of what the client sent, to check it settled.
#[derive(Default, Debug)]
pub struct Sent {
    pub provisions: usize,
    pub updates: usize,
    pub deletes: usize,
}

pub struct ProviderOsb<'a> {
    pub broker: &'a TestBroker,
    pub authorization: String,
    pub version: String,
    pub id: String,
    pub ns: String,
    pub params: Value,
    pub status: Status,
    pub sent: Sent,
}

pub enum Observed {
    Missing,
    Stale,
    Current,
}

impl ProviderOsb<'_> {
    pub fn request(
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
            let header = format!("kubernetes {}", b64_encode(&v.to_string()));
            h.insert("x-broker-api-originating-identity", header.parse().unwrap());
        }
        r
    }

    /// Its spec's context as it sends it (camelCase keys, not the OSB
    /// profile's `clusterid`/`instance_name`).
    pub fn context(&self) -> Value {
        json!({"platform": "kubernetes", "namespace": self.ns,
            "clusterId": "8a3c1f0e-2b4d-4e6f-9a1b-3c5d7e9f1a2b", "instanceName": "shop-db"})
    }

    pub fn path(&self) -> String {
        format!("/v2/service_instances/{}", self.id)
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        identity: bool,
    ) -> Resp {
        self.broker
            .send(self.request(method, uri, body, identity))
            .await
    }

    pub fn pending(&mut self, r: &Resp, state: &str) {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        self.status.state = Some(state.into());
        self.status.operation = r.json["operation"].as_str().map(str::to_string);
    }

    pub async fn observe(&mut self, deleting: bool) -> Observed {
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
    pub async fn reconcile(&mut self, deleting: bool) -> bool {
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

    pub async fn converge(&mut self, deleting: bool) {
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
    pub async fn bind(&self, binding: &str) -> BTreeMap<String, Vec<u8>> {
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
    pub async fn unbind(&self, binding: &str) {
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

pub async fn broker_for(k: &Cluster, identity: &BrokerIdentity, ns: &str) -> (TestBroker, Value) {
    let (registration, platforms) = chart_objects(ns);
    // The credentials Secret, as the registration's comment says to make it.
    let secret_ref = &registration["spec"]["credentials"]["secretRef"];
    let secret_ns = k.namespace("crossplane").await;
    let user = "osb-crossplane";
    let creds = b64_encode(&json!({"user": user, "password": PASSWORD}).to_string());
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
