//! The live feed: delivery attempts as they happen, within the caller's scope, and a summary of
//! each second. It reads the attempt subjects over core NATS (the records the attempt log
//! stores, as they are published): nothing is stored, acknowledged or replayed, so a feed costs
//! the delivery path nothing and a reader that goes away leaves nothing behind.
//!
//! Bounded for a person: at most [`MAX_ATTEMPTS_PER_SECOND`] attempts are passed on each second
//! (the rest are counted in the next summary as `dropped`), while the summaries count every
//! attempt seen. Latency percentiles are over the attempts that made a request (succeeded and
//! failed) in that second.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::Serialize;
use time::OffsetDateTime;

use super::{BackendError, Ops, OpsError, Scope};
use crate::attempt_log::{AttemptRecord, AttemptStatus};
use crate::ids::SubscriptionId;

/// Attempts passed on per second at most; the rest are only counted.
pub const MAX_ATTEMPTS_PER_SECOND: u32 = 50;

/// Durations kept per second for the percentiles (the first ones of the second).
const MAX_SAMPLES: usize = 20_000;

/// What to follow.
#[derive(Debug, Clone, Default)]
pub struct LiveRequest {
    /// Only this subscription (default: every one the scope sees).
    pub subscription_id: Option<SubscriptionId>,
    /// Pass on only attempts that did not succeed (the summaries still count all).
    pub failures_only: bool,
}

/// One second of attempts, as the feed saw them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiveTick {
    /// End of the second.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub succeeded: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub deferred: u64,
    /// Skipped duplicates and aborted attempts.
    pub other: u64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    /// Attempts counted but not passed on (over the per-second limit).
    pub dropped: u64,
}

impl Default for LiveTick {
    fn default() -> Self {
        LiveTick {
            at: OffsetDateTime::UNIX_EPOCH,
            succeeded: 0,
            failed: 0,
            dead_lettered: 0,
            deferred: 0,
            other: 0,
            latency_p50_ms: None,
            latency_p95_ms: None,
            latency_p99_ms: None,
            dropped: 0,
        }
    }
}

/// One item of the feed.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    Attempt(Box<AttemptRecord>),
    Tick(LiveTick),
}

/// The feed: ends only when NATS closes the subscription.
pub type LiveFeed = Pin<Box<dyn Stream<Item = LiveEvent> + Send>>;

/// The current second's counts.
#[derive(Default)]
struct Window {
    tick: LiveTick,
    durations: Vec<u64>,
    passed: u32,
}

impl Window {
    fn count(&mut self, r: &AttemptRecord) {
        let t = &mut self.tick;
        match r.status {
            AttemptStatus::Succeeded => t.succeeded += 1,
            AttemptStatus::Failed => t.failed += 1,
            AttemptStatus::DeadLettered => t.dead_lettered += 1,
            AttemptStatus::Deferred => t.deferred += 1,
            AttemptStatus::SkippedDuplicate | AttemptStatus::Aborted => t.other += 1,
        }
        if matches!(r.status, AttemptStatus::Succeeded | AttemptStatus::Failed)
            && self.durations.len() < MAX_SAMPLES
        {
            self.durations.push(r.duration_ms);
        }
    }

    /// Whether one more attempt may be passed on this second (else it is counted as dropped).
    fn admit(&mut self) -> bool {
        if self.passed < MAX_ATTEMPTS_PER_SECOND {
            self.passed += 1;
            true
        } else {
            self.tick.dropped += 1;
            false
        }
    }

    fn close(&mut self) -> LiveTick {
        let mut w = std::mem::take(self);
        w.durations.sort_unstable();
        let pick = |q: f64| -> Option<u64> {
            let n = w.durations.len();
            (n > 0).then(|| w.durations[((n as f64 * q).ceil() as usize).clamp(1, n) - 1])
        };
        w.tick.latency_p50_ms = pick(0.50);
        w.tick.latency_p95_ms = pick(0.95);
        w.tick.latency_p99_ms = pick(0.99);
        w.tick.at = OffsetDateTime::now_utc();
        w.tick
    }
}

