//! The attempt log: one record per delivery attempt on the `<P>_ATTEMPTS` stream, subject
//! `<p>.attempts.<subscription_id>`, and the queries over it.
//!
//! The records double as outcome events: any plain NATS subscriber of `<p>.attempts.>` sees
//! `succeeded`, `failed`, `dead_lettered` and `skipped_duplicate` as they happen. Queries (newest
//! first, paginated, by subscription, event, tenant or status) use small Redis sorted sets whose
//! members are stream sequences (a query for all records, or for successes alone, reads the
//! stream backwards instead); entries whose record has aged out of the stream are dropped
//! lazily when a query meets them. Records are written by one [`Recorder`] task per process,
//! in batches, off the delivery path.

use std::collections::BTreeMap;

use crate::store::RedisConn;
use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use serde::Serialize;

pub use crate::attempt_record::{AttemptRecord, AttemptStatus};
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
    let mut keys = vec![names.key(&format!("att:sub:{}", r.subscription_id))];
    if r.status != AttemptStatus::Succeeded {
        keys.push(names.key(&format!("att:status:{}", r.status.as_str())));
    }
    if let Some(t) = &r.tenant_id {
        keys.push(names.key(&format!("att:tenant:{t}")));
    }
    keys
}

/// How many records wait for the recorder at most; a full queue makes deliveries wait (bounded
/// memory, and no record is dropped).
const QUEUE: usize = 10_000;
/// Records written per batch (one JetStream publish each, acks awaited together, one Redis
/// round trip for all their index and stats updates).
const BATCH: usize = 256;

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

/// Publishes the records, waits for JetStream, then indexes and counts them in one Redis round
/// trip. A failure is logged, never retried into a duplicate record.
async fn write_batch(
    js: &jetstream::Context,
    redis: &mut RedisConn,
    names: &Names,
    retention: std::time::Duration,
    records: Vec<AttemptRecord>,
) {
    let mut pending = Vec::with_capacity(records.len());
    for mut r in records {
        if let Some(body) = &mut r.response_body {
            truncate(body, RESPONSE_BODY_LIMIT);
        }
        let payload = match serde_json::to_vec(&r) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode attempt record");
                continue;
            }
        };
        match js.publish(names.attempts(&r.subscription_id), payload.into()).await {
            Ok(ack) => pending.push((r, ack)),
            Err(e) => {
                tracing::warn!(error = %e, event_id = %r.event_id, "attempt record not published")
            }
        }
    }
    // One round trip for the batch, aggregated: one ZADD and one trim per index key, one
    // HINCRBY per stats field (not per record).
    let mut indexes: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let mut tally = crate::stats::Tally::default();
    let mut pipe = redis::pipe();
    let ttl = retention.as_secs().max(1) as i64;
    for (r, ack) in pending {
        let seq = match ack.await {
            Ok(ack) => ack.sequence,
            Err(e) => {
                tracing::warn!(error = %e, event_id = %r.event_id, "attempt record not stored");
                continue;
            }
        };
        for key in index_keys(names, &r) {
            indexes.entry(key).or_default().push((seq as f64, seq));
        }
        // An event has a handful of attempts: its index needs no trim, only to expire with
        // the records.
        let event_key = names.key(&format!("att:event:{}", r.event_id));
        pipe.zadd(&event_key, seq, seq as f64).ignore();
        pipe.expire(&event_key, ttl).ignore();
        tally.add(names, &r);
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
        names.key(&format!("att:event:{e}"))
    } else if let Some(s) = &q.subscription_id {
        names.key(&format!("att:sub:{s}"))
    } else if let Some(t) = &q.tenant_id {
        names.key(&format!("att:tenant:{t}"))
    } else if let Some(st) = q.status.filter(|s| *s != AttemptStatus::Succeeded) {
        names.key(&format!("att:status:{}", st.as_str()))
    } else {
        return scan(js, names, q).await;
    };
    let limit = q.limit.clamp(1, 500);
    let stream = js.get_stream_no_info(names.attempts_stream()).await?;
    let mut redis = redis.clone();
    let mut items = Vec::new();
    let mut max = q.before.map(|b| format!("({b}")).unwrap_or_else(|| "+inf".into());
    loop {
        let seqs: Vec<u64> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(&key)
            .arg(&max)
            .arg("-inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit * 2)
            .query_async(&mut redis)
            .await?;
        if seqs.is_empty() {
            return Ok(AttemptPage { items, next_cursor: None });
        }
        for &seq in &seqs {
            max = format!("({seq}");
            let msg = match stream.direct_get(seq).await {
                Ok(m) => m,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
                    let _: () =
                        redis::cmd("ZREM").arg(&key).arg(seq).query_async(&mut redis).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Ok(r) = serde_json::from_slice::<AttemptRecord>(&msg.payload) else { continue };
            if keeps(q, &r) {
                items.push(r);
                if items.len() == limit {
                    return Ok(AttemptPage { items, next_cursor: Some(seq) });
                }
            }
        }
    }
}

/// Reads the stream backwards from `before` (or its last record), at most [`SCAN_BUDGET`]
/// reads; a page cut short by the budget still has a `next_cursor`.
async fn scan(
    js: &jetstream::Context,
    names: &Names,
    q: &AttemptQuery,
) -> anyhow::Result<AttemptPage> {
    let limit = q.limit.clamp(1, 500);
    let mut stream = js.get_stream(names.attempts_stream()).await?;
    let state = stream.info().await?.state.clone();
    let mut seq = match q.before {
        Some(b) => b.saturating_sub(1).min(state.last_sequence),
        None => state.last_sequence,
    };
    let first = state.first_sequence.max(1);
    let mut items = Vec::new();
    let mut reads = 0;
    while seq >= first {
        if reads == SCAN_BUDGET {
            return Ok(AttemptPage { items, next_cursor: Some(seq + 1) });
        }
        reads += 1;
        match stream.direct_get(seq).await {
            Ok(msg) => {
                if let Ok(r) = serde_json::from_slice::<AttemptRecord>(&msg.payload)
                    && keeps(q, &r)
                {
                    items.push(r);
                    if items.len() == limit {
                        return Ok(AttemptPage {
                            items,
                            next_cursor: (seq > first).then_some(seq),
                        });
                    }
                }
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        seq -= 1;
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
