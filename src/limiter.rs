//! In-process per-endpoint permits, in front of the cross-process Redis leases.
//!
//! Without them every delivery beyond an endpoint's in-flight limit would be deferred through a
//! message schedule and come back a moment later: for a fast endpoint with a deep backlog that
//! churn costs far more than the deliveries (measured: 10x fewer deliveries/s). So a delivery
//! may wait here, briefly, for a local permit — but only while the endpoint has answered before
//! and its permits are moving (one came back or went out in the last [`BUSY_AFTER`]): waiting
//! holds a consumer slot, and a slow or dead endpoint must not collect them. Such an endpoint's
//! excess deliveries are deferred at once — for about a request timeout when it is *busy* (all
//! permits out, none moving), since nothing frees up sooner — so it ties up at most its
//! in-flight limit of the process's slots (and none once its breaker opens). Waiters per endpoint are capped at what the endpoint can serve within the
//! wait (`limit x max_wait / average hold time`), and each wait is bounded.
//!
//! Each endpoint also keeps a pool of the cross-process leases this process holds in Redis
//! ([`Lease`], members of the endpoint's in-flight set, see [`crate::store::health`]): a request
//! takes one from the pool with its permit and gives it back with it, so a busy endpoint's
//! deliveries take and return no lease in Redis each (measured: five of the ~14 Redis commands
//! of a delivery). A lease idle for [`LEASE_IDLE`], or too close to its expiry to cover another
//! request, is returned to Redis by the sweep ([`LocalLimits::leases_to_return`]), so another
//! process can have it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An endpoint that returned no permit for this long counts as busy: nobody waits for it.
pub const BUSY_AFTER: Duration = Duration::from_millis(500);

/// After this long without a permit of an endpoint, its recorded pace is no longer trusted.
pub const STALE_PACE: Duration = Duration::from_secs(10);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// How an endpoint is doing, as seen from its permits.
#[derive(Default)]
struct Pace {
    /// Milliseconds since `EPOCH` of the last returned permit.
    last_release: AtomicU64,
    /// Milliseconds since `EPOCH` of the last permit handed out.
    last_acquire: AtomicU64,
    /// A permit came back at least once: the endpoint answers.
    released: AtomicBool,
    /// Moving average of how long a permit is held, microseconds.
    avg_hold_us: AtomicU64,
}

struct Slot {
    limit: u32,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    pace: Arc<Pace>,
    leases: Arc<Mutex<Vec<Pooled>>>,
}

/// An in-flight lease this process holds in Redis for an endpoint: a member of its
/// `<p>:{<sub>}:inflight` set ([`crate::store::health`]), counted against the endpoint's limit
/// by every process until it is removed or expires. Pooled here and used by one request after
/// another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub member: String,
    /// When Redis drops it by itself, Unix milliseconds.
    pub expires_ms: i64,
}

/// A lease no request uses now, since `idle_since` (ms since `EPOCH`).
struct Pooled {
    lease: Lease,
    idle_since: u64,
}

/// How long a lease may sit unused in the pool before the sweep returns it to Redis.
pub const LEASE_IDLE: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pace {
    /// A permit came back or went out within [`BUSY_AFTER`] (a burst to an idle endpoint is
    /// not "busy" before its first requests had time to answer).
    fn moving(&self) -> bool {
        let last =
            self.last_release.load(Ordering::SeqCst).max(self.last_acquire.load(Ordering::SeqCst));
        now_ms().saturating_sub(last) <= BUSY_AFTER.as_millis() as u64
    }
}

/// A held permit; returning it marks the endpoint as moving and updates its pace, and puts
/// the lease its request held back in the endpoint's pool.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    pace: Arc<Pace>,
    acquired: Instant,
    leases: Arc<Mutex<Vec<Pooled>>>,
    lease: Option<Lease>,
}

impl Permit {
    /// A pooled lease of the endpoint that is valid at least until `until_ms` (Unix ms), taken
    /// out of the pool; `None` when there is none (a new one is taken in Redis).
    pub fn pooled_lease(&self, until_ms: i64) -> Option<Lease> {
        let mut pool = lock(&self.leases);
        let i = pool.iter().rposition(|p| p.lease.expires_ms >= until_ms)?;
        Some(pool.swap_remove(i).lease)
    }

    /// The request under this permit holds `lease`: it goes back to the pool with the permit.
    fn hold_lease(&mut self, lease: Lease) {
        if let Some(previous) = self.lease.replace(lease) {
            self.put_back(previous);
        }
    }

