//! Replay from the event log: one event by id, or every event in a time range (optionally of
//! given types), to all matching subscriptions or to one named subscription. Works for the
//! whole retention of the events stream.
//!
//! A replay publishes fresh deliveries carrying `Hookline-Replay-Id`, which gives them their own
//! inbox dedupe key: the point of a replay is to reach endpoints that already had the event,
//! while a redelivered copy of the replay itself is still not POSTed twice. Finding an event by
//! id uses the index `<p>:event:<event_id>` -> events-stream sequence written at fan-out
//! ([`crate::store::event_index`]).

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream::DirectGetErrorKind};
use futures::StreamExt;
use redis::AsyncCommands;
use time::OffsetDateTime;

use crate::cloudevents::parse_message;
use crate::context::Ctx;
use crate::event::{Delivery, WebhookEvent};
use crate::pipeline::headers;
use crate::store::event_index;
use crate::store::subscriptions::Subscription;
use crate::trace_context::TraceContext;

/// What to replay.
#[derive(Debug, Clone)]
pub enum ReplaySelection {
    /// One event by id.
    Event(String),
    /// Events stored in `[since, until)`, of these types (all if empty).
    Range { since: OffsetDateTime, until: OffsetDateTime, event_types: Vec<String> },
}

/// A replay that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("event {0} not found in the event log")]
    EventNotFound(String),
    #[error("subscription {0} not found")]
    SubscriptionNotFound(String),
    #[error("invalid replay: {0}")]
    Invalid(String),
    #[error("replay failed: {0}")]
    Failed(String),
}

fn failed(doing: &str) -> impl Fn(&dyn std::fmt::Display) -> ReplayError + '_ {
    move |e| ReplayError::Failed(format!("{doing}: {e}"))
}

/// Replays the selection to every matching subscription (event type, tenant and payload filter,
/// as at fan-out), or to `only` (which must exist; its filters are not applied: naming it is
/// the operator's choice). `tenant` limits both the events
/// and the subscriptions to one tenant. Returns how many deliveries were queued.
pub async fn replay(
    ctx: &Ctx,
    selection: &ReplaySelection,
    only: Option<&str>,
    tenant: Option<&str>,
) -> Result<u64, ReplayError> {
    let target = match only {
        Some(id) => {
            let sub =
                ctx.subscriptions.get(id).await.map_err(|e| ReplayError::Invalid(e.to_string()))?;
            match sub {
                Some(s) if tenant.is_none_or(|t| s.tenant_id.as_deref() == Some(t)) => Some(s),
                _ => return Err(ReplayError::SubscriptionNotFound(id.to_string())),
            }
        }
        None => None,
    };
    let replay_id = format!("rpl_{}", uuid::Uuid::now_v7().simple());
    let events = ctx
        .js
        .get_stream_no_info(ctx.names.events_stream())
        .await
        .map_err(|e| failed("opening events stream")(&e))?;
    let mut queued = 0;
    match selection {
        ReplaySelection::Event(id) => {
            let (event, trace) = load_event(ctx, &events, id).await?;
            let replayed = Replayed { event: &event, trace: trace.as_ref() };
            queued += queue(ctx, replayed, target.as_ref(), tenant, &replay_id).await?;
        }
        ReplaySelection::Range { since, until, event_types } => {
            if since >= until {
                return Err(ReplayError::Invalid("since must be before until".into()));
            }
            let filters: Vec<String> = if event_types.is_empty() {
                vec![ctx.names.events_wildcard()]
            } else {
                event_types.iter().map(|t| ctx.names.event(t)).collect()
            };
            let config = consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartTime { start_time: *since },
                filter_subjects: filters,
                ..Default::default()
            };
            let mut consumer = events
                .create_consumer(config)
                .await
                .map_err(|e| failed("creating replay consumer")(&e))?;
            if consumer.info().await.map_err(|e| failed("reading replay consumer")(&e))?.num_pending
                == 0
            {
                return Ok(0);
            }
            let mut messages =
                consumer.messages().await.map_err(|e| failed("reading the event log")(&e))?;
            while let Some(msg) = messages.next().await {
                let msg = msg.map_err(|e| failed("reading the event log")(&e))?;
                let info = msg.info().map_err(|e| failed("reading message info")(&e))?;
                let (published, pending) = (info.published, info.pending);
                if published >= *until {
                    break;
                }
                let Some(kind) = ctx.names.event_type_of(&msg.subject) else { continue };
                // Events that never parsed were dead-lettered at the time; skip them here too.
                let limit = ctx.config.delivery.max_payload_bytes;
                if let Ok(event) = parse_message(msg.headers.as_ref(), &msg.payload, kind, limit) {
                    let trace = TraceContext::of_event(msg.headers.as_ref(), &event);
                    let replayed = Replayed { event: &event, trace: trace.as_ref() };
                    queued += queue(ctx, replayed, target.as_ref(), tenant, &replay_id).await?;
                }
                if pending == 0 {
                    break;
                }
            }
        }
    }
    tracing::info!(%replay_id, queued, "replay queued");
    Ok(queued)
}

