//! Helpers of the tests in tests/adapters/upstream_faults.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use common::upstream as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::TestBroker;
use support::*;

// === the fault proxy ===

/// What the proxy does to a matching request.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Forward, then answer only after this long.
    Delay(Duration),
    /// Forward, then answer this status (with an OSB error body).
    Status(u16),
    /// Answer this status without forwarding.
    Refuse(u16),
    /// Forward, then answer the upstream's status with a garbage body.
    Garbage,
    /// Forward, then close the connection without answering.
    Drop,
}

/// (method, path, fault applied) of every request the proxy saw.
pub type Seen = Vec<(String, String, Option<Fault>)>;

pub struct Rule {
    pub method: &'static str,
    pub path: String,
    pub times: usize,
    pub fault: Fault,
}

#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    pub rules: Arc<Mutex<Vec<Rule>>>,
    pub seen: Arc<Mutex<Seen>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let p = Proxy {
            url,
            rules: Arc::default(),
            seen: Arc::default(),
        };
        let (me, upstream) = (p.clone(), upstream.to_string());
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (me, upstream, client) = (me.clone(), upstream.clone(), client.clone());
                tokio::spawn(async move { me.handle(sock, &upstream, &client).await });
            }
        });
        p
    }

    /// Applies `fault` to the next `times` requests with `method` whose path
    /// (without query) is `path`.
    pub fn add(&self, method: &'static str, path: &str, times: usize, fault: Fault) {
        self.rules.lock().unwrap().push(Rule {
            method,
            path: path.to_string(),
            times,
            fault,
        });
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .count()
    }

    pub async fn handle(&self, mut sock: TcpStream, upstream: &str, client: &reqwest::Client) {
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 4096];
            let n = match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut length = 0usize;
        for l in lines.filter(|l| !l.is_empty()) {
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        let path = target.split('?').next().unwrap_or("").to_string();
        let fault = {
            let mut rules = self.rules.lock().unwrap();
            rules
                .iter_mut()
                .find(|r| r.times > 0 && r.method == method && r.path == path)
                .map(|r| {
                    r.times -= 1;
                    r.fault
                })
        };
        self.seen
            .lock()
            .unwrap()
            .push((method.clone(), path.clone(), fault));
        if let Some(Fault::Refuse(code)) = fault {
            respond(
                &mut sock,
                code,
                b"{\"description\":\"injected by the fault proxy\"}",
                None,
            )
            .await;
            return;
        }
        let mut req = client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{upstream}{target}"),
        );
        for (k, v) in &headers {
            let skip = ["host", "content-length", "connection"];
            if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(_) => return,
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.unwrap_or_default();
        match fault {
            None => respond(&mut sock, status, &bytes, retry_after.as_deref()).await,
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                respond(&mut sock, status, &bytes, None).await
            }
            Some(Fault::Status(code)) => {
                respond(
                    &mut sock,
                    code,
                    b"{\"description\":\"injected by the fault proxy\"}",
                    None,
                )
                .await
            }
            Some(Fault::Garbage) => {
                respond(&mut sock, status, b"<html>this is not json", None).await
            }
            Some(Fault::Drop) => {}
            Some(Fault::Refuse(_)) => unreachable!(),
        }
    }
}

pub async fn respond(sock: &mut TcpStream, code: u16, body: &[u8], retry_after: Option<&str>) {
    let reason = StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Whatever");
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(r) = retry_after {
        head.push_str(&format!("Retry-After: {r}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
    let _ = sock.shutdown().await;
}

// === helpers ===

pub struct Setup {
    pub cloud: Cloud,
    pub proxy: Proxy,
    pub b: TestBroker,
}

pub async fn setup(mode: &str, polls: u32, tune: impl FnOnce(&mut CatalogOpts<'_>)) -> Setup {
    let cloud = Cloud::start(mode, polls, &[]);
    let proxy = Proxy::start(&cloud.url).await;
    let mut o = CatalogOpts::new(&proxy.url);
    o.timeout = 1.0;
    tune(&mut o);
    let b = broker(&o).await;
    Setup { cloud, proxy, b }
}

impl Setup {
    /// Provisions `id` on the premium plan, which must end `failed`: the
    /// description of its last_operation.
    pub async fn provision_failed(&self, id: &str, params: Value) -> String {
        let r = provision_settled(&self.b, id, params).await;
        assert_eq!(r["state"], "failed", "{id}: {r}");
        description(&r)
    }
}

pub const INSTANCES: &str = "/v2/service_instances";

/// Provisions `id` on the premium plan and returns the settled last_operation.
pub async fn provision_settled(b: &TestBroker, id: &str, params: Value) -> Value {
    provision_and_wait(b, id, "plan-premium", params).await
}

pub fn description(v: &Value) -> String {
    let d = v["description"].as_str().unwrap_or_default().to_string();
    eprintln!("description: {d}");
    d
}

// === the delete fault matrix (README "Deleting whatever broke") ===

/// A fault of the upstream rows of the delete matrix.
#[derive(Clone, Copy, Debug)]
pub enum DeleteFault {
    /// The upstream already forgot it: its delete answers 410.
    Forgot,
    /// The upstream answers 500 to every try, then recovers.
    Errors,
    /// The upstream answers only after the broker's timeout, then recovers.
    TooSlow,
    /// The plan was removed from the catalog (reload).
    PlanRemoved,
}

/// Removes plan `plan-premium` from the broker's catalog and reloads it.
pub async fn remove_premium(b: &TestBroker) {
    let file = b.data.path().join("catalog/cloud.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(file.with_extension("yaml.orig"), &text).unwrap();
    let start = text.find("      - id: plan-premium").unwrap();
    let end = text.find("      - id: plan-business").unwrap();
    std::fs::write(&file, format!("{}{}", &text[..start], &text[end..])).unwrap();
    assert!(
        b.runtime
            .reloader(None)
            .reload(chartbroker::reload::What::Catalog)
            .await
    );
    let cat = b.call(Method::GET, "/v2/catalog", None).await;
    assert!(!cat.text.contains("plan-premium"), "{}", cat.text);
}

pub async fn restore_premium(b: &TestBroker) {
    let file = b.data.path().join("catalog/cloud.yaml");
    std::fs::rename(file.with_extension("yaml.orig"), &file).unwrap();
    assert!(
        b.runtime
            .reloader(None)
            .reload(chartbroker::reload::What::Catalog)
            .await
    );
}
