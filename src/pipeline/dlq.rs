//! The dead-letter queue: writing entries (exhausted deliveries, unprocessable messages) and
//! the operator's operations on them (list, redeliver, purge).
//!
//! An entry's body is the delivery as it was (self-contained JSON), or for an event that never
//! fanned out, the original bytes on `<p>.dlq._invalid`. Headers say why: `Hookline-Reason`,
//! `Hookline-Reason-Detail`, `Hookline-Attempts`, `Hookline-Last-Status`, `Hookline-Last-Error`,
//! `Hookline-First-Attempt-At`, `Hookline-Last-Attempt-At`.

use async_nats::HeaderMap;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::DirectGetErrorKind;
use serde::Serialize;

use super::Transient;
use super::headers::{self, AttemptState};
use crate::context::Ctx;
use crate::event::{Delivery, InvalidEvent};
use crate::subjects::INVALID_EVENTS_TOKEN;

/// Bodies over this size are cut in the DLQ copy (the event log keeps the original), so the
/// entry plus its headers always fits in a NATS message.
const MAX_DLQ_BODY: usize = 900 * 1024;

/// Why an entry is dead-lettered, with the state of the last attempt if there was one.
pub struct Entry<'a> {
    pub reason: &'a str,
    pub detail: &'a str,
    pub state: Option<&'a AttemptState>,
    pub last_status: Option<u16>,
    pub last_attempt_at: Option<time::OffsetDateTime>,
}

/// Publishes a DLQ entry on `<p>.dlq.<token>` and waits for JetStream's ack. `msg_id` makes the
/// publish idempotent when the step is repeated after a crash.
pub async fn publish(
    ctx: &Ctx,
    token: &str,
    body: &[u8],
    entry: &Entry<'_>,
    event: Option<(&str, &str)>,
    original_subject: &str,
    msg_id: &str,
) -> Result<(), Transient> {
    publish_carrying(ctx, token, body, entry, event, original_subject, msg_id, HeaderMap::new())
        .await
}

/// [`publish`], starting from headers `h` of the original message worth keeping.
#[allow(clippy::too_many_arguments)]
async fn publish_carrying(
    ctx: &Ctx,
    token: &str,
    body: &[u8],
    entry: &Entry<'_>,
    event: Option<(&str, &str)>,
    original_subject: &str,
    msg_id: &str,
    mut h: HeaderMap,
) -> Result<(), Transient> {
    h.insert("Nats-Msg-Id", msg_id);
    h.insert(headers::REASON, entry.reason);
    h.insert(headers::REASON_DETAIL, headers::sanitize(entry.detail).as_str());
    h.insert(headers::ORIGINAL_SUBJECT, original_subject);
    if let Some((id, kind)) = event {
        h.insert(headers::EVENT_ID, id);
        h.insert(headers::EVENT_TYPE, kind);
    }
    if let Some(state) = entry.state {
        h.insert(headers::ATTEMPTS, state.attempt.to_string().as_str());
        h.insert(headers::FIRST_ATTEMPT_AT, headers::rfc3339(state.first_attempt_at).as_str());
        if let Some(trace) = &state.trace {
            trace.insert_into(&mut h);
        }
    }
    if let Some(at) = entry.last_attempt_at {
        h.insert(headers::LAST_ATTEMPT_AT, headers::rfc3339(at).as_str());
        h.insert(headers::LAST_ERROR, headers::sanitize(entry.detail).as_str());
    }
    if let Some(status) = entry.last_status {
        h.insert(headers::LAST_STATUS, status.to_string().as_str());
    }
    let body = if body.len() > MAX_DLQ_BODY {
        h.insert("Hookline-Truncated", body.len().to_string().as_str());
        &body[..MAX_DLQ_BODY]
    } else {
        body
    };
    let subject = ctx.names.dlq(token);
    let ack = ctx
        .js
        .publish_with_headers(subject.clone(), h, bytes::Bytes::copy_from_slice(body))
        .await
        .map_err(|e| Transient::nats(format!("publishing to dlq {subject}"), e))?;
    ack.await.map_err(|e| Transient::nats(format!("awaiting ack of dlq entry on {subject}"), e))?;
    Ok(())
}

/// Dead-letters a message that could not be processed at all (never fanned out).
pub async fn publish_invalid(
    ctx: &Ctx,
    body: &[u8],
    reason: &str,
    detail: &str,
    subject: &str,
    seq: u64,
) -> Result<(), Transient> {
    publish_invalid_carrying(ctx, body, reason, detail, subject, seq, HeaderMap::new()).await
}