impl Ops {
    /// Follows the attempts the scope sees (of one subscription, if asked), with a summary
    /// every second. Another tenant's subscription is not found.
    pub async fn live(&self, scope: &Scope, request: LiveRequest) -> Result<LiveFeed, OpsError> {
        let subject = match &request.subscription_id {
            Some(id) => {
                self.get_subscription(scope, id).await?;
                self.names.attempts(id.as_str())
            }
            None => self.names.attempts_wildcard(),
        };
        let nats =
            self.nats.as_ref().ok_or(OpsError::Backend(BackendError::NotConnected("nats")))?;
        let sub = nats.subscribe(subject.clone()).await.map_err(|e| {
            OpsError::Backend(BackendError::Nats(format!("subscribing to {subject}: {e}")))
        })?;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.reset(); // the first summary after a whole second, not at once
        // A message of the attempts stream may hold several records (JSON Lines): the ones
        // not yet passed on wait in `queued`.
        let queued = std::collections::VecDeque::<AttemptRecord>::new();
        let state = (sub, ticks, Window::default(), scope.clone(), request.failures_only, queued);
        let feed = futures::stream::unfold(state, |mut s| async move {
            let (sub, ticks, window, scope, failures_only, queued) = &mut s;
            loop {
                while let Some(r) = queued.pop_front() {
                    if !scope.sees(r.tenant_id.as_deref()) {
                        continue;
                    }
                    window.count(&r);
                    if (*failures_only && !r.status.is_failure()) || !window.admit() {
                        continue;
                    }
                    return Some((LiveEvent::Attempt(Box::new(r)), s));
                }
                tokio::select! {
                    _ = ticks.tick() => {
                        let tick = window.close();
                        return Some((LiveEvent::Tick(tick), s));
                    }
                    msg = sub.next() => {
                        let msg = msg?;
                        queued.extend(crate::attempt_record::records_of(&msg.payload));
                    }
                }
            }
        });
        Ok(Box::pin(feed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: AttemptStatus, duration_ms: u64) -> AttemptRecord {
        AttemptRecord {
            attempt_id: "att_1".into(),
            subscription_id: "sub_1".into(),
            event_id: "evt_1".into(),
            event_type: "order.created".into(),
            tenant_id: None,
            attempt: 1,
            status,
            http_status: None,
            duration_ms,
            error: None,
            error_kind: None,
            response_body: None,
            next_retry_at: None,
            at: OffsetDateTime::UNIX_EPOCH,
            test: false,
        }
    }

    #[test]
    fn a_second_counts_every_status_and_its_percentiles_come_from_requests_only() {
        let mut w = Window::default();
        for ms in 1..=100 {
            w.count(&record(AttemptStatus::Succeeded, ms));
        }
        w.count(&record(AttemptStatus::Failed, 1000));
        w.count(&record(AttemptStatus::Deferred, 5000));
        w.count(&record(AttemptStatus::DeadLettered, 7000));
        w.count(&record(AttemptStatus::SkippedDuplicate, 9000));
        let t = w.close();
        assert_eq!(
            (t.succeeded, t.failed, t.deferred, t.dead_lettered, t.other),
            (100, 1, 1, 1, 1)
        );
        assert_eq!(t.latency_p50_ms, Some(51));
        assert_eq!(t.latency_p95_ms, Some(96));
        assert_eq!(t.latency_p99_ms, Some(100));
        let next = w.close();
        assert_eq!(next.succeeded, 0, "a summary starts the next second from zero");
        assert_eq!(next.latency_p50_ms, None, "no request, no percentile");
    }

    #[test]
    fn attempts_over_the_limit_are_counted_as_dropped_not_passed_on() {
        let mut w = Window::default();
        let passed = (0..MAX_ATTEMPTS_PER_SECOND + 7).filter(|_| w.admit()).count();
        assert_eq!(passed as u32, MAX_ATTEMPTS_PER_SECOND);
        assert_eq!(w.close().dropped, 7);
        assert!(w.admit(), "the limit is per second");
    }

    #[test]
    fn failures_are_everything_but_success_and_duplicates() {
        assert!(!AttemptStatus::Succeeded.is_failure());
        assert!(!AttemptStatus::SkippedDuplicate.is_failure());
        for s in [
            AttemptStatus::Failed,
            AttemptStatus::DeadLettered,
            AttemptStatus::Deferred,
            AttemptStatus::Aborted,
        ] {
            assert!(s.is_failure(), "{s:?}");
        }
    }
}
