//! In-process per-endpoint permits, in front of the cross-process Redis leases.
//!
//! Without them every delivery beyond an endpoint's in-flight limit would be deferred through a
//! message schedule and come back a moment later: for a fast endpoint with a deep backlog that
//! churn costs far more than the deliveries (measured: 10x fewer deliveries/s). So a delivery
//! may wait here, briefly, for a local permit — but only while the endpoint is returning
//! permits (one came back in the last [`BUSY_AFTER`]): waiting holds a consumer slot, and a slow
//! or dead endpoint must not collect them. Such an endpoint's excess deliveries are deferred at
//! once, so it ties up at most its in-flight limit of the process's slots (and none once its
//! breaker opens). Waiters per endpoint are capped at its limit, and each wait is bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, LazyLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `last_release` of an endpoint that has not returned a permit yet.
const NEVER: u64 = u64::MAX;

/// An endpoint that returned no permit for this long counts as busy: nobody waits for it.
pub const BUSY_AFTER: Duration = Duration::from_millis(100);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

struct Slot {
    limit: u32,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    last_release: Arc<AtomicU64>,
}

/// A held permit; returning it marks the endpoint as moving.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    last_release: Arc<AtomicU64>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.last_release.store(now_ms(), Ordering::SeqCst);
    }
}

/// Per-endpoint semaphores of this process.
#[derive(Default)]
pub struct LocalLimits {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Decrements the waiter count on every exit path.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LocalLimits {
    fn slot(&self, endpoint: &str, limit: u32) -> (Arc<Semaphore>, Arc<AtomicUsize>, Arc<AtomicU64>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(endpoint.to_string()).or_insert_with(|| Slot {
            limit,
            permits: Arc::new(Semaphore::new(limit as usize)),
            waiting: Arc::new(AtomicUsize::new(0)),
            // Busy until it has returned a permit: a new endpoint earns waiting by answering.
            last_release: Arc::new(AtomicU64::new(NEVER)),
        });
        if slot.limit != limit {
            // The limit changed: new permits; requests holding old ones finish undisturbed.
            slot.limit = limit;
            slot.permits = Arc::new(Semaphore::new(limit as usize));
        }
        (slot.permits.clone(), slot.waiting.clone(), slot.last_release.clone())
    }

    /// A permit for `endpoint` (at most `limit` at once in this process), waiting up to
    /// `max_wait` while the endpoint is moving; `None` when it is busy, too many already wait,
    /// or the wait ran out.
    pub async fn acquire(&self, endpoint: &str, limit: u32, max_wait: Duration) -> Option<Permit> {
        let (permits, waiting, last_release) = self.slot(endpoint, limit.max(1));
        let permit = |p| Permit { _permit: p, last_release: last_release.clone() };
        if let Ok(p) = permits.clone().try_acquire_owned() {
            return Some(permit(p));
        }
        let last = last_release.load(Ordering::SeqCst);
        if last == NEVER || now_ms().saturating_sub(last) > BUSY_AFTER.as_millis() as u64 {
            return None;
        }
        if waiting.fetch_add(1, Ordering::SeqCst) >= limit as usize {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let _waiting = Waiting(waiting);
        let p = tokio::time::timeout(max_wait, permits.acquire_owned()).await.ok()?.ok()?;
        Some(permit(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_are_bounded_and_waiters_capped() {
        let limits = LocalLimits::default();
        let a = limits.acquire("e", 1, Duration::from_millis(10)).await;
        assert!(a.is_some());
        // The single permit is taken and the endpoint has not answered yet: turned away.
        assert!(limits.acquire("e", 1, Duration::from_millis(10)).await.is_none());
        drop(a);
        assert!(limits.acquire("e", 1, Duration::from_millis(10)).await.is_some());
        // Other endpoints are independent.
        let _b = limits.acquire("e", 1, Duration::from_millis(10)).await.unwrap();
        assert!(limits.acquire("other", 1, Duration::from_millis(10)).await.is_some());
    }

    #[tokio::test]
    async fn a_released_permit_wakes_a_waiter() {
        let limits = Arc::new(LocalLimits::default());
        drop(limits.acquire("e", 1, Duration::from_millis(10)).await); // the endpoint is moving
        let held = limits.acquire("e", 1, Duration::from_millis(10)).await.unwrap();
        let l = limits.clone();
        let waiter = tokio::spawn(async move { l.acquire("e", 1, Duration::from_secs(5)).await.is_some() });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn nobody_waits_for_an_endpoint_that_returns_no_permits() {
        let limits = LocalLimits::default();
        let _held = limits.acquire("slow", 1, Duration::from_millis(10)).await.unwrap();
        // Let BUSY_AFTER pass with the only permit held (as a hanging request would).
        let deadline = Instant::now() + BUSY_AFTER + Duration::from_millis(20);
        while Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        assert!(limits.acquire("slow", 1, Duration::from_secs(2)).await.is_none());
        assert!(started.elapsed() < Duration::from_millis(500), "turned away without waiting");
    }

    #[tokio::test]
    async fn too_many_waiters_are_turned_away_at_once() {
        let limits = Arc::new(LocalLimits::default());
        drop(limits.acquire("e", 1, Duration::from_millis(10)).await); // the endpoint is moving
        let _held = limits.acquire("e", 1, Duration::from_millis(10)).await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..1 {
            let l = limits.clone();
            waiters.push(tokio::spawn(async move { l.acquire("e", 1, Duration::from_secs(2)).await.is_some() }));
        }
        // Let both waiters register.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert!(limits.acquire("e", 1, Duration::from_secs(2)).await.is_none());
        assert!(started.elapsed() < Duration::from_millis(500), "the third waiter did not wait");
        for w in waiters {
            w.abort();
        }
    }
}
