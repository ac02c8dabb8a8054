//! Fan-out: one event in, one delivery per matching active subscription out (matching: the
//! event type and tenant through the index, then the subscription's payload filter).
//!
//! A delivery whose endpoint can take it at once (no hold below, a free in-flight permit) gets
//! its first attempt from the fan-out itself ([`crate::pipeline::deliver::FirstAttempt`],
//! `delivery.first_attempt_in_fanout`): a delivered event costs no delivery message. The event
//! is acked only when every such attempt is concluded (delivered and in the inbox, or its
//! retry, deferral or DLQ entry acknowledged by JetStream) or handed over as a delivery message.
//!
//! Every other delivery is published to `<p>.deliver.<subscription_id>` with
//! `Nats-Msg-Id: <event_id>.<subscription_id>`, so repeating the fan-out of an event (after a
//! crash before its ack, or a duplicate publish) is absorbed by the deliveries stream's
//! duplicate window. The event is acked only after every delivery publish is acknowledged.
//!
//! A delivery to an endpoint that cannot take it now — this process's permits for it are all
//! held by requests that have not answered, or its breaker is open (a local hint, confirmed in
//! Redis) — is published as a message schedule due when the deliverer would have deferred it
//! to, with the same `Nats-Msg-Id`: the same single stored message, without a trip through the
//! delivery consumer only to be deferred. That trip is what a dead endpoint costs the others.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use time::OffsetDateTime;

use super::retry::{self, Failure};
use super::{Transient, dlq};
use crate::store::subscriptions::SubscriptionError;

/// How long an event waits while the subscription index is rebuilt.
const INDEX_WAIT: Duration = Duration::from_secs(1);
use crate::context::Ctx;
use crate::event::{Delivery, WebhookEvent};
use crate::ids::SubscriptionId;
use crate::metrics;
use crate::otel::Kind;
use crate::pipeline::deliver::{FirstAttempt, Settled};
use crate::store::event_index;
use crate::store::health::Health;
use crate::store::subscriptions::{Ordering, Subscription};
use crate::trace_context::TraceContext;

/// Publishes are awaited in chunks of this many, so a huge fan-out has bounded acks in flight.
const PUBLISH_CHUNK: usize = 1000;

/// `<p>.fifo.<sub>` for FIFO subscriptions, else `<p>.deliver.<sub>`.
fn delivery_subject(ctx: &Ctx, sub: &Subscription) -> String {
    match sub.ordering {
        Ordering::Fifo => ctx.names.fifo(&sub.id),
        Ordering::Unordered => ctx.names.deliver(&sub.id),
    }
}

/// For each subscription, how long its first attempt must wait and why (`None`: send now).
async fn holds(
    ctx: &Ctx,
    subs: &[std::sync::Arc<Subscription>],
) -> Result<Vec<Option<(Duration, &'static str)>>, Transient> {
    let mut holds = vec![None; subs.len()];
    let mut maybe_open = Vec::new();
    for (i, sub) in subs.iter().enumerate() {
        if sub.ordering == Ordering::Fifo {
            continue;
        }
        if ctx.limits.is_busy(&sub.id) {
            holds[i] = Some((super::deliver::busy_endpoint_wait(ctx), "in_flight_limit"));
        } else if ctx.limits.breaker_maybe_open(&sub.id) {
            maybe_open.push(i);
        }
    }
    if !maybe_open.is_empty() {
        let ids: Vec<&str> = maybe_open.iter().map(|i| subs[*i].id.as_str()).collect();
        let health = Health::new(ctx.redis.clone(), ctx.names.clone());
        let open = health.open_for(&ids).await.map_err(Transient::redis)?;
        for (i, open_for) in maybe_open.into_iter().zip(open) {
            holds[i] = open_for.map(|d| (d, "breaker_open"));
        }
    }
    Ok(holds)
}

/// The counter of first attempts by where they ended (made by the fan-out, or handed over).
const FIRST_ATTEMPTS: &str = "hookline_first_attempts_total";

/// Starts the fan-out's own first attempt of a delivery, when configured, the subscription is
/// not FIFO (its order lives in its stream), its endpoint has lately answered well within the
/// deadline (a slow one would hold the event, and the fan-out slot, only to be handed over) and
/// the process has room for another.
fn start_first_attempt(
    ctx: &Ctx,
    event: &WebhookEvent,
    sub: &Subscription,
    trace: Option<&TraceContext>,
) -> Option<FirstAttempt> {
    let delivery = &ctx.config.delivery;
    if !delivery.first_attempt_in_fanout || sub.ordering == Ordering::Fifo {
        return None;
    }
    if ctx
        .limits
        .recent_hold(&sub.id)
        .is_some_and(|hold| hold > delivery.first_attempt_deadline / 4)
    {
        return None;
    }
    let sub_id = SubscriptionId::parse(&sub.id).ok()?;
    FirstAttempt::start(ctx, event, sub_id, delivery_subject(ctx, sub), trace.cloned())
}