    /// Puts a lease this request does not use back in the pool at once.
    fn put_back(&self, lease: Lease) {
        lock(&self.leases).push(Pooled { lease, idle_since: now_ms() });
    }

    /// Settles one admission's leases: the request holds `admitted` (the lease the admission
    /// gave it; `None` when it was not admitted), and the pooled lease it `offered`, unless that
    /// is the one it now holds, goes back to the pool at once.
    pub fn settle_leases(&mut self, offered: Option<Lease>, admitted: Option<&Lease>) {
        let unused = match admitted {
            Some(lease) => {
                self.hold_lease(lease.clone());
                offered.filter(|o| o.member != lease.member)
            }
            None => offered,
        };
        if let Some(lease) = unused {
            self.put_back(lease);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            self.put_back(lease);
        }
        let held = self.acquired.elapsed().as_micros() as u64;
        let avg = self.pace.avg_hold_us.load(Ordering::Relaxed);
        let next = if avg == 0 { held } else { (avg * 7 + held) / 8 };
        self.pace.avg_hold_us.store(next.max(1), Ordering::Relaxed);
        self.pace.last_release.store(now_ms(), Ordering::SeqCst);
        self.pace.released.store(true, Ordering::SeqCst);
    }
}

/// Hard cap on waiters per endpoint.
const MAX_WAITERS: u64 = 4096;

/// As many waiters as the endpoint can serve within `max_wait` at its recent pace (holds
/// shorter than 1 ms count as 1 ms), at least `limit`, at most [`MAX_WAITERS`].
fn waiter_cap(limit: u32, max_wait: Duration, avg_hold_us: u64) -> usize {
    let hold_us = avg_hold_us.max(1_000);
    (u64::from(limit) * max_wait.as_micros() as u64 / hold_us).clamp(u64::from(limit), MAX_WAITERS)
        as usize
}

/// Per-endpoint semaphores of this process, and where the endpoints' breakers were last seen
/// open (a hint only: Redis decides).
#[derive(Default)]
pub struct LocalLimits {
    slots: Mutex<HashMap<String, Slot>>,
    breakers: Mutex<HashMap<String, u64>>,
    /// Pooled leases of endpoints whose limit changed, for the sweep to return.
    retired: Mutex<Vec<(String, Lease)>>,
}

