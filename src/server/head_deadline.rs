//! How long a connection may take to send a request head, enforced
//! without a runtime timer per request.
//!
//! hyper's `header_read_timeout` with a tokio timer boxes a tokio `Sleep`
//! each time a connection starts waiting for a request head, puts it on
//! the timer wheel, and takes it off when the head arrives; the runtime
//! then does timer work on every park. Callgrind put that at about 1,800
//! of the 21,600 instructions of a catalog request.
//!
//! Here hyper still decides when a head is awaited (it asks its timer for
//! a deadline then, and drops what it got once the head is in), but its
//! timer only writes the deadline into the connection's [`HeadSlot`]. One
//! watchdog task per connection ([`watch`]) sleeps until that deadline and
//! aborts the connection's task if hyper is still waiting for that head
//! then. While a request is served no head is awaited, so no deadline
//! runs, as with hyper's own timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// One connection's head deadline, shared by hyper's timer and the
/// watchdog.
pub(super) struct HeadSlot {
    base: Instant,
    /// The deadline in nanoseconds after `base`, plus one; 0 when no head
    /// is awaited.
    armed: AtomicU64,
    /// Set when the connection's task ends, so its watchdog ends too.
    closed: AtomicBool,
    wake: Notify,
}

impl HeadSlot {
    pub(super) fn new() -> Arc<HeadSlot> {
        Arc::new(HeadSlot {
            base: Instant::now(),
            armed: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    /// Awaits a head by `deadline`; the mark that [`HeadSleep`] clears.
    fn arm(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.base).as_nanos();
        let mark = u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1;
        self.armed.store(mark, Ordering::Release);
        mark
    }

    /// The deadline a mark stands for.
    fn at(&self, mark: u64) -> Instant {
        self.base + Duration::from_nanos(mark - 1)
    }

    fn deadline(&self) -> Option<Instant> {
        match self.armed.load(Ordering::Acquire) {
            0 => None,
            mark => Some(self.at(mark)),
        }
    }
}

/// Held by a connection's task: when the task ends, aborted or not, so
/// does its watchdog.
pub(super) struct Closed(pub(super) Arc<HeadSlot>);

impl Drop for Closed {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

/// The timer hyper is given: it arms the connection's slot.
pub(super) struct HeadTimer(pub(super) Arc<HeadSlot>);

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            mark: self.0.arm(deadline),
            slot: self.0.clone(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadSleep>() {
            Some(s) => {
                let s = s.get_mut();
                s.mark = s.slot.arm(new_deadline);
            }
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// What hyper holds while it awaits a head. It never wakes hyper: the
/// watchdog ends the connection at the deadline. Polled after it, it is
/// ready, as a sleep should be.
struct HeadSleep {
    slot: Arc<HeadSlot>,
    /// Its deadline, as armed in the slot.
    mark: u64,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.slot.at(self.mark) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl hyper::rt::Sleep for HeadSleep {}

impl Drop for HeadSleep {
    fn drop(&mut self) {
        // The head came in (or hyper gave up): no deadline, unless a later
        // arm already replaced this one.
        let _ = self
            .slot
            .armed
            .compare_exchange(self.mark, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Watches `slot` until its connection ends: aborts `connection` when a
/// head is still awaited at its deadline. Wakes once per `limit` while no
/// head is awaited.
pub(super) async fn watch(slot: Arc<HeadSlot>, limit: Duration, connection: AbortHandle) {
    let sleep = tokio::time::sleep(limit);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => {}
            () = slot.wake.notified() => {}
        }
        if slot.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        match slot.deadline() {
            Some(deadline) if deadline <= now => {
                connection.abort();
                tracing::debug!("a connection sent no request head in time; closed");
                return;
            }
            Some(deadline) => sleep.as_mut().reset(deadline.into()),
            None => sleep.as_mut().reset((now + limit).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer as _;

    #[test]
    fn a_deadline_stands_until_its_sleep_is_dropped_or_replaced() {
        let slot = HeadSlot::new();
        let timer = HeadTimer(slot.clone());
        assert_eq!(slot.deadline(), None);
        let at = Instant::now() + Duration::from_secs(10);
        let mut first = timer.sleep_until(at);
        let got = slot.deadline().unwrap();
        assert!(
            got <= at && at - got < Duration::from_micros(1),
            "{got:?} {at:?}"
        );
        // Reset in place moves the deadline; the sleep stays the same box.
        let later = at + Duration::from_secs(5);
        timer.reset(&mut first, later);
        assert!(slot.deadline().unwrap() > at);
        // A replaced sleep dropped after its successor clears nothing.
        let second = timer.sleep_until(at);
        drop(first);
        assert!(slot.deadline().is_some());
        drop(second);
        assert_eq!(slot.deadline(), None);
    }

    #[test]
    fn a_sleep_is_ready_only_past_its_deadline() {
        let slot = HeadSlot::new();
        let timer = HeadTimer(slot);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut soon = timer.sleep(Duration::from_secs(60));
        assert!(soon.as_mut().poll(&mut cx).is_pending());
        let mut past = timer.sleep_until(Instant::now());
        assert!(past.as_mut().poll(&mut cx).is_ready());
    }

    #[tokio::test]
    async fn the_watchdog_aborts_only_a_connection_late_with_its_head() {
        let limit = Duration::from_millis(200);
        // Serving a request (nothing armed) for longer than the limit.
        let slot = HeadSlot::new();
        let busy = tokio::spawn(std::future::pending::<()>());
        let dog = tokio::spawn(watch(slot.clone(), limit, busy.abort_handle()));
        tokio::time::sleep(limit * 3).await;
        assert!(!busy.is_finished());
        // Then awaiting a head past its deadline.
        let timer = HeadTimer(slot.clone());
        let _awaiting = timer.sleep(limit);
        let ended = tokio::time::timeout(Duration::from_secs(10), busy).await;
        assert!(ended.expect("aborted in time").unwrap_err().is_cancelled());
        dog.await.unwrap();

        // A connection that ends ends its watchdog.
        let slot = HeadSlot::new();
        let conn = tokio::spawn(std::future::pending::<()>());
        let dog = tokio::spawn(watch(slot.clone(), limit, conn.abort_handle()));
        drop(Closed(slot));
        tokio::time::timeout(Duration::from_secs(10), dog)
            .await
            .expect("the watchdog ended")
            .unwrap();
        assert!(!conn.is_finished());
    }
}
