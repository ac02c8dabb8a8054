//! Fan-out: one event in, one delivery message per matching active subscription out.
//!
//! Each delivery is published to `<p>.deliver.<subscription_id>` with
//! `Nats-Msg-Id: <event_id>.<subscription_id>`, so repeating the fan-out of an event (after a
//! crash before its ack, or a duplicate publish) is absorbed by the deliveries stream's
//! duplicate window. The event is acked only after every delivery publish is acknowledged.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};

use super::{Transient, dlq};
use crate::context::Ctx;
use crate::event::{Delivery, WebhookEvent};

/// Publishes are awaited in chunks of this many, so a huge fan-out has bounded acks in flight.
const PUBLISH_CHUNK: usize = 1000;

/// `<p>.fifo.<sub>` for FIFO subscriptions, else `<p>.deliver.<sub>`.
fn delivery_subject(ctx: &Ctx, sub: &crate::store::subscriptions::Subscription) -> String {
    match sub.ordering {
        crate::store::subscriptions::Ordering::Fifo => ctx.names.fifo(&sub.id),
        crate::store::subscriptions::Ordering::Unordered => ctx.names.deliver(&sub.id),
    }
}

/// Handles one message of the events stream.
#[tracing::instrument(level = "debug", skip_all, fields(subject = %msg.subject, event_id, matched))]
pub async fn handle(ctx: &Ctx, msg: &jetstream::Message) -> Result<(), Transient> {
    let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let Some(subject_type) = ctx.names.event_type_of(&msg.subject) else {
        let detail = format!("subject {} is not <prefix>.events.<type>", msg.subject);
        return dlq::publish_invalid(ctx, &msg.payload, "invalid_subject", &detail, &msg.subject, seq).await;
    };
    let event = match WebhookEvent::parse(&msg.payload, subject_type, ctx.config.delivery.max_payload_bytes) {
        Ok(event) => event,
        Err(invalid) => {
            let detail = invalid.to_string();
            return dlq::publish_invalid(ctx, &msg.payload, invalid.reason(), &detail, &msg.subject, seq).await;
        }
    };
    tracing::Span::current().record("event_id", event.event_id.as_str());
    // The replay index (event id -> stream sequence) rides along with the lookup's round trip;
    // it only serves replay-by-id and is idempotent, so writing it before the publishes is fine.
    let index = crate::replay::index_event_cmd(ctx, &event.event_id, seq);
    let subscriptions = ctx
        .cache
        .matching(&event.event_type, event.tenant_id.as_deref(), Some(index))
        .await
        .map_err(Transient::new)?;
    tracing::Span::current().record("matched", subscriptions.len());
    for chunk in subscriptions.chunks(PUBLISH_CHUNK) {
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(chunk.len());
        for sub in chunk.iter() {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{}.{}", event.event_id, sub.id).as_str());
            let ack = ctx
                .js
                .publish_with_headers(delivery_subject(ctx, sub), headers, Delivery::bytes_for(&event, &sub.id).into())
                .await
                .map_err(|e| Transient::new(format!("publishing delivery for {}: {e}", sub.id)))?;
            acks.push(ack);
        }
        for ack in futures::future::join_all(acks.into_iter().map(std::future::IntoFuture::into_future)).await {
            ack.map_err(|e| Transient::new(format!("awaiting delivery publish ack: {e}")))?;
        }
    }
    tracing::debug!(matched = subscriptions.len(), "event fanned out");
    Ok(())
}
