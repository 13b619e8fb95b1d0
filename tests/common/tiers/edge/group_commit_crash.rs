//! Helpers of edge/group_commit_crash.rs.

use crate::common;
use common::process::{Served, http, osb, serve};
use common::{helm_bin, repo};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

pub const MYSQL: &str = "a0f5bc72-baad-493b-bc23-a1955f509a90";

pub const BASIC: &str = "d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1";

pub const NAMESPACE: &str = "crash";

pub const PROVISIONS: usize = 16;

pub const BINDS: usize = 16;

pub const ROUNDS: usize = 3;

pub async fn start(data: &Path) -> Served {
    serve(
        &repo().join("catalog"),
        &repo().join("charts"),
        data,
        &helm_bin(),
        &[],
    )
    .await
}

pub fn provision_body() -> Value {
    json!({"service_id": MYSQL, "plan_id": BASIC,
        "context": {"platform": "kubernetes", "namespace": NAMESPACE}})
}

/// One request of the storm and what came back (None: no answer before
/// the broker died).
pub struct Sent {
    instance: String,
    binding: Option<String>,
    answer: Option<(u16, Value)>,
}

impl Sent {
    fn what(&self) -> String {
        match &self.binding {
            Some(b) => format!("bind {}/{b}", self.instance),
            None => format!("provision {}", self.instance),
        }
    }

    fn last_operation_url(&self, base: &str) -> String {
        let mut url = format!("{base}/v2/service_instances/{}", self.instance);
        if let Some(b) = &self.binding {
            url.push_str(&format!("/service_bindings/{b}"));
        }
        url.push_str("/last_operation");
        if let Some(op) = self
            .answer
            .as_ref()
            .and_then(|(_, body)| body["operation"].as_str())
        {
            url.push_str(&format!("?operation={op}"));
        }
        url
    }
}

/// Polls a `last_operation` until it leaves "in progress": Some(state), or
/// None when the broker does not know the resource (404).
pub async fn settle(url: &str, what: &str) -> Option<String> {
    for _ in 0..600 {
        let (status, body) = osb(Method::GET, url.to_string(), None).await;
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{what}: last_operation {body}");
        let state = body["state"].as_str().unwrap_or_default();
        if state != "in progress" {
            return Some(state.to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never settled");
}

/// Provisions `ids` and waits until each is ready (the binds' instances).
pub async fn provision_ready(url: &str, ids: &[String]) {
    for id in ids {
        let (status, body) = osb(
            Method::PUT,
            format!("{url}/v2/service_instances/{id}?accepts_incomplete=true"),
            Some(provision_body()),
        )
        .await;
        assert!(
            matches!(status, 201 | 202),
            "provision {id}: {status} {body}"
        );
        let op = body["operation"].as_str().unwrap_or_default();
        let poll = format!("{url}/v2/service_instances/{id}/last_operation?operation={op}");
        assert_eq!(settle(&poll, id).await.as_deref(), Some("succeeded"));
    }
}

/// Fires every provision and bind of `round` at once and SIGKILLs the
/// broker as soon as a third of them were answered, while the rest are in
/// flight. Returns each request with its answer, if it got one.
pub async fn storm(broker: &mut Served, round: usize, bound: &[String]) -> Vec<Sent> {
    let mut requests = Vec::new();
    for i in 0..PROVISIONS {
        let instance = format!("gc-{round}-{i}");
        let url = format!(
            "{}/v2/service_instances/{instance}?accepts_incomplete=true",
            broker.url
        );
        requests.push((instance, None, url, provision_body()));
    }
    for i in 0..BINDS {
        let instance = bound[i % bound.len()].clone();
        let binding = format!("gb-{round}-{i}");
        let url = format!(
            "{}/v2/service_instances/{instance}/service_bindings/{binding}",
            broker.url
        );
        let body = json!({"service_id": MYSQL, "plan_id": BASIC});
        requests.push((instance, Some(binding), url, body));
    }
    let total = requests.len();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (instance, binding, url, body) in requests {
        let tx = tx.clone();
        tokio::spawn(async move {
            let answer = http(Method::PUT, url, Some(body)).await;
            let _ = tx.send(Sent {
                instance,
                binding,
                answer,
            });
        });
    }
    drop(tx);
    let mut sent = Vec::new();
    let mut killed = false;
    while let Some(s) = rx.recv().await {
        sent.push(s);
        let answered = sent.iter().filter(|s| s.answer.is_some()).count();
        if !killed && answered * 3 >= total {
            broker.kill_9();
            killed = true;
        }
    }
    assert!(killed, "the broker was killed mid-storm");
    sent
}

/// Whether the request's effect is really there: the instance's manifests
/// rendered and readable, or the binding's credentials.
pub async fn really_done(s: &Sent, base: &str, data: &Path) -> bool {
    match &s.binding {
        None => {
            let manifests = data.join(format!(
                "render/{NAMESPACE}/cb-{}/manifests.yaml",
                s.instance
            ));
            let url = format!("{base}/v2/service_instances/{}", s.instance);
            let (status, _) = osb(Method::GET, url, None).await;
            manifests.is_file() && status == 200
        }
        Some(b) => {
            let url = format!(
                "{base}/v2/service_instances/{}/service_bindings/{b}",
                s.instance
            );
            let (status, body) = osb(Method::GET, url, None).await;
            status == 200
                && body["credentials"]
                    .as_object()
                    .is_some_and(|c| !c.is_empty())
        }
    }
}

/// Checks every request of a storm against the restarted broker; returns
/// (answered, unanswered-but-done, unanswered-and-absent).
pub async fn check(sent: &[Sent], base: &str, data: &Path) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for s in sent {
        let what = s.what();
        if let Some((status, body)) = &s.answer {
            assert!((200..300).contains(status), "{what}: {status} {body}");
        }
        let state = settle(&s.last_operation_url(base), &what).await;
        match (&s.answer, state.as_deref()) {
            (Some(_), Some("succeeded")) | (None, Some("succeeded")) => {
                assert!(
                    really_done(s, base, data).await,
                    "{what} is reported succeeded but did not happen"
                );
                if s.answer.is_some() {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
            (Some(_), other) => panic!("{what} was acknowledged, then {other:?} after a restart"),
            (None, Some(other)) => panic!("{what} (never answered) ended {other}"),
            (None, None) => {
                let rendered = data.join(format!("render/{NAMESPACE}/cb-{}", s.instance));
                assert!(
                    s.binding.is_some() || !rendered.exists(),
                    "{what} is unknown but left {}",
                    rendered.display()
                );
                counts.2 += 1;
            }
        }
    }
    counts
}
