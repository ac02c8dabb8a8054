//! Scheduling the next attempt of a failed delivery. The delay lives in JetStream, never in
//! process memory: the next attempt is published to a unique subject
//! `<p>.retry.<sub>.<event>.<attempt>` with `Nats-Schedule: @at <due>` and
//! `Nats-Schedule-Target: <p>.deliver.<sub>`; the server fires it onto the delivery subject when
//! due (and after a restart, at once if overdue). The caller acks the failed attempt only after
//! this publish is acknowledged.

use std::time::Duration;

use async_nats::HeaderMap;
use time::OffsetDateTime;

use super::Transient;
use super::headers::{self, AttemptState};
use crate::config::RetryConfig;
use crate::context::Ctx;
use crate::event::Delivery;

/// Delay before attempt `next` (2-based: attempt 1 is never delayed by a retry), spread by
/// `jitter` using `unit` in `[0, 1)`, and at least the (capped) `Retry-After`.
pub fn delay_before(
    config: &RetryConfig,
    next: u32,
    retry_after: Option<Duration>,
    unit: f64,
) -> Duration {
    let index = (next as usize).saturating_sub(1).min(config.schedule.len().saturating_sub(1));
    let base = config.schedule.get(index).copied().unwrap_or_default();
    let spread = 1.0 + config.jitter * (2.0 * unit - 1.0);
    let jittered = base.mul_f64(spread.max(0.0));
    match retry_after {
        Some(asked) => jittered.max(asked.min(config.max_retry_after)),
        None => jittered,
    }
}

/// Whether another attempt remains after attempt `attempt`.
pub fn has_attempts_left(config: &RetryConfig, attempt: u32) -> bool {
    (attempt as usize) < config.schedule.len()
}

/// Details of the failed attempt that the next one carries along.
pub struct Failure<'a> {
    pub status: Option<u16>,
    pub error: &'a str,
    pub at: OffsetDateTime,
}

/// The attempt a schedule fires: its number, how long until it is due, and the retry schedule
/// the delivery follows.
pub struct Next<'a> {
    pub attempt: u32,
    pub delay: Duration,
    pub schedule: &'a [Duration],
}

/// The headers of a message schedule that fires attempt `next` of a delivery of `sub_id` onto
/// `<p>.deliver.<sub_id>` at `due`, deduplicated by `msg_id`.
pub fn schedule_headers(
    ctx: &Ctx,
    sub_id: &str,
    due: OffsetDateTime,
    msg_id: &str,
    next: u32,
    first_attempt_at: OffsetDateTime,
    failure: &Failure<'_>,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Nats-Schedule", format!("@at {}", headers::rfc3339(due)).as_str());
    h.insert("Nats-Schedule-Target", ctx.names.deliver(sub_id).as_str());
    h.insert("Nats-Msg-Id", msg_id);
    h.insert(headers::ATTEMPT, next.to_string().as_str());
    h.insert(headers::FIRST_ATTEMPT_AT, headers::rfc3339(first_attempt_at).as_str());
    h.insert(headers::LAST_ATTEMPT_AT, headers::rfc3339(failure.at).as_str());
    h.insert(headers::LAST_ERROR, headers::sanitize(failure.error).as_str());
    if let Some(status) = failure.status {
        h.insert(headers::LAST_STATUS, status.to_string().as_str());
    }
    h
}

/// Publishes attempt `next.attempt` (`state.attempt + 1` after a failure; `state.attempt` again for a
/// backpressure deferral, which uses no attempt) as a message schedule due after `next.delay`;
/// returns when JetStream has stored it. `msg_id` (unique per message the attempt came from:
/// `retry.<stream sequence>`, or `<event>.<subscription>` for a first attempt made by the
/// fan-out) makes the publish idempotent if this step is repeated after a crash. `next.schedule` is the one
/// this delivery follows; the message carries it, so the pending retry keeps it.
#[tracing::instrument(level = "debug", skip_all, fields(event_id = %delivery.event.event_id, subscription_id = %delivery.subscription_id, next_attempt = next.attempt))]
pub async fn schedule(
    ctx: &Ctx,
    delivery: &Delivery,
    state: &AttemptState,
    failure: &Failure<'_>,
    msg_id: &str,
    next: Next<'_>,
) -> Result<OffsetDateTime, Transient> {
    let Next { attempt: next, delay, schedule } = next;
    let sub_id = &delivery.subscription_id;
    let due = OffsetDateTime::now_utc() + delay;
    let mut h = schedule_headers(ctx, sub_id, due, msg_id, next, state.first_attempt_at, failure);
    if let Some(replay) = &state.replay_id {
        h.insert(headers::REPLAY_ID, replay.as_str());
    }
    if let Some(from) = state.redelivered_from {
        h.insert(headers::REDELIVERED_FROM, from.to_string().as_str());
    }
    h.insert(headers::RETRY_SCHEDULE, headers::schedule_value(schedule).as_str());
    if let Some(trace) = &state.trace {
        trace.insert_into(&mut h);
    }
    let subject = ctx.names.retry(sub_id, &delivery.event.event_id, next);
    let ack = ctx
        .js
        .publish_with_headers(subject.clone(), h, delivery.to_bytes().into())
        .await
        .map_err(|e| Transient::nats(format!("publishing retry to {subject}"), e))?;
    ack.await.map_err(|e| Transient::nats(format!("awaiting ack of retry {subject}"), e))?;
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(jitter: f64) -> RetryConfig {
        RetryConfig {
            schedule: [0, 5, 300, 1800].into_iter().map(Duration::from_secs).collect(),
            jitter,
            max_retry_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn delays_follow_the_schedule_without_jitter() {
        let c = config(0.0);
        assert_eq!(delay_before(&c, 2, None, 0.9), Duration::from_secs(5));
        assert_eq!(delay_before(&c, 3, None, 0.1), Duration::from_secs(300));
        assert_eq!(delay_before(&c, 4, None, 0.5), Duration::from_secs(1800));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let c = config(0.2);
        assert_eq!(delay_before(&c, 3, None, 0.0), Duration::from_secs(240));
        assert_eq!(delay_before(&c, 3, None, 0.5), Duration::from_secs(300));
        let high = delay_before(&c, 3, None, 0.999_999);
        assert!(high > Duration::from_secs(359) && high < Duration::from_secs(360), "{high:?}");
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let c = config(0.0);
        assert_eq!(
            delay_before(&c, 2, Some(Duration::from_secs(60)), 0.5),
            Duration::from_secs(60)
        );
        assert_eq!(delay_before(&c, 2, Some(Duration::from_secs(1)), 0.5), Duration::from_secs(5));
        assert_eq!(
            delay_before(&c, 2, Some(Duration::from_secs(86_400)), 0.5),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn attempts_run_out_after_the_schedule() {
        let c = config(0.0);
        assert!(has_attempts_left(&c, 1));
        assert!(has_attempts_left(&c, 3));
        assert!(!has_attempts_left(&c, 4));
    }
}
