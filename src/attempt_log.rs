//! The attempt log: a record per delivery attempt on the `<P>_ATTEMPTS` stream, subject
//! `<p>.attempts.<subscription_id>`, and the queries over it.
//!
//! The records double as outcome events: any plain NATS subscriber of `<p>.attempts.>` sees
//! `succeeded`, `failed`, `dead_lettered` and `skipped_duplicate` as they happen. A message
//! holds the records of one subscription that one batch wrote, as JSON Lines (a lone record is
//! one JSON object); a record's position is its message's sequence and its line
//! ([`crate::attempt_record::position`]). Queries (newest first, paginated, by subscription,
//! event, tenant or status) use small Redis sorted sets of positions (a query for all records,
//! or for successes alone, reads the stream backwards instead); entries whose record has aged
//! out of the stream are dropped lazily when a query meets them. Records are written by one
//! [`Recorder`] task per process, in batches, off the delivery path.

use std::collections::BTreeMap;

use crate::store::RedisConn;
use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use serde::Serialize;

pub use crate::attempt_record::{AttemptRecord, AttemptStatus};
use crate::attempt_record::{SLOTS, position, records_of};
use crate::subjects::Names;

/// Records kept per query index (per subscription, tenant, status, and overall).
pub const MAX_INDEXED: usize = 100_000;

/// Largest response body kept in a record.
pub const RESPONSE_BODY_LIMIT: usize = 1024;

/// The capped query indexes a record goes into (the per-event one is separate: see
/// [`write_batch`]). Successes, the bulk of the log, go into their subscription's (and
/// tenant's) index only: a query for all records or for successes alone reads the stream
/// backwards instead (see [`query`]), where nearly every record matches. Each index entry costs
/// Redis a sorted-set insert per delivery (measured: the attempt indexes were ~40 % of Redis's
/// command time before).
fn index_keys(names: &Names, r: &AttemptRecord) -> Vec<String> {
    let mut keys = vec![names.attempt_index("sub", &r.subscription_id)];
    if r.status != AttemptStatus::Succeeded {
        keys.push(names.attempt_index("status", r.status.as_str()));
    }
    if let Some(t) = &r.tenant_id {
        keys.push(names.attempt_index("tenant", t));
    }
    keys
}

/// How many records wait for the recorder at most; a full queue makes deliveries wait (bounded
/// memory, and no record is dropped).
const QUEUE: usize = 10_000;
/// Records written per batch: one message per subscription in it (JSON Lines), acks awaited
/// together, one Redis round trip for all their index and stats updates.
const BATCH: usize = 256;
/// A message of the attempts stream is cut at this size (the records of one subscription in a
/// batch go in several messages then); well under NATS's default 1 MiB payload limit.
const MESSAGE_BYTES: usize = 256 * 1024;