/// [`publish_invalid`] keeping headers `carried` of the original message.
async fn publish_invalid_carrying(
    ctx: &Ctx,
    body: &[u8],
    reason: &str,
    detail: &str,
    subject: &str,
    seq: u64,
    carried: HeaderMap,
) -> Result<(), Transient> {
    tracing::warn!(%subject, seq, reason, detail, "dead-lettering unprocessable message");
    let entry = Entry { reason, detail, state: None, last_status: None, last_attempt_at: None };
    let msg_id = format!("invalid.{subject}.{seq}");
    publish_carrying(ctx, INVALID_EVENTS_TOKEN, body, &entry, None, subject, &msg_id, carried).await
}

/// The headers of an unparsable message that are part of the event itself: a binary-mode
/// CloudEvent's `ce-*` attributes and the data's `content-type`. Kept on its DLQ entry so that
/// nothing of the event is lost.
fn event_headers(msg: &async_nats::jetstream::Message) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for (name, values) in msg.headers.iter().flat_map(|h| h.iter()) {
        let lower = AsRef::<str>::as_ref(name).to_ascii_lowercase();
        if lower.starts_with("ce-") || lower == "content-type" {
            for value in values {
                kept.append(name.clone(), value.clone());
            }
        }
    }
    kept
}

/// Dead-letters `msg` (stream sequence `seq`), which did not parse, with the reason `invalid` names.
pub async fn publish_unparsable(
    ctx: &Ctx,
    msg: &async_nats::jetstream::Message,
    seq: u64,
    invalid: &InvalidEvent,
) -> Result<(), Transient> {
    let detail = invalid.to_string();
    let kept = event_headers(msg);
    publish_invalid_carrying(ctx, &msg.payload, invalid.reason(), &detail, &msg.subject, seq, kept)
        .await
}

/// The `Nats-Msg-Id` of a delivery's DLQ entry: one per (event, subscription, replay, DLQ entry
/// it was re-queued from). Keyed by the pair, not by the message's stream sequence: across a NATS
/// restart a delivery can exist twice (a retry republished after its schedule had fired: the
/// rebuilt duplicate window no longer knows its id), and both copies exhaust their attempts;
/// their two entries are one within the duplicate window.
fn delivery_msg_id(delivery: &Delivery, state: Option<&AttemptState>) -> String {
    let replay = state.and_then(|s| s.replay_id.as_deref()).unwrap_or("-");
    let from = state.and_then(|s| s.redelivered_from).map_or("-".to_string(), |n| n.to_string());
    format!("dlq.{}.{}.{replay}.{from}", delivery.event.event_id, delivery.subscription_id)
}

/// Dead-letters a delivery (attempts exhausted, unknown or inactive subscription).
pub async fn publish_delivery(
    ctx: &Ctx,
    delivery: &Delivery,
    entry: &Entry<'_>,
    subject: &str,
    seq: u64,
) -> Result<(), Transient> {
    tracing::warn!(
        event_id = %delivery.event.event_id,
        subscription_id = %delivery.subscription_id,
        seq,
        reason = entry.reason,
        detail = entry.detail,
        "dead-lettering delivery"
    );
    let event = (delivery.event.event_id.as_str(), delivery.event.event_type.as_str());
    let msg_id = delivery_msg_id(delivery, entry.state);
    publish(
        ctx,
        &delivery.subscription_id,
        &delivery.to_bytes(),
        entry,
        Some(event),
        subject,
        &msg_id,
    )
    .await
}

/// One DLQ entry as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DlqEntry {
    pub sequence: u64,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    pub reason: String,
    pub detail: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub dead_lettered_at: time::OffsetDateTime,
}

/// Errors of the operator's DLQ operations.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("dlq entry {0} not found")]
    NotFound(u64),
    #[error("dlq entry {seq} cannot be redelivered: {why}")]
    NotRedeliverable { seq: u64, why: String },
    #[error("{0}")]
    Nats(String),
}

fn nats_err(doing: &str) -> impl Fn(&dyn std::fmt::Display) -> DlqError + '_ {
    move |e| DlqError::Nats(format!("{doing}: {e}"))
}