async fn load_event(
    ctx: &Ctx,
    events: &jetstream::stream::Stream<()>,
    id: &str,
) -> Result<(WebhookEvent, Option<TraceContext>), ReplayError> {
    let mut redis = ctx.redis.clone();
    let seq: Option<u64> = redis
        .get(event_index::key(&ctx.names, id))
        .await
        .map_err(|e| failed("reading the event index")(&e))?;
    let seq = seq.ok_or_else(|| ReplayError::EventNotFound(id.to_string()))?;
    let msg = match events.direct_get(seq).await {
        Ok(m) => m,
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
            return Err(ReplayError::EventNotFound(id.to_string()));
        }
        Err(e) => return Err(failed("reading the event log")(&e)),
    };
    let kind = ctx.names.event_type_of(&msg.subject).unwrap_or_default();
    let event = parse_message(
        Some(&msg.headers),
        &msg.payload,
        kind,
        ctx.config.delivery.max_payload_bytes,
    )
    .map_err(|_| ReplayError::EventNotFound(id.to_string()))?;
    let trace = TraceContext::of_event(Some(&msg.headers), &event);
    Ok((event, trace))
}

/// An event to replay and the trace context it was published with (its replayed deliveries
/// carry it, so they belong to the event's trace).
#[derive(Clone, Copy)]
struct Replayed<'a> {
    event: &'a WebhookEvent,
    trace: Option<&'a TraceContext>,
}

/// Publishes one replayed delivery per target subscription; waits for every ack.
async fn queue(
    ctx: &Ctx,
    Replayed { event, trace }: Replayed<'_>,
    only: Option<&Subscription>,
    tenant: Option<&str>,
    replay_id: &str,
) -> Result<u64, ReplayError> {
    if tenant.is_some() && event.tenant_id.as_deref() != tenant {
        return Ok(0);
    }
    let subs = match only {
        Some(s) => vec![s.clone()],
        None => ctx
            .subscriptions
            .matching(&event.event_type, event.tenant_id.as_deref())
            .await
            .map_err(|e| failed("looking up subscriptions")(&e))?
            .into_iter()
            .filter(|s| tenant.is_none_or(|t| s.tenant_id.as_deref() == Some(t)))
            .filter(|s| s.accepts_payload(&event.payload))
            .collect(),
    };
    let mut acks = Vec::with_capacity(subs.len());
    for sub in &subs {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("{replay_id}.{}.{}", event.event_id, sub.id).as_str());
        h.insert(headers::REPLAY_ID, replay_id);
        if let Some(trace) = trace {
            trace.insert_into(&mut h);
        }
        let ack = ctx
            .js
            .publish_with_headers(
                ctx.names.deliver(&sub.id),
                h,
                Delivery::bytes_for(event, &sub.id).into(),
            )
            .await
            .map_err(|e| failed("queueing a replayed delivery")(&e))?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await.map_err(|e| failed("awaiting a replayed delivery's ack")(&e))?;
    }
    Ok(subs.len() as u64)
}
