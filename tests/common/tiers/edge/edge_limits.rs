//! Helpers of the tests in tests/edge/edge_limits.rs
//! (helpers live under tests/common: tests/README.md).

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use chartbroker::server::{EdgeLimits, run_with};
use common::TestBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `b`'s application on a fresh local port with `limits`.
pub fn serve(b: &TestBroker, limits: EdgeLimits) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = b.runtime.app();
    tokio::spawn(async move {
        run_with(app, listener, None, limits, std::future::pending())
            .await
            .unwrap();
    });
    addr
}

/// [`serve`] with a [`SHORT`] header read timeout, other limits default.
pub fn serve_short_header_timeout(b: &TestBroker) -> SocketAddr {
    serve(
        b,
        EdgeLimits {
            header_read_timeout: SHORT,
            ..EdgeLimits::default()
        },
    )
}

/// Sends one `GET /healthz` on `s` and reads the response head and body
/// (the body is small and has a Content-Length).
pub async fn get_healthz(s: &mut TcpStream) -> String {
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    read_response(s).await
}

pub async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a whole response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
    }
}

/// Reads until the server closes `s` (EOF or reset); false if it is still
/// open after `limit`, a bound far above the configured timeouts that only
/// stops a broken test from hanging.
pub async fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let drain = async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, drain).await.is_ok()
}

pub const SHORT: Duration = Duration::from_secs(1);
pub const SAFETY: Duration = Duration::from_secs(20);

/// Counts the `http_requests` series in the exposition.
pub fn request_series(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        .filter(|l| l.starts_with("chartbroker_http_requests_total{"))
        .collect()
}
