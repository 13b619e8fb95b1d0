//! The HTTP edge under abuse, on a real listener with raw TCP clients: slow
//! headers and idle keep-alives are cut off, connections past the cap get
//! 503 with Retry-After, garbage requests can't grow the metrics, and a
//! synchronous operation ends at its deadline.

use crate::common;

use std::time::Duration;

use crate::helpers::edge_limits::*;
use axum::http::{Method, StatusCode};
use chartbroker::server::EdgeLimits;
use common::{TestBroker, assert_osb_error_naming, provision_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off() {
    let b = TestBroker::start().await;
    let addr = serve_short_header_timeout(&b);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = s.into_split();
    // One header byte every 100 ms, each on time, the whole never done.
    let dribble = tokio::spawn(async move {
        for i in 0.. {
            let line = format!("x-slow-{i}: y\r\n");
            for byte in line.as_bytes() {
                if wr.write_all(&[*byte]).await.is_err() {
                    return i;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        unreachable!()
    });
    let mut chunk = [0u8; 1024];
    let mut answer = Vec::new();
    let cut = tokio::time::timeout(SAFETY, async {
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    dribble.abort();
    assert!(cut, "the server kept a slow-header client for {SAFETY:?}");
    // Whatever came back, it was not a served request.
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let b = TestBroker::start().await;
    let addr = serve_short_header_timeout(&b);
    let mut conns = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let r = get_healthz(&mut s).await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        conns.push(s);
    }
    for s in &mut conns {
        assert!(
            closed_by_server(s, SAFETY).await,
            "an idle keep-alive connection stayed open for {SAFETY:?}"
        );
    }
}

#[tokio::test]
async fn a_request_served_past_the_header_timeout_is_answered_on_its_connection() {
    // The header timeout counts while a head is awaited, not while the
    // broker works on a request: a synchronous provision held at helm for
    // three times as long still gets its answer, then the connection is
    // cut once idle.
    let (b, _gate) = TestBroker::start_gated_with(|cfg| {
        cfg.sync_timeout = SHORT * 3;
    })
    .await;
    let addr = serve_short_header_timeout(&b);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = provision_body("plan-small", serde_json::json!({})).to_string();
    let head = format!(
        "PUT /v2/service_instances/held-1 HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\n\
         x-broker-api-version: 2.17\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        common::auth(),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(SAFETY, read_response(&mut s))
        .await
        .expect("an answer");
    assert!(started.elapsed() >= SHORT * 2, "answered early: {r}");
    assert!(r.starts_with("HTTP/1.1 500"), "{r}");
    assert!(r.contains("deadline"), "{r}");
    assert!(closed_by_server(&mut s, SAFETY).await);
}

#[tokio::test]
async fn connections_past_the_cap_get_503_with_retry_after() {
    let b = TestBroker::start().await;
    let cap = 4;
    let addr = serve(
        &b,
        EdgeLimits {
            header_read_timeout: Duration::from_secs(60),
            max_connections: cap,
        },
    );
    let mut held = Vec::new();
    for _ in 0..cap {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let r = get_healthz(&mut s).await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        held.push(s);
    }
    // The held connections stay usable; the one past the cap is refused.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let r = get_healthz(&mut extra).await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    let lower = r.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1\r\n"), "{r}");
    assert!(lower.contains("connection: close\r\n"), "{r}");
    assert!(r.contains(r#""description":"#), "{r}");
    assert!(closed_by_server(&mut extra, SAFETY).await);
    let r = get_healthz(&mut held[0]).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");

    // A freed slot serves the next connection (the server sees the close
    // a moment after the client makes it).
    drop(held.pop());
    let mut served = false;
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if get_healthz(&mut s).await.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a closed connection never gave its slot back");
}

#[tokio::test]
async fn garbage_requests_cannot_grow_the_metrics() {
    let b = TestBroker::start().await;
    for i in 0..400 {
        let r = uuid::Uuid::new_v4().simple().to_string();
        let method = Method::from_bytes(format!("X{}", &r[..8]).to_uppercase().as_bytes()).unwrap();
        let path = match i % 4 {
            0 => format!("/{r}"),
            1 => format!("/v2/{r}/{i}"),
            2 => format!("/v2/service_instances/{r}"),
            _ => format!("/metrics/{r}?{r}={i}"),
        };
        let header = format!("x-{r}");
        let method = if i % 5 == 0 { Method::GET } else { method };
        b.send_bare(method, &path, &[(&header, &r)], None).await;
    }
    let m = b.send_bare(Method::GET, "/metrics", &[], None).await;
    assert_eq!(m.status, StatusCode::OK);
    let series = request_series(&m.text);
    println!("{} request series after 400 garbage requests", series.len());
    // Routes x {GET, other} x the few statuses garbage earns.
    assert!(series.len() <= 12, "{}", series.join("\n"));
    assert!(
        series
            .iter()
            .all(|l| !l.contains("X") || l.contains(r#"method="other""#)),
        "{}",
        series.join("\n")
    );
    assert!(
        m.text.lines().all(|l| l.len() < 200),
        "a label carries request data"
    );
}

#[tokio::test]
async fn a_synchronous_operation_ends_at_its_deadline() {
    let (b, _gate) = TestBroker::start_gated_with(|cfg| {
        cfg.sync_timeout = Duration::from_secs(1);
    })
    .await;
    // The gate holds helm: the provision can't finish on its own.
    let r = b
        .put(
            "/v2/service_instances/slow-1",
            provision_body("plan-small", serde_json::json!({})),
        )
        .await;
    let needles = ["deadline", "--sync-timeout"];
    assert_osb_error_naming(&r, StatusCode::INTERNAL_SERVER_ERROR, &needles, "");
}

#[tokio::test]
async fn helm_calls_past_the_process_cap_queue() {
    let (b, gate) = TestBroker::start_gated_with(|cfg| {
        cfg.max_helm_processes = 1;
    })
    .await;
    let one = b
        .provision_async("q-1", "plan-small", serde_json::json!({}))
        .await;
    let two = b
        .provision_async("q-2", "plan-small", serde_json::json!({}))
        .await;
    let mut gauges = String::new();
    for _ in 0..400 {
        let m = b.send_bare(Method::GET, "/metrics", &[], None).await;
        gauges = m
            .text
            .lines()
            .filter(|l| l.starts_with("chartbroker_helm_"))
            .filter(|l| !l.contains("duration"))
            .collect::<Vec<_>>()
            .join("\n");
        if gauges.contains("chartbroker_helm_calls_waiting 1")
            && gauges.contains("chartbroker_helm_processes_running 1")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gauges.contains("chartbroker_helm_calls_waiting 1")
            && gauges.contains("chartbroker_helm_processes_running 1"),
        "{gauges}"
    );
    gate.open();
    for (id, op) in [("q-1", one), ("q-2", two)] {
        b.wait_succeeded(id, &op).await;
    }
}
