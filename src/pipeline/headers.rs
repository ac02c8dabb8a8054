//! Header names of deliveries, retries and DLQ entries, and the attempt state they carry.
//!
//! Attempt state travels with the message (never in process memory), so any hookline process
//! can pick up any attempt, and a DLQ entry explains itself.

use async_nats::HeaderMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Number of the attempt this message is (1-based).
pub const ATTEMPT: &str = "Hookline-Attempt";
/// When attempt 1 was made.
pub const FIRST_ATTEMPT_AT: &str = "Hookline-First-Attempt-At";
/// When the latest attempt was made.
pub const LAST_ATTEMPT_AT: &str = "Hookline-Last-Attempt-At";
/// Error of the latest failed attempt.
pub const LAST_ERROR: &str = "Hookline-Last-Error";
/// HTTP status of the latest failed attempt (absent when no response came).
pub const LAST_STATUS: &str = "Hookline-Last-Status";
/// DLQ: machine-readable reason (`retries_exhausted`, `invalid_json`, ...).
pub const REASON: &str = "Hookline-Reason";
/// DLQ: human-readable detail of the reason.
pub const REASON_DETAIL: &str = "Hookline-Reason-Detail";
/// DLQ: attempts made.
pub const ATTEMPTS: &str = "Hookline-Attempts";
/// DLQ: subject the message was taken from.
pub const ORIGINAL_SUBJECT: &str = "Hookline-Original-Subject";
/// DLQ: event id and type, for listing without parsing bodies.
pub const EVENT_ID: &str = "Hookline-Event-Id";
pub const EVENT_TYPE: &str = "Hookline-Event-Type";
/// Set on a delivery re-queued from the DLQ: the DLQ sequence it came from (carried on by its
/// retries, so its own DLQ entry is told apart from the one it came from).
pub const REDELIVERED_FROM: &str = "Hookline-Redelivered-From";
/// Set on a replayed delivery: the replay's id, which gives it its own inbox dedupe key (a
/// replay is meant to reach an endpoint that already has the event).
pub const REPLAY_ID: &str = "Hookline-Replay-Id";

/// Set on every scheduled retry and deferral: the retry schedule the delivery started with, as
/// comma-separated milliseconds, so a pending retry keeps it when the subscription's
/// `retry_schedule` (or `retry.schedule`) changes meanwhile.
pub const RETRY_SCHEDULE: &str = "Hookline-Retry-Schedule";

/// The [`RETRY_SCHEDULE`] header value of `schedule`.
pub fn schedule_value(schedule: &[std::time::Duration]) -> String {
    let ms: Vec<String> = schedule.iter().map(|d| d.as_millis().to_string()).collect();
    ms.join(",")
}

/// A [`RETRY_SCHEDULE`] header value read back; `None` when garbled or out of bounds.
pub fn parse_schedule(value: &str) -> Option<Vec<std::time::Duration>> {
    let schedule: Vec<std::time::Duration> = value
        .split(',')
        .map(|ms| ms.trim().parse().ok().map(std::time::Duration::from_millis))
        .collect::<Option<_>>()?;
    (1..=crate::config::MAX_ATTEMPTS).contains(&schedule.len()).then_some(schedule)
}

/// RFC 3339 text of a time.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Attempt state read from a delivery's headers.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptState {
    /// The attempt this message is.
    pub attempt: u32,
    /// When the first attempt was made (now, for attempt 1).
    pub first_attempt_at: OffsetDateTime,
    /// Replay this delivery belongs to, if any.
    pub replay_id: Option<String>,
    /// The DLQ entry this delivery was re-queued from, if any.
    pub redelivered_from: Option<u64>,
    /// The retry schedule it started with (a scheduled retry or deferral carries it); `None`
    /// on a first attempt: the subscription's then applies.
    pub schedule: Option<Vec<std::time::Duration>>,
    /// The W3C trace context it carries (`traceparent`, `tracestate`), if any and valid.
    pub trace: Option<crate::trace_context::TraceContext>,
}

impl AttemptState {
    /// Reads the state; missing or garbled headers mean a first attempt.
    pub fn from_headers(headers: Option<&HeaderMap>, now: OffsetDateTime) -> AttemptState {
        let get = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str().to_string());
        let attempt = get(ATTEMPT).and_then(|v| v.parse().ok()).filter(|n| *n >= 1).unwrap_or(1);
        let first_attempt_at = get(FIRST_ATTEMPT_AT)
            .and_then(|v| OffsetDateTime::parse(&v, &Rfc3339).ok())
            .unwrap_or(now);
        let replay_id = get(REPLAY_ID).filter(|v| crate::event::valid_event_id(v));
        let redelivered_from = get(REDELIVERED_FROM).and_then(|v| v.parse().ok());
        let schedule = get(RETRY_SCHEDULE).and_then(|v| parse_schedule(&v));
        let trace = crate::trace_context::TraceContext::from_nats(headers);
        AttemptState { attempt, first_attempt_at, replay_id, redelivered_from, schedule, trace }
    }
}

/// Makes a header-safe value: no CR/LF, bounded length.
pub fn sanitize(value: &str) -> String {
    let mut out: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if out.len() > 512 {
        let mut end = 512;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_headers_mean_first_attempt() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            AttemptState::from_headers(None, now),
            AttemptState {
                attempt: 1,
                first_attempt_at: now,
                replay_id: None,
                redelivered_from: None,
                schedule: None,
                trace: None,
            }
        );
    }

    #[test]
    fn headers_are_read_back() {
        let mut h = HeaderMap::new();
        h.insert(ATTEMPT, "3");
        h.insert(FIRST_ATTEMPT_AT, "2024-01-02T03:04:05Z");
        h.insert(REDELIVERED_FROM, "17");
        let s = AttemptState::from_headers(Some(&h), OffsetDateTime::now_utc());
        assert_eq!(s.attempt, 3);
        assert_eq!(rfc3339(s.first_attempt_at), "2024-01-02T03:04:05Z");
        assert_eq!(s.redelivered_from, Some(17));
    }

    #[test]
    fn a_carried_schedule_reads_back_and_a_garbled_one_is_ignored() {
        let schedule = [0, 1500, 60_000].map(std::time::Duration::from_millis).to_vec();
        assert_eq!(parse_schedule(&schedule_value(&schedule)), Some(schedule));
        for bad in ["", "1,x", "-1", "1,,2"] {
            assert_eq!(parse_schedule(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sanitize_strips_newlines_and_bounds_length() {
        assert_eq!(sanitize("a\r\nb"), "a  b");
        assert_eq!(sanitize(&"é".repeat(600)).len(), 512);
    }
}
