//! The broker as a separate process: its binary, a port, plain HTTP to it.

use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use super::{PASS, USER};

/// The chartbroker binary cargo built for this test run.
pub fn broker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_chartbroker")
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing
/// test leaves no broker behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An authenticated OSB request over HTTP; None when the connection fails.
pub async fn http(
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut r = reqwest::Client::new()
        .request(method, url)
        .basic_auth(USER, Some(PASS))
        .header("X-Broker-API-Version", "2.17");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.unwrap_or(Value::Null)))
}

/// Waits until the broker on `port` answers `/readyz` with 200.
pub async fn ready(port: u16) {
    for _ in 0..400 {
        let url = format!("http://127.0.0.1:{port}/readyz");
        if let Some((200, _)) = http(reqwest::Method::GET, url, None).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broker on {port} did not become ready");
}
