//! Graceful shutdown of the connections: on a shutdown signal each one
//! finishes the request it serves and closes (an idle one closes at once),
//! and the server waits for them all.
//!
//! hyper-util's `GracefulShutdown` does the same with a `watch` channel
//! whose `changed()` future every connection polls on every wake-up: a
//! lock of the channel's waiter list per poll, about 400 of a catalog
//! request's 21,000 instructions. Here a connection hands its task's waker
//! to the [`Drain`] once (again only if the task's waker changes) and reads
//! one flag per wake-up; the shutdown sets the flag and wakes them all.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;

use tokio::sync::Notify;

/// The connections being served, and whether they are to close.
#[derive(Clone, Default)]
pub(super) struct Drain(Arc<Shared>);

#[derive(Default)]
struct Shared {
    closing: AtomicBool,
    /// Connections accepted and not yet ended (a TLS handshake included).
    open: AtomicUsize,
    /// Wakes [`Drain::shutdown`] when the last one ends.
    idle: Notify,
    next: AtomicU64,
    /// The tasks of connections being served, by their number.
    wakers: Mutex<HashMap<u64, Waker>>,
}

/// A connection hyper serves: gracefully closable.
pub(super) trait Closable: Future {
    /// Finish what is in flight, then close.
    fn close(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> Closable for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn close(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl Drain {
    /// Counts a connection from its acceptance; it ends when the watcher
    /// is dropped.
    pub(super) fn watcher(&self) -> Watcher {
        self.0.open.fetch_add(1, Ordering::SeqCst);
        Watcher(self.0.clone())
    }

    /// Tells every connection to close once its request is answered, then
    /// waits until they all have.
    pub(super) async fn shutdown(&self) {
        self.0.closing.store(true, Ordering::SeqCst);
        for w in self.0.wakers().values() {
            w.wake_by_ref();
        }
        loop {
            let mut idle = pin!(self.0.idle.notified());
            idle.as_mut().enable();
            if self.0.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Shared {
    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waker>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One accepted connection, counted by its [`Drain`].
pub(super) struct Watcher(Arc<Shared>);

impl Watcher {
    /// Serves `conn` to its end, closing it gracefully once the drain
    /// begins (at once if it began before).
    pub(super) async fn watch<C: Closable>(self, conn: C) -> C::Output {
        let shared = &*self.0;
        let id = shared.next.fetch_add(1, Ordering::Relaxed);
        let _registered = Registered(shared, id);
        let mut conn = pin!(conn);
        let mut known: Option<Waker> = None;
        let mut closing = false;
        poll_fn(|cx| {
            if !closing {
                // Registered before the flag is read: a shutdown that set
                // it after the read finds this waker under the lock.
                if !known.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    let w = cx.waker().clone();
                    shared.wakers().insert(id, w.clone());
                    known = Some(w);
                }
                if shared.closing.load(Ordering::SeqCst) {
                    closing = true;
                    conn.as_mut().close();
                }
            }
            conn.as_mut().poll(cx)
        })
        .await
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Takes a connection's waker off the list when its serving ends.
struct Registered<'a>(&'a Shared, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.wakers().remove(&self.1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn send(c: &mut TcpStream, path: &str) {
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
    }

    /// Reads until the peer closes (or `limit`), returning what came.
    async fn read_to_close(c: &mut TcpStream, limit: Duration) -> (String, bool) {
        let mut got = Vec::new();
        let closed = tokio::time::timeout(limit, c.read_to_end(&mut got))
            .await
            .is_ok();
        (String::from_utf8_lossy(&got).into_owned(), closed)
    }

    /// Reads one whole response whose body is `body`.
    async fn read_answer(c: &mut TcpStream, body: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).ends_with(body) {
            let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            assert!(n > 0, "closed before the answer: {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test]
    async fn a_request_in_flight_is_answered_and_idle_connections_close() {
        let app = Router::new()
            .route("/fast", get(|| async { "fast" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    "slow"
                }),
            );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(super::super::run(app, listener, None, async {
            let _ = stopped.await;
        }));

        // An idle keep-alive connection, one answered request behind it.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        send(&mut idle, "/fast").await;
        assert!(
            read_answer(&mut idle, "fast")
                .await
                .starts_with("HTTP/1.1 200")
        );
        // A connection that has not sent anything yet.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // A request in flight when the signal comes.
        let mut busy = TcpStream::connect(addr).await.unwrap();
        send(&mut busy, "/slow").await;
        tokio::time::sleep(Duration::from_millis(150)).await;

        stop.send(()).unwrap();
        // Closed well before the drain's 10 s would cut them off.
        let (rest, closed) = read_to_close(&mut idle, Duration::from_secs(3)).await;
        assert!(closed && rest.is_empty(), "idle: {rest:?}");
        let (rest, closed) = read_to_close(&mut silent, Duration::from_secs(3)).await;
        assert!(closed && rest.is_empty(), "silent: {rest:?}");

        let answer = read_answer(&mut busy, "slow").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let (rest, closed) = read_to_close(&mut busy, Duration::from_secs(3)).await;
        assert!(
            closed && rest.is_empty(),
            "the busy one closes after its answer: {rest:?}"
        );

        tokio::time::timeout(Duration::from_secs(3), server)
            .await
            .expect("the server ends once its connections have")
            .unwrap()
            .unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }
}
