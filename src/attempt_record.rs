//! What one delivery attempt came to, as the attempt log stores it and stats count it: the
//! record ([`AttemptRecord`]), its status ([`AttemptStatus`]) and the class of a failure
//! ([`FailureKind`]). Plain data with no I/O, below both the step that makes the attempt
//! ([`crate::pipeline::http_post`] classifies, [`crate::pipeline::deliver`] decides) and the
//! modules that store and count it ([`crate::attempt_log`], [`crate::stats`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Succeeded,
    Failed,
    DeadLettered,
    SkippedDuplicate,
    /// Backpressure (429): rescheduled without using an attempt.
    Deferred,
    /// The receiver answered `webhook-delivery: abort-message`: no more retries.
    Aborted,
}

impl AttemptStatus {
    /// Every status, in the order messages list them.
    pub const ALL: [AttemptStatus; 6] = [
        Self::Succeeded,
        Self::Failed,
        Self::DeadLettered,
        Self::SkippedDuplicate,
        Self::Deferred,
        Self::Aborted,
    ];

    /// The name used in records, queries and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::DeadLettered => "dead_lettered",
            AttemptStatus::SkippedDuplicate => "skipped_duplicate",
            AttemptStatus::Deferred => "deferred",
            AttemptStatus::Aborted => "aborted",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<AttemptStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// What "failures only" shows (the live feed, `hookline tail --failures`): everything but a
    /// success and a duplicate that needed no request.
    pub fn is_failure(self) -> bool {
        !matches!(self, AttemptStatus::Succeeded | AttemptStatus::SkippedDuplicate)
    }
}

/// The class of a failed attempt (for stats and metrics).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Timeout,
    Connect,
    Dns,
    Tls,
    Redirect,
    #[serde(rename = "4xx")]
    Client4xx,
    #[serde(rename = "5xx")]
    Server5xx,
    /// Refused by the egress policy (SSRF protection): no connection was made.
    Blocked,
    Other,
}

impl FailureKind {
    /// The name in records, stats and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::Dns => "dns",
            FailureKind::Tls => "tls",
            FailureKind::Redirect => "3xx",
            FailureKind::Client4xx => "4xx",
            FailureKind::Server5xx => "5xx",
            FailureKind::Blocked => "blocked",
            FailureKind::Other => "other",
        }
    }

    /// Every kind, for stats.
    pub const ALL: [FailureKind; 9] = [
        FailureKind::Timeout,
        FailureKind::Connect,
        FailureKind::Dns,
        FailureKind::Tls,
        FailureKind::Redirect,
        FailureKind::Client4xx,
        FailureKind::Server5xx,
        FailureKind::Blocked,
        FailureKind::Other,
    ];

    /// The class of a non-2xx response.
    pub fn of_status(status: u16) -> FailureKind {
        match status {
            300..=399 => FailureKind::Redirect,
            400..=499 => FailureKind::Client4xx,
            500..=599 => FailureKind::Server5xx,
            _ => FailureKind::Other,
        }
    }
}

/// One attempt, as stored and as published to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptRecord {
    pub attempt_id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// 1-based attempt number.
    pub attempt: u32,
    pub status: AttemptStatus,
    pub http_status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Class of the failure: timeout, connect, dns, tls, 3xx, 4xx, 5xx, other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<FailureKind>,
    /// First 1 KiB of the response body.
    pub response_body: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_retry_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// A test event's attempt (`POST /v1/subscriptions/{id}/test`): never retried, not counted
    /// in the statistics.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Positions per message of the attempts stream: a record's position is its message's stream
/// sequence times this, plus its index in the message (so a message holds at most this many).
pub const SLOTS: u64 = 1024;

/// The position of the `index`th record of the message at stream sequence `seq`: what the
/// query indexes hold and what a page's cursor is. Positions order records as they were
/// written.
pub fn position(seq: u64, index: usize) -> u64 {
    seq * SLOTS + index as u64
}

/// The records of one message of the attempts stream: JSON Lines, one record per line, one or
/// more records of one subscription (a single record is one JSON object, as before batching).
/// Reading stops at the first line that is not a record.
pub fn records_of(payload: &[u8]) -> impl Iterator<Item = AttemptRecord> + '_ {
    serde_json::Deserializer::from_slice(payload).into_iter::<AttemptRecord>().map_while(Result::ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [
            AttemptStatus::Succeeded,
            AttemptStatus::Failed,
            AttemptStatus::DeadLettered,
            AttemptStatus::SkippedDuplicate,
        ] {
            assert_eq!(AttemptStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert_eq!(AttemptStatus::parse("nope"), None);
    }

    fn record(n: u32) -> AttemptRecord {
        AttemptRecord {
            attempt_id: format!("att_{n}"),
            subscription_id: "sub_1".into(),
            event_id: format!("evt_{n}"),
            event_type: "order.created".into(),
            tenant_id: None,
            attempt: n,
            status: AttemptStatus::Succeeded,
            http_status: Some(204),
            duration_ms: 1,
            error: None,
            error_kind: None,
            response_body: Some("line one\nline two".into()),
            next_retry_at: None,
            at: OffsetDateTime::UNIX_EPOCH,
            test: false,
        }
    }

    #[test]
    fn a_message_holds_one_record_or_json_lines_of_several() {
        let one = serde_json::to_vec(&record(1)).unwrap();
        let ids = |p: &[u8]| records_of(p).map(|r| r.attempt_id).collect::<Vec<_>>();
        assert_eq!(ids(&one), ["att_1"]);
        let mut lines = one.clone();
        for n in 2..=3 {
            lines.push(b'\n');
            lines.extend(serde_json::to_vec(&record(n)).unwrap());
        }
        assert_eq!(ids(&lines), ["att_1", "att_2", "att_3"]);
        // Reading stops at a line that is not a record, keeping the ones before it.
        lines.extend(b"\nnot json");
        assert_eq!(ids(&lines), ["att_1", "att_2", "att_3"]);
        assert_eq!(ids(b"garbage"), Vec::<String>::new());
    }

    #[test]
    fn positions_order_records_by_message_then_index() {
        assert!(position(7, 0) > position(6, (SLOTS - 1) as usize));
        assert_eq!((position(7, 3) / SLOTS, position(7, 3) % SLOTS), (7, 3));
    }
}
