//! Serving the application on a listener, with or without TLS, until a
//! shutdown signal, within the edge's limits.
//!
//! The connection loop is ours (hyper directly, not `axum::serve`) because
//! the limits live there: a client that dribbles its headers, or keeps a
//! connection open without sending a request, is cut off after
//! `header_read_timeout` (counted whenever hyper waits for a request head,
//! idle keep-alives included; [`head_deadline`] says how), and connections
//! past `max_connections` are refused with 503 and `Retry-After` at once
//! rather than left to pile up. HTTP/1.1 only: HTTP/2 has no per-connection idle
//! or header timeout in hyper, and no OSB platform needs it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::tls::{LiveTls, TlsSettings};

/// The broker's HTTP application, what this module serves.
pub use crate::osb::App;

/// What [`run`] can serve: [`App`], or any axum `Router` (tests).
pub trait Application:
    tower::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Application for S where
    S: tower::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

mod drain;
mod head_deadline;
use head_deadline::{Closed, HeadSlot, HeadTimer};

/// Limits of the HTTP edge.
#[derive(Clone, Copy, Debug)]
pub struct EdgeLimits {
    /// How long a connection may take to send a request's headers, counted
    /// from when it starts waiting for them (so also how long an idle
    /// keep-alive connection stays open), and how long a TLS handshake may
    /// take.
    pub header_read_timeout: Duration,
    /// Connections served at once; more are answered 503.
    pub max_connections: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// How long in-flight requests may finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Refusals answered at once; past them a connection over the cap is just
/// closed, so a flood can't make refusing itself expensive.
const MAX_REFUSALS: usize = 64;

/// Serves `app` on `listener` with the default [`EdgeLimits`].
pub async fn run(
    app: impl Application,
    listener: std::net::TcpListener,
    tls: Option<&TlsSettings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(app, listener, tls, EdgeLimits::default(), shutdown).await
}

/// Serves `app` on `listener` until `shutdown` completes, then drains
/// in-flight requests for up to 10 seconds. Operations still running are
/// durable and resume on the next start.
pub async fn run_with(
    app: impl Application,
    listener: std::net::TcpListener,
    tls: Option<&TlsSettings>,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = match tls {
        Some(s) => Some(Arc::new(LiveTls::new(s.clone())?)),
        None => None,
    };
    run_live(app, listener, tls, limits, shutdown).await
}

/// [`run_with`] over a TLS configuration that reloads can replace: each
/// connection is accepted with the configuration in force when it arrives.
pub async fn run_live(
    app: impl Application,
    listener: std::net::TcpListener,
    tls: Option<Arc<LiveTls>>,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let drain = drain::Drain::default();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Ok(r) = refusals.clone().try_acquire_owned() {
                let plain = tls.is_none();
                tokio::spawn(async move {
                    let _r = r;
                    refuse(tcp, plain).await;
                });
            }
            continue;
        };
        let app = app.clone();
        // Each connection's hyper gets a timer of its own: the head
        // deadline is per connection, and so is its watchdog.
        let heads = HeadSlot::new();
        let mut http = http.clone();
        http.timer(HeadTimer(heads.clone()));
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let watcher = drain.watcher();
        let handshake = limits.header_read_timeout;
        let closed = heads.clone();
        let connection = tokio::spawn(async move {
            let _slot = slot;
            let _closed = Closed(closed);
            match acceptor {
                None => serve_connection(tcp, peer, None, app, &http, watcher).await,
                Some(a) => match tokio::time::timeout(handshake, a.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let cert = client_certificate(&tls);
                        serve_connection(tls, peer, cert, app, &http, watcher).await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
        tokio::spawn(head_deadline::watch(
            heads,
            limits.header_read_timeout,
            connection.abort_handle(),
        ));
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, drain.shutdown()).await.is_err() {
        tracing::warn!("requests still running after the drain period were cut off");
    }
    Ok(())
}

/// The SHA-256 of the client certificate rustls verified (mTLS), which
/// may itself be a platform credential.
fn client_certificate(
    tls: &tokio_rustls::server::TlsStream<TcpStream>,
) -> Option<crate::osb::auth::PeerCertificate> {
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    Some(crate::osb::auth::PeerCertificate(crate::osb::auth::sha(
        leaf.as_ref(),
    )))
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    cert: Option<crate::osb::auth::PeerCertificate>,
    app: impl Application,
    http: &hyper::server::conn::http1::Builder,
    watcher: drain::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Only what a handler reads goes on the request: each extension is an
    // allocation per request (nothing reads the peer address).
    let service = tower::ServiceExt::map_request(
        app,
        move |mut req: hyper::Request<hyper::body::Incoming>| {
            if let Some(c) = cert {
                req.extensions_mut().insert(c);
            }
            req
        },
    );
    let service = hyper_util::service::TowerToHyperService::new(service);
    let conn = http.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        // Header timeouts, resets and malformed requests end here.
        tracing::debug!(%peer, error = %e, "connection closed");
    }
}

/// Answers a connection over the cap with 503 and `Retry-After`, then
/// closes it. A TLS connection is closed without an answer: a handshake
/// costs what the cap is there to save.
async fn refuse(mut tcp: TcpStream, plain: bool) {
    if !plain {
        return;
    }
    let body = r#"{"error":"TooManyConnections","description":"the broker is serving as many connections as it is configured for; retry later"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let answer = async {
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body.as_bytes()).await?;
        tcp.shutdown().await?;
        // Reading what the client sent before closing keeps the kernel from
        // answering its unread request with a reset that would destroy the
        // 503 before the client reads it.
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match tcp.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