/// Publishes the delivery message of `sub` (or, with a hold, its message schedule due when the
/// hold ends), with `Nats-Msg-Id: <event>.<subscription>`; returns the pending ack.
async fn publish_delivery(
    ctx: &Ctx,
    event: &WebhookEvent,
    sub: &Subscription,
    hold: Option<(Duration, &'static str)>,
    trace: Option<&TraceContext>,
) -> Result<PublishAckFuture, Transient> {
    let msg_id = format!("{}.{}", event.event_id, sub.id);
    let (subject, mut headers) = match hold {
        None => {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", msg_id.as_str());
            (delivery_subject(ctx, sub), headers)
        }
        Some((wait, reason)) => {
            metrics::inc("hookline_deferrals_total", &[("reason", reason)]);
            let now = OffsetDateTime::now_utc();
            let failure = Failure { status: None, error: reason, at: now };
            let headers =
                retry::schedule_headers(ctx, &sub.id, now + wait, &msg_id, 1, now, &failure);
            (ctx.names.retry(&sub.id, &event.event_id, 1), headers)
        }
    };
    if let Some(trace) = trace {
        trace.insert_into(&mut headers);
    }
    ctx.js
        .publish_with_headers(subject, headers, Delivery::bytes_for(event, &sub.id).into())
        .await
        .map_err(|e| Transient::nats(format!("publishing delivery for {}", sub.id), e))
}

/// Handles one message of the events stream.
#[tracing::instrument(level = "debug", skip_all, fields(subject = %msg.subject, event_id, matched))]
pub async fn handle(ctx: &Ctx, msg: &jetstream::Message) -> Result<(), Transient> {
    let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let Some(subject_type) = ctx.names.event_type_of(&msg.subject) else {
        let detail = format!("subject {} is not <prefix>.events.<type>", msg.subject);
        return dlq::publish_invalid(
            ctx,
            &msg.payload,
            "invalid_subject",
            &detail,
            &msg.subject,
            seq,
        )
        .await;
    };
    // A WebhookEvent, or a CloudEvent in binary or structured mode (told apart by headers).
    let event = match crate::cloudevents::parse_message(
        msg.headers.as_ref(),
        &msg.payload,
        subject_type,
        ctx.config.delivery.max_payload_bytes,
    ) {
        Ok(event) => event,
        Err(invalid) => return dlq::publish_unparsable(ctx, msg, seq, &invalid).await,
    };
    tracing::Span::current().record("event_id", event.event_id.as_str());
    // The event's trace context goes on every delivery: as published, or (with export on) as
    // the child of this fan-out's span, which starts a new trace for an event without one.
    let incoming = crate::trace_context::TraceContext::of_event(msg.headers.as_ref(), &event);
    let mut span = ctx.otel.span("hookline.fanout", Kind::Consumer, incoming.as_ref());
    let trace = span.as_ref().map(|s| s.context().clone()).or(incoming);
    if let Some(span) = span.as_mut() {
        span.set_str("hookline.event_id", event.event_id.as_str());
        span.set_str("hookline.event_type", event.event_type.as_str());
    }
    // The replay index (event id -> stream sequence) rides along with the lookup's round trip;
    // it only serves replay-by-id and is idempotent, so writing it before the publishes is fine.
    let retention = ctx.config.streams.events_max_age;
    let index = event_index::set_cmd(&ctx.names, &event.event_id, seq, retention);
    let matched = ctx
        .cache
        .matching(&event.event_type, event.tenant_id.as_deref(), Some(index))
        .await
        .map_err(|e| match e {
            // No event is matched against a half-built index: it waits in JetStream.
            SubscriptionError::IndexNotReady => Transient::hold(INDEX_WAIT, e),
            e => Transient::redis(e),
        })?;
    // Payload filters after the type lookup (compiled when the subscription was read, so this
    // costs an evaluation per filtered subscription, no parsing); no copy when none has one.
    let filtered: Vec<std::sync::Arc<Subscription>>;
    let subscriptions: &[std::sync::Arc<Subscription>] =
        if matched.iter().any(|s| s.filter.is_some()) {
            filtered =
                matched.iter().filter(|s| s.accepts_payload(&event.payload)).cloned().collect();
            &filtered
        } else {
            &matched
        };
    tracing::Span::current().record("matched", subscriptions.len());
    if let Some(span) = span.as_mut() {
        span.set_int("hookline.matched_subscriptions", subscriptions.len() as i64);
    }
    for chunk in subscriptions.chunks(PUBLISH_CHUNK) {
        let holds = holds(ctx, chunk).await?;
        // First attempts start at once; the delivery messages of the others are published
        // meanwhile; then each first attempt is settled (handed over = its message published).
        let deadline = tokio::time::Instant::now() + ctx.config.delivery.first_attempt_deadline;
        let mut firsts = Vec::new();
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(chunk.len());
        for (sub, hold) in chunk.iter().zip(holds) {
            if hold.is_none()
                && let Some(first) = start_first_attempt(ctx, &event, sub, trace.as_ref())
            {
                firsts.push((sub, first));
                continue;
            }
            acks.push(publish_delivery(ctx, &event, sub, hold, trace.as_ref()).await?);
        }
        let mut failed = None;
        for (sub, first) in firsts {
            match first.settle(deadline, &ctx.stopping).await {
                Settled::Concluded => metrics::inc(FIRST_ATTEMPTS, &[("path", "fanout")]),
                Settled::HandOver => {
                    metrics::inc(FIRST_ATTEMPTS, &[("path", "handed_over")]);
                    acks.push(publish_delivery(ctx, &event, sub, None, trace.as_ref()).await?);
                }
                Settled::Failed(e) => failed = Some(e),
            }
        }
        for ack in
            futures::future::join_all(acks.into_iter().map(std::future::IntoFuture::into_future))
                .await
        {
            ack.map_err(|e| Transient::nats("awaiting delivery publish ack", e))?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    tracing::debug!(matched = subscriptions.len(), "event fanned out");
    Ok(())
}