enum Msg {
    Record(Box<AttemptRecord>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The attempt recorder: a bounded queue and one background task per process, so recording
/// costs the delivery path a channel send instead of a task, a publish and two Redis round
/// trips of its own.
#[derive(Clone)]
pub struct Recorder {
    tx: tokio::sync::mpsc::Sender<Msg>,
}

impl Recorder {
    /// Starts the background writer (needs a Tokio runtime).
    pub fn start(
        js: jetstream::Context,
        redis: RedisConn,
        names: Names,
        retention: std::time::Duration,
    ) -> Recorder {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        tokio::spawn(run(rx, js, redis, names, retention));
        Recorder { tx }
    }

    /// Queues a record (waits only while the queue is full).
    pub async fn record(&self, r: AttemptRecord) {
        if self.tx.send(Msg::Record(Box::new(r))).await.is_err() {
            tracing::warn!("attempt recorder stopped; record lost");
        }
    }

    /// Returns once every record queued before the call is written (used at shutdown).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(
    mut rx: tokio::sync::mpsc::Receiver<Msg>,
    js: jetstream::Context,
    mut redis: RedisConn,
    names: Names,
    retention: std::time::Duration,
) {
    let mut buf = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        let mut records = Vec::with_capacity(buf.len());
        let mut flushes = Vec::new();
        for msg in buf.drain(..) {
            match msg {
                Msg::Record(r) => records.push(*r),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        write_batch(&js, &mut redis, &names, retention, records).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Encodes `records` (all of one subscription, in order) as JSON Lines messages of at most
/// [`MESSAGE_BYTES`] (a record bigger than that alone in its message) and [`SLOTS`] records.
fn encode(records: Vec<AttemptRecord>) -> Vec<(Vec<u8>, Vec<AttemptRecord>)> {
    let mut messages: Vec<(Vec<u8>, Vec<AttemptRecord>)> = Vec::new();
    for mut r in records {
        if let Some(body) = &mut r.response_body {
            truncate(body, RESPONSE_BODY_LIMIT);
        }
        let line = match serde_json::to_vec(&r) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode attempt record");
                continue;
            }
        };
        match messages.last_mut() {
            Some((payload, rs))
                if payload.len() + 1 + line.len() <= MESSAGE_BYTES && rs.len() < SLOTS as usize =>
            {
                payload.push(b'\n');
                payload.extend_from_slice(&line);
                rs.push(r);
            }
            _ => messages.push((line, vec![r])),
        }
    }
    messages
}

/// Publishes the records, one message per subscription (JSON Lines, see
/// [`crate::attempt_record::records_of`]), waits for JetStream, then indexes and counts them in
/// one Redis round trip. A failure is logged, never retried into a duplicate record.
///
/// One message per subscription and batch instead of one per record: at ten endpoints the
/// records were most of nats-server's work per delivery.
pub async fn write_batch(
    js: &jetstream::Context,
    redis: &mut RedisConn,
    names: &Names,
    retention: std::time::Duration,
    records: Vec<AttemptRecord>,
) {
    let mut by_subscription: BTreeMap<String, Vec<AttemptRecord>> = BTreeMap::new();
    for r in records {
        by_subscription.entry(r.subscription_id.clone()).or_default().push(r);
    }
    let mut pending = Vec::new();
    for (subscription_id, records) in by_subscription {
        for (payload, rs) in encode(records) {
            match js.publish(names.attempts(&subscription_id), payload.into()).await {
                Ok(ack) => pending.push((rs, ack)),
                Err(e) => tracing::warn!(
                    error = %e, subscription_id, records = rs.len(), "attempt records not published"
                ),
            }
        }
    }
    // One round trip for the batch, aggregated: one ZADD and one trim per index key, one
    // HINCRBY per stats field (not per record).
    let mut indexes: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let mut events: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let mut tally = crate::stats::Tally::default();
    let mut pipe = redis::pipe();
    let ttl = retention.as_secs().max(1) as i64;
    for (records, ack) in pending {
        let seq = match ack.await {
            Ok(ack) => ack.sequence,
            Err(e) => {
                tracing::warn!(error = %e, records = records.len(), "attempt records not stored");
                continue;
            }
        };
        for (index, r) in records.iter().enumerate() {
            let pos = position(seq, index);
            for key in index_keys(names, r) {
                indexes.entry(key).or_default().push((pos as f64, pos));
            }
            events
                .entry(names.attempt_index("event", &r.event_id))
                .or_default()
                .push((pos as f64, pos));
            tally.add(names, r);
        }
    }
    // An event has a handful of attempts: its index needs no trim, only to expire with the
    // records.
    for (key, members) in &events {
        pipe.zadd_multiple(key, members).ignore();
        pipe.expire(key, ttl).ignore();
    }
    for (key, members) in &indexes {
        pipe.zadd_multiple(key, members).ignore();
        // Bounded: the newest MAX_INDEXED per key; older records stay in the stream (and its
        // retention) but drop out of the queries.
        pipe.cmd("ZREMRANGEBYRANK").arg(key).arg(0).arg(-(MAX_INDEXED as i64) - 1).ignore();
    }
    tally.write(&mut pipe);
    if pipe.cmd_iter().next().is_none() {
        // Nothing was stored (every publish failed, e.g. NATS going away at shutdown).
        return;
    }
    if let Err(e) = pipe.query_async::<()>(redis).await {
        tracing::warn!(error = %e, "attempt records not indexed or counted");
    }
}

fn truncate(s: &mut String, limit: usize) {
    if s.len() > limit {
        let mut end = limit;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Filters of an attempt query; the most selective one picks the index.
#[derive(Debug, Clone, Default)]
pub struct AttemptQuery {
    pub subscription_id: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<AttemptStatus>,
    pub tenant_id: Option<String>,
    /// Page size (1-500).
    pub limit: usize,
    /// Cursor: only records older than this (a `next_cursor` of a previous page).
    pub before: Option<u64>,
}

/// One page, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptPage {
    pub items: Vec<AttemptRecord>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_cursor: Option<u64>,
}

/// Stream reads one query may make when it scans the stream (the rest is on the next page).
const SCAN_BUDGET: usize = 5_000;

/// Whether a record passes every filter of `q`.
fn keeps(q: &AttemptQuery, r: &AttemptRecord) -> bool {
    q.subscription_id.as_ref().is_none_or(|s| *s == r.subscription_id)
        && q.event_id.as_ref().is_none_or(|e| *e == r.event_id)
        && q.status.is_none_or(|s| s == r.status)
        && q.tenant_id.as_ref().is_none_or(|t| Some(t) == r.tenant_id.as_ref())
}

/// Runs a query against the indexes and the stream: the most selective filter's index, or,
/// with no filter but perhaps `status=succeeded`, the stream itself, newest first.
pub async fn query(
    js: &jetstream::Context,
    redis: &RedisConn,
    names: &Names,
    q: &AttemptQuery,
) -> anyhow::Result<AttemptPage> {
    let key = if let Some(e) = &q.event_id {
        names.attempt_index("event", e)
    } else if let Some(s) = &q.subscription_id {
        names.attempt_index("sub", s)
    } else if let Some(t) = &q.tenant_id {
        names.attempt_index("tenant", t)
    } else if let Some(st) = q.status.filter(|s| *s != AttemptStatus::Succeeded) {
        names.attempt_index("status", st.as_str())
    } else {
        return scan(js, names, q).await;
    };
    let limit = q.limit.clamp(1, 500);
    let stream = js.get_stream_no_info(names.attempts_stream()).await?;
    let mut redis = redis.clone();
    let mut items = Vec::new();
    let mut max = q.before.map(|b| format!("({b}")).unwrap_or_else(|| "+inf".into());
    // The message last read: consecutive positions are mostly records of one message.
    let mut message: Option<(u64, Vec<AttemptRecord>)> = None;
    loop {
        let positions: Vec<u64> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(&key)
            .arg(&max)
            .arg("-inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit * 2)
            .query_async(&mut redis)
            .await?;
        if positions.is_empty() {
            return Ok(AttemptPage { items, next_cursor: None });
        }
        for &pos in &positions {
            max = format!("({pos}");
            let (seq, index) = (pos / SLOTS, (pos % SLOTS) as usize);
            if message.as_ref().is_none_or(|(s, _)| *s != seq) {
                let records = match stream.direct_get(seq).await {
                    Ok(msg) => records_of(&msg.payload).collect(),
                    // Aged out of the stream: its index entries go as queries meet them.
                    Err(e) if e.kind() == DirectGetErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                message = Some((seq, records));
            }
            let Some(r) = message.as_ref().and_then(|(_, rs)| rs.get(index)) else {
                let _: () = redis::cmd("ZREM").arg(&key).arg(pos).query_async(&mut redis).await?;
                continue;
            };
            if keeps(q, r) {
                items.push(r.clone());
                if items.len() == limit {
                    return Ok(AttemptPage { items, next_cursor: Some(pos) });
                }
            }
        }
    }
}

/// Reads the stream backwards from `before` (or its last record), at most [`SCAN_BUDGET`]
/// messages; a page cut short by the budget still has a `next_cursor`.
async fn scan(
    js: &jetstream::Context,
    names: &Names,
    q: &AttemptQuery,
) -> anyhow::Result<AttemptPage> {
    let limit = q.limit.clamp(1, 500);
    let mut stream = js.get_stream(names.attempts_stream()).await?;
    let state = stream.info().await?.state.clone();
    // The newest record to look at: the one just below the cursor, or the stream's last.
    let (mut seq, mut below) = match q.before {
        Some(0) => return Ok(AttemptPage { items: Vec::new(), next_cursor: None }),
        Some(b) => ((b - 1) / SLOTS, ((b - 1) % SLOTS) as usize + 1),
        None => (state.last_sequence, SLOTS as usize),
    };
    if seq > state.last_sequence {
        (seq, below) = (state.last_sequence, SLOTS as usize);
    }
    let first = state.first_sequence.max(1);
    let mut items = Vec::new();
    let mut reads = 0;
    while seq >= first {
        if reads == SCAN_BUDGET {
            return Ok(AttemptPage { items, next_cursor: Some(position(seq + 1, 0)) });
        }
        reads += 1;
        match stream.direct_get(seq).await {
            Ok(msg) => {
                let mut records: Vec<AttemptRecord> = records_of(&msg.payload).collect();
                records.truncate(below);
                for (index, r) in records.into_iter().enumerate().rev() {
                    if !keeps(q, &r) {
                        continue;
                    }
                    items.push(r);
                    if items.len() == limit {
                        let last = seq == first && index == 0;
                        return Ok(AttemptPage {
                            items,
                            next_cursor: (!last).then_some(position(seq, index)),
                        });
                    }
                }
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        seq -= 1;
        below = SLOTS as usize;
    }
    Ok(AttemptPage { items, next_cursor: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bodies_are_cut_on_a_char_boundary() {
        let mut s = "é".repeat(600);
        truncate(&mut s, RESPONSE_BODY_LIMIT);
        assert_eq!(s.len(), 1024);
        let mut short = "ok".to_string();
        truncate(&mut short, RESPONSE_BODY_LIMIT);
        assert_eq!(short, "ok");
    }
}