/// Decrements the waiter count on every exit path.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LocalLimits {
    #[allow(clippy::type_complexity)]
    fn slot(
        &self,
        endpoint: &str,
        limit: u32,
    ) -> (Arc<Semaphore>, Arc<AtomicUsize>, Arc<Pace>, Arc<Mutex<Vec<Pooled>>>) {
        let mut slots = lock(&self.slots);
        let slot = slots.entry(endpoint.to_string()).or_insert_with(|| Slot {
            limit,
            permits: Arc::new(Semaphore::new(limit as usize)),
            waiting: Arc::new(AtomicUsize::new(0)),
            // A new endpoint earns waiting by answering.
            pace: Arc::new(Pace::default()),
            leases: Arc::default(),
        });
        if slot.limit != limit {
            // The limit changed: new permits; requests holding old ones finish undisturbed. The
            // idle leases go back to Redis, so the new limit is counted afresh there.
            slot.limit = limit;
            slot.permits = Arc::new(Semaphore::new(limit as usize));
            let idle = std::mem::take(&mut *lock(&slot.leases));
            lock(&self.retired).extend(idle.into_iter().map(|p| (endpoint.to_string(), p.lease)));
        }
        (slot.permits.clone(), slot.waiting.clone(), slot.pace.clone(), slot.leases.clone())
    }

    /// Takes out of the pools the leases to give back to Redis: idle for `idle`, or expiring
    /// before `until_ms` (Unix ms: they could not cover another request), with the endpoint of
    /// each. `(Duration::ZERO, i64::MAX)` takes every idle one (at shutdown).
    pub fn leases_to_return(&self, idle: Duration, until_ms: i64) -> Vec<(String, Lease)> {
        let mut out = std::mem::take(&mut *lock(&self.retired));
        let (now, idle) = (now_ms(), idle.as_millis() as u64);
        let slots = lock(&self.slots);
        for (endpoint, slot) in slots.iter() {
            let mut pool = lock(&slot.leases);
            let mut i = 0;
            while i < pool.len() {
                let p = &pool[i];
                if now.saturating_sub(p.idle_since) >= idle || p.lease.expires_ms < until_ms {
                    out.push((endpoint.clone(), pool.swap_remove(i).lease));
                } else {
                    i += 1;
                }
            }
        }
        out
    }

    /// The endpoint's breaker was seen open (or its probe out) for another `for_`.
    pub fn note_breaker_open(&self, endpoint: &str, for_: Duration) {
        let until = now_ms() + for_.as_millis() as u64;
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        if breakers.len() >= 10_000 {
            breakers.retain(|_, u| *u > now_ms());
        }
        breakers.insert(endpoint.to_string(), until);
    }

    /// The endpoint answered with a success (its breaker is closed now): forget it was open.
    pub fn note_breaker_closed(&self, endpoint: &str) {
        self.breakers.lock().unwrap_or_else(|p| p.into_inner()).remove(endpoint);
    }

    /// The endpoint's breaker was seen open and may still be (see [`Self::note_breaker_open`]).
    pub fn breaker_maybe_open(&self, endpoint: &str) -> bool {
        let breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        breakers.get(endpoint).is_some_and(|until| *until > now_ms())
    }

    /// Whether `endpoint` has all its permits out and returned none lately (dead, hanging or
    /// very slow): nothing frees up for it soon.
    pub fn is_busy(&self, endpoint: &str) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .get(endpoint)
            .is_some_and(|slot| slot.permits.available_permits() == 0 && !slot.pace.moving())
    }

    /// How long `endpoint` has held a permit lately (a moving average); `None` before it first
    /// answered, or when this process has not used it for [`STALE_PACE`] (what it knew is old).
    pub fn recent_hold(&self, endpoint: &str) -> Option<Duration> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let pace = &slots.get(endpoint)?.pace;
        let last =
            pace.last_release.load(Ordering::SeqCst).max(pace.last_acquire.load(Ordering::SeqCst));
        if now_ms().saturating_sub(last) > STALE_PACE.as_millis() as u64 {
            return None;
        }
        let avg = pace.avg_hold_us.load(Ordering::Relaxed);
        (avg > 0).then(|| Duration::from_micros(avg))
    }

    /// A permit for `endpoint` (at most `limit` at once in this process), waiting up to
    /// `max_wait` while the endpoint is moving; `None` when it is busy, too many already wait,
    /// or the wait ran out.
    pub async fn acquire(&self, endpoint: &str, limit: u32, max_wait: Duration) -> Option<Permit> {
        let (permits, waiting, pace, leases) = self.slot(endpoint, limit.max(1));
        let permit = |p| {
            pace.last_acquire.store(now_ms(), Ordering::SeqCst);
            Permit {
                _permit: p,
                pace: pace.clone(),
                acquired: Instant::now(),
                leases: leases.clone(),
                lease: None,
            }
        };
        if let Ok(p) = permits.clone().try_acquire_owned() {
            return Some(permit(p));
        }
        if !pace.released.load(Ordering::SeqCst) || !pace.moving() {
            return None;
        }
        let cap = waiter_cap(limit, max_wait, pace.avg_hold_us.load(Ordering::Relaxed));
        if waiting.fetch_add(1, Ordering::SeqCst) >= cap {
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
        let waiter =
            tokio::spawn(async move { l.acquire("e", 1, Duration::from_secs(5)).await.is_some() });
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
        assert!(limits.is_busy("slow"));
        assert!(!limits.is_busy("unknown"));
    }

    #[tokio::test]
    async fn a_new_endpoint_is_not_busy_before_its_first_requests_had_time_to_answer() {
        let limits = LocalLimits::default();
        let _held = limits.acquire("new", 1, Duration::from_millis(10)).await.unwrap();
        // Turned away (it has not answered yet), but not marked busy: its deferrals stay short.
        assert!(limits.acquire("new", 1, Duration::from_millis(10)).await.is_none());
        assert!(!limits.is_busy("new"));
    }

    #[test]
    fn a_breaker_seen_open_is_remembered_for_as_long_as_it_was_said_to_stay_open() {
        let limits = LocalLimits::default();
        assert!(!limits.breaker_maybe_open("e"));
        limits.note_breaker_open("e", Duration::from_secs(60));
        assert!(limits.breaker_maybe_open("e"));
        assert!(!limits.breaker_maybe_open("other"));
        limits.note_breaker_open("e", Duration::ZERO);
        assert!(!limits.breaker_maybe_open("e"));
        limits.note_breaker_open("e", Duration::from_secs(60));
        limits.note_breaker_closed("e");
        assert!(!limits.breaker_maybe_open("e"), "a success closes it at once");
    }

    fn lease(member: &str, expires_ms: i64) -> Lease {
        Lease { member: member.to_string(), expires_ms }
    }

    #[tokio::test]
    async fn a_lease_goes_back_to_its_endpoints_pool_with_the_permit_and_serves_the_next_request() {
        let limits = LocalLimits::default();
        let mut first = limits.acquire("e", 2, Duration::from_millis(10)).await.unwrap();
        assert_eq!(first.pooled_lease(0), None, "nothing pooled yet");
        first.hold_lease(lease("a", 5_000));
        drop(first);
        let mut second = limits.acquire("e", 2, Duration::from_millis(10)).await.unwrap();
        assert_eq!(second.pooled_lease(6_000), None, "expires too soon for this request");
        let reused = second.pooled_lease(4_000).expect("pooled with the first permit");
        assert_eq!(reused, lease("a", 5_000));
        second.hold_lease(reused);
        // Another endpoint has a pool of its own.
        let other = limits.acquire("other", 2, Duration::from_millis(10)).await.unwrap();
        assert_eq!(other.pooled_lease(0), None);
        // Held by a request: not idle, not returned.
        assert!(limits.leases_to_return(Duration::ZERO, 0).is_empty());
        drop(second);
        assert_eq!(
            limits.leases_to_return(Duration::ZERO, 0),
            vec![("e".to_string(), lease("a", 5_000))]
        );
        assert!(limits.leases_to_return(Duration::ZERO, i64::MAX).is_empty(), "taken out");
    }

    #[tokio::test]
    async fn an_admission_keeps_the_lease_it_used_and_puts_an_unused_pooled_one_back_at_once() {
        let limits = LocalLimits::default();
        let returned = |limits: &LocalLimits| {
            let mut members: Vec<String> = limits
                .leases_to_return(Duration::ZERO, 0)
                .into_iter()
                .map(|(_, l)| l.member)
                .collect();
            members.sort();
            members
        };
        // `returned` takes the pooled leases out, as the sweep does.
        // Admitted on the pooled lease it offered: held, nothing pooled meanwhile.
        let mut p = limits.acquire("e", 2, Duration::from_millis(10)).await.unwrap();
        p.settle_leases(Some(lease("a", 5_000)), Some(&lease("a", 5_000)));
        assert!(returned(&limits).is_empty(), "the used lease is held, not pooled");
        drop(p);
        assert_eq!(returned(&limits), ["a"], "back with the permit");
        // Admitted on a new lease: the offered one goes back at once, the new one is held.
        let mut p = limits.acquire("e", 2, Duration::from_millis(10)).await.unwrap();
        p.settle_leases(Some(lease("b", 5_000)), Some(&lease("new", 9_000)));
        assert_eq!(returned(&limits), ["b"]);
        drop(p);
        assert_eq!(returned(&limits), ["new"]);
        // Not admitted: the offered lease goes back, nothing is held.
        let mut p = limits.acquire("e", 2, Duration::from_millis(10)).await.unwrap();
        p.settle_leases(Some(lease("c", 5_000)), None);
        assert_eq!(returned(&limits), ["c"]);
        drop(p);
        assert!(returned(&limits).is_empty(), "the permit held no lease");
    }

    #[tokio::test]
    async fn leases_are_returned_when_idle_too_long_expiring_or_their_limit_changed() {
        let limits = LocalLimits::default();
        let p = limits.acquire("e", 2, Duration::from_millis(10)).await.unwrap();
        p.put_back(lease("fresh", 10_000));
        p.put_back(lease("expiring", 1_000));
        // Just put back, so not idle for an hour: only the one expiring before 2_000 goes.
        let out = limits.leases_to_return(Duration::from_secs(3600), 2_000);
        assert_eq!(out, vec![("e".to_string(), lease("expiring", 1_000))]);
        // The limit changes: the idle ones go back, so Redis counts the new limit afresh.
        drop(p);
        let _p = limits.acquire("e", 3, Duration::from_millis(10)).await.unwrap();
        let out = limits.leases_to_return(Duration::from_secs(3600), 0);
        assert_eq!(out, vec![("e".to_string(), lease("fresh", 10_000))]);
    }

    #[test]
    fn waiters_are_capped_by_what_the_endpoint_serves_within_the_wait() {
        let two_s = Duration::from_secs(2);
        assert_eq!(
            waiter_cap(16, two_s, 500_000),
            64,
            "16 permits held 0.5 s each serve 64 in 2 s"
        );
        assert_eq!(waiter_cap(16, two_s, 10_000_000), 16, "never below the limit");
        assert_eq!(waiter_cap(16, two_s, 200), 4096, "fast endpoints: capped at MAX_WAITERS");
    }
}
