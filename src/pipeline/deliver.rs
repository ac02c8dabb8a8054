//! Delivery: one due delivery in; a signed POST; then ack (2xx), a scheduled retry, or a DLQ
//! entry — each replacement acknowledged by JetStream before the message is acked.
//!
//! Before the POST the inbox dedupe is consulted: a delivery already accepted by its endpoint
//! (a copy redelivered after a crash between the 2xx and the ack) is acked without a request.

use async_nats::jetstream;
use time::OffsetDateTime;

use super::attempt::{self, Outcome};
use super::dlq::{self, Entry};
use super::headers::AttemptState;
use super::retry::{self, Failure};
use super::Transient;
use crate::context::Ctx;
use crate::event::Delivery;
use crate::store::inbox;

/// Handles one message of `<p>.deliver.<subscription_id>`.
#[tracing::instrument(skip_all, fields(subject = %msg.subject, event_id, subscription_id, attempt))]
pub async fn handle(ctx: &Ctx, msg: &jetstream::Message) -> Result<(), Transient> {
    let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let now = OffsetDateTime::now_utc();
    let state = AttemptState::from_headers(msg.headers.as_ref(), now);
    let delivery = match Delivery::parse(&msg.payload) {
        Ok(d) => d,
        Err(invalid) => {
            let detail = invalid.to_string();
            return dlq::publish_invalid(ctx, &msg.payload, invalid.reason(), &detail, &msg.subject, seq).await;
        }
    };
    let span = tracing::Span::current();
    span.record("event_id", delivery.event.event_id.as_str());
    span.record("subscription_id", delivery.subscription_id.as_str());
    span.record("attempt", state.attempt);
    let dead_letter = |reason: &'static str, detail: String| {
        let delivery = delivery.clone();
        let state = state.clone();
        async move {
            let entry = Entry { reason, detail: &detail, state: Some(&state), last_status: None, last_attempt_at: None };
            dlq::publish_delivery(ctx, &delivery, &entry, &msg.subject, seq).await
        }
    };
    if ctx.names.deliver(&delivery.subscription_id) != msg.subject.as_str() {
        let detail = format!("body names subscription {} but the subject is {}", delivery.subscription_id, msg.subject);
        return dead_letter("subscription_mismatch", detail).await;
    }
    let sub = match ctx.subscriptions.get(&delivery.subscription_id).await {
        Ok(Some(sub)) => sub,
        Ok(None) => return dead_letter("unknown_subscription", format!("subscription {} does not exist", delivery.subscription_id)).await,
        Err(e) => return Err(Transient::new(e)),
    };
    if !sub.active {
        return dead_letter("subscription_inactive", format!("subscription {} is inactive", sub.id)).await;
    }
    let (event_id, sub_id) = (&delivery.event.event_id, &delivery.subscription_id);
    let mut redis = ctx.redis.clone();
    if inbox::was_delivered(&mut redis, &ctx.names, event_id, sub_id).await.map_err(Transient::new)? {
        tracing::info!("already delivered; acking the duplicate without a request");
        return Ok(());
    }
    match attempt::post(&ctx.http, &ctx.config.delivery, &sub, &delivery).await {
        Outcome::Delivered { status, duration } => {
            tracing::info!(status, ms = duration.as_millis() as u64, "delivered");
            // The endpoint has it: a Redis failure here must not cause a retry (that would be a
            // duplicate); the worst case is a duplicate if JetStream also redelivers.
            if let Err(e) = inbox::mark_delivered(&mut redis, &ctx.names, event_id, sub_id, ctx.config.delivery.dedupe_ttl).await {
                tracing::error!(error = %e, "could not record the delivery for dedupe");
            }
            Ok(())
        }
        Outcome::Failed { status, error, retry_after, duration } => {
            let failure = Failure { status, error: &error, at: now };
            let retry_config = &ctx.config.retry;
            if retry::has_attempts_left(retry_config, state.attempt) {
                let delay = retry::delay_before(retry_config, state.attempt + 1, retry_after, rand::random::<f64>());
                let due = retry::schedule(ctx, &delivery, &state, &failure, delay, seq).await?;
                tracing::info!(?status, %error, ms = duration.as_millis() as u64, retry_in = ?delay, due = %super::headers::rfc3339(due), "attempt failed; retry scheduled");
                Ok(())
            } else {
                let entry = Entry {
                    reason: "retries_exhausted",
                    detail: &error,
                    state: Some(&state),
                    last_status: status,
                    last_attempt_at: Some(now),
                };
                dlq::publish_delivery(ctx, &delivery, &entry, &msg.subject, seq).await
            }
        }
    }
}
