//! Requests the way a Kubernetes platform sends them: with an originating
//! identity, and asynchronous operations followed to their end.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{Resp, TestBroker, req};

/// The `kubernetes` originating identity of `user` (group `tenants`).
pub fn identity(user: &str) -> String {
    let v = json!({"username": user, "uid": format!("uid-{user}"), "groups": ["tenants"]});
    format!(
        "kubernetes {}",
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    )
}

impl TestBroker {
    /// An authenticated OSB request on behalf of `user`.
    pub async fn call_as(
        &self,
        user: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut r: Request<Body> = req(method, uri, body);
        r.headers_mut().insert(
            "x-broker-api-originating-identity",
            identity(user).parse().unwrap(),
        );
        self.send(r).await
    }

    /// Sends a request on behalf of `user` that must answer 202, and waits
    /// for its operation to end.
    pub async fn run_as(&self, user: &str, method: Method, uri: &str, body: Option<Value>) -> Resp {
        let r = self.call_as(user, method, uri, body).await;
        self.finish(uri, r).await
    }

    /// Sends a request without an identity that must answer 202, and waits
    /// for its operation to end.
    pub async fn run(&self, method: Method, uri: &str, body: Option<Value>) -> Resp {
        let r = self.call(method, uri, body).await;
        self.finish(uri, r).await
    }

    /// Polls the `last_operation` of the instance or binding at `uri` for the
    /// operation `accepted` names, until it leaves `in progress`. Real helm
    /// against a real API server on a shared machine: the bound is generous.
    pub async fn finish(&self, uri: &str, accepted: Resp) -> Resp {
        assert_eq!(
            accepted.status,
            StatusCode::ACCEPTED,
            "{uri}: {}",
            accepted.text
        );
        let op = accepted.json["operation"]
            .as_str()
            .expect("202 carries an operation");
        let path = uri.split('?').next().unwrap();
        let uri = format!("{path}/last_operation?operation={op}");
        for _ in 0..1200 {
            let r = self.call(Method::GET, &uri, None).await;
            if r.status != StatusCode::OK || r.json["state"] != "in progress" {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{uri} still in progress after 120 s");
    }
}