/// Lists entries, oldest first, optionally of one subscription, at most `limit`.
pub async fn list(
    js: &async_nats::jetstream::Context,
    names: &crate::subjects::Names,
    subscription: Option<&str>,
    limit: usize,
) -> Result<Vec<DlqEntry>, DlqError> {
    let stream = js
        .get_stream_no_info(names.dlq_stream())
        .await
        .map_err(|e| nats_err("opening dlq stream")(&e))?;
    let filter = subscription.map(|s| names.dlq(s)).unwrap_or_else(|| names.dlq_wildcard());
    let mut out = Vec::new();
    let mut next = 1u64;
    while out.len() < limit {
        let msg = match stream.direct_get_next_for_subject(filter.as_str(), Some(next)).await {
            Ok(m) => m,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(nats_err("reading dlq")(&e)),
        };
        next = msg.sequence + 1;
        out.push(entry_of(names, &msg));
    }
    Ok(out)
}

fn entry_of(
    names: &crate::subjects::Names,
    msg: &async_nats::jetstream::message::StreamMessage,
) -> DlqEntry {
    let h = |name: &str| msg.headers.get(name).map(|v| v.as_str().to_string()).unwrap_or_default();
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(msg.time.unix_timestamp_nanos())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    DlqEntry {
        sequence: msg.sequence,
        subscription_id: names.subscription_of_dlq(&msg.subject).unwrap_or_default().to_string(),
        event_id: h(headers::EVENT_ID),
        event_type: h(headers::EVENT_TYPE),
        reason: h(headers::REASON),
        detail: h(headers::REASON_DETAIL),
        attempts: h(headers::ATTEMPTS).parse().unwrap_or(0),
        last_status: h(headers::LAST_STATUS).parse().ok(),
        dead_lettered_at: time,
    }
}

/// One entry by sequence.
pub async fn get(
    js: &async_nats::jetstream::Context,
    names: &crate::subjects::Names,
    seq: u64,
) -> Result<DlqEntry, DlqError> {
    Ok(entry_of(names, &read(js, names, seq).await?.1))
}

/// The DLQ stream and the stored message of entry `seq`.
async fn read(
    js: &async_nats::jetstream::Context,
    names: &crate::subjects::Names,
    seq: u64,
) -> Result<(async_nats::jetstream::stream::Stream<()>, StreamMessage), DlqError> {
    let stream = js
        .get_stream_no_info(names.dlq_stream())
        .await
        .map_err(|e| nats_err("opening dlq stream")(&e))?;
    match stream.direct_get(seq).await {
        Ok(m) => Ok((stream, m)),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Err(DlqError::NotFound(seq)),
        Err(e) => Err(nats_err("reading dlq entry")(&e)),
    }
}

/// Puts entry `seq` back on the delivery path with a fresh attempt budget, then removes it
/// from the DLQ (only after the re-queue is acknowledged).
pub async fn redeliver(
    js: &async_nats::jetstream::Context,
    names: &crate::subjects::Names,
    seq: u64,
) -> Result<DlqEntry, DlqError> {
    let (stream, msg) = read(js, names, seq).await?;
    let entry = entry_of(names, &msg);
    let delivery = Delivery::parse(&msg.payload).map_err(|e| DlqError::NotRedeliverable {
        seq,
        why: format!("{} (an unprocessable event; fix and republish it to the events subject)", e),
    })?;
    if entry.subscription_id != delivery.subscription_id.as_str() {
        return Err(DlqError::NotRedeliverable {
            seq,
            why: "subject and body name different subscriptions".into(),
        });
    }
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", format!("redeliver.{}.{seq}", names.dlq_stream()).as_str());
    h.insert(headers::ATTEMPT, "1");
    h.insert(headers::REDELIVERED_FROM, seq.to_string().as_str());
    if let Some(trace) = crate::trace_context::TraceContext::from_nats(Some(&msg.headers)) {
        trace.insert_into(&mut h);
    }
    let subject = names.deliver(&delivery.subscription_id);
    let ack = js
        .publish_with_headers(subject.clone(), h, msg.payload.clone())
        .await
        .map_err(|e| nats_err("re-queueing dlq entry")(&e))?;
    ack.await.map_err(|e| nats_err("awaiting re-queue ack")(&e))?;
    stream.delete_message(seq).await.map_err(|e| nats_err("removing redelivered dlq entry")(&e))?;
    Ok(entry)
}

/// Removes every entry, or those of one subscription; returns how many.
pub async fn purge(
    js: &async_nats::jetstream::Context,
    names: &crate::subjects::Names,
    subscription: Option<&str>,
) -> Result<u64, DlqError> {
    let stream = js
        .get_stream_no_info(names.dlq_stream())
        .await
        .map_err(|e| nats_err("opening dlq stream")(&e))?;
    let filter = subscription.map(|s| names.dlq(s)).unwrap_or_else(|| names.dlq_wildcard());
    let response = stream.purge().filter(filter).await.map_err(|e| nats_err("purging dlq")(&e))?;
    Ok(response.purged)
}
