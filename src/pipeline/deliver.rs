//! Delivery: one due delivery in; a signed POST; then ack (2xx), a scheduled retry, or a DLQ
//! entry — each replacement acknowledged by JetStream before the message is acked. Every
//! attempt (and every skip) is written to the attempt log.
//!
//! Before the POST the inbox dedupe is consulted: a delivery already accepted by its endpoint
//! (a copy redelivered after a crash between the 2xx and the ack) is acked without a request.

use async_nats::jetstream;
use time::OffsetDateTime;

use super::Transient;
use super::attempt::{self, Outcome};
use super::dlq::{self, Entry};
use super::headers::AttemptState;
use super::retry::{self, Failure};
use crate::attempts::{AttemptRecord, AttemptStatus};
use crate::context::Ctx;
use crate::event::Delivery;
use crate::store::inbox;
use crate::store::subscriptions::Subscription;

/// One message being delivered, with what the later steps need.
struct Job<'a> {
    ctx: &'a Ctx,
    msg: &'a jetstream::Message,
    seq: u64,
    now: OffsetDateTime,
    state: AttemptState,
    delivery: Delivery,
}

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
    let job = Job { ctx, msg, seq, now, state, delivery };
    if ctx.names.deliver(&job.delivery.subscription_id) != msg.subject.as_str() {
        let detail = format!("body names subscription {} but the subject is {}", job.delivery.subscription_id, msg.subject);
        return job.dead_letter("subscription_mismatch", &detail, None).await;
    }
    let sub = match ctx.subscriptions.get(&job.delivery.subscription_id).await {
        Ok(Some(sub)) => sub,
        Ok(None) => {
            let detail = format!("subscription {} does not exist", job.delivery.subscription_id);
            return job.dead_letter("unknown_subscription", &detail, None).await;
        }
        Err(e) => return Err(Transient::new(e)),
    };
    if !sub.active {
        return job.dead_letter("subscription_inactive", &format!("subscription {} is inactive", sub.id), Some(&sub)).await;
    }
    job.attempt(&sub).await
}

impl Job<'_> {
    fn replay(&self) -> Option<&str> {
        self.state.replay_id.as_deref()
    }

    async fn attempt(&self, sub: &Subscription) -> Result<(), Transient> {
        let (ctx, event_id, sub_id) = (self.ctx, &self.delivery.event.event_id, &self.delivery.subscription_id);
        let mut redis = ctx.redis.clone();
        if inbox::was_delivered(&mut redis, &ctx.names, event_id, sub_id, self.replay()).await.map_err(Transient::new)? {
            tracing::info!("already delivered; acking the duplicate without a request");
            self.log(sub.tenant_id.clone(), AttemptStatus::SkippedDuplicate, None, None, None, None);
            return Ok(());
        }
        let outcome = attempt::post(&ctx.http, &ctx.config.delivery, sub, &self.delivery).await;
        match outcome {
            Outcome::Delivered { status, duration, response_body } => {
                tracing::info!(status, ms = duration.as_millis() as u64, "delivered");
                // The endpoint has it: a Redis failure here must not cause a retry (that would
                // be a duplicate); the worst case is a duplicate if JetStream also redelivers.
                let ttl = ctx.config.delivery.dedupe_ttl;
                if let Err(e) = inbox::mark_delivered(&mut redis, &ctx.names, event_id, sub_id, self.replay(), ttl).await {
                    tracing::error!(error = %e, "could not record the delivery for dedupe");
                }
                self.log(sub.tenant_id.clone(), AttemptStatus::Succeeded, Some((status, duration)), None, Some(response_body), None);
                Ok(())
            }
            Outcome::Failed { status, error, retry_after, duration, response_body } => {
                let timing = status.map(|s| (s, duration));
                if retry::has_attempts_left(&ctx.config.retry, self.state.attempt) {
                    let delay = retry::delay_before(&ctx.config.retry, self.state.attempt + 1, retry_after, rand::random::<f64>());
                    let failure = Failure { status, error: &error, at: self.now };
                    let due = retry::schedule(ctx, &self.delivery, &self.state, &failure, delay, self.seq).await?;
                    tracing::info!(status = status.map(i64::from).unwrap_or(-1), %error, ms = duration.as_millis() as u64, retry_in = ?delay, "attempt failed; retry scheduled");
                    let duration_only = Some((status.unwrap_or(0), duration));
                    self.log(sub.tenant_id.clone(), AttemptStatus::Failed, timing.or(duration_only), Some(error), Some(response_body), Some(due));
                    Ok(())
                } else {
                    let entry = Entry {
                        reason: "retries_exhausted",
                        detail: &error,
                        state: Some(&self.state),
                        last_status: status,
                        last_attempt_at: Some(self.now),
                    };
                    dlq::publish_delivery(ctx, &self.delivery, &entry, &self.msg.subject, self.seq).await?;
                    self.log(sub.tenant_id.clone(), AttemptStatus::DeadLettered, timing, Some(error), Some(response_body), None);
                    Ok(())
                }
            }
        }
    }

    async fn dead_letter(&self, reason: &'static str, detail: &str, sub: Option<&Subscription>) -> Result<(), Transient> {
        let entry = Entry { reason, detail, state: Some(&self.state), last_status: None, last_attempt_at: None };
        dlq::publish_delivery(self.ctx, &self.delivery, &entry, &self.msg.subject, self.seq).await?;
        let tenant = sub.and_then(|s| s.tenant_id.clone()).or_else(|| self.delivery.event.tenant_id.clone());
        self.log(tenant, AttemptStatus::DeadLettered, None, Some(format!("{reason}: {detail}")), None, None);
        Ok(())
    }

    /// Writes the attempt record in the background (never delays the ack).
    fn log(
        &self,
        tenant_id: Option<String>,
        status: AttemptStatus,
        http: Option<(u16, std::time::Duration)>,
        error: Option<String>,
        response_body: Option<String>,
        next_retry_at: Option<OffsetDateTime>,
    ) {
        let ctx = self.ctx;
        let record = AttemptRecord {
            attempt_id: format!("att_{}", uuid::Uuid::now_v7().simple()),
            subscription_id: self.delivery.subscription_id.clone(),
            event_id: self.delivery.event.event_id.clone(),
            event_type: self.delivery.event.event_type.clone(),
            tenant_id,
            attempt: self.state.attempt,
            status,
            http_status: http.map(|(s, _)| s).filter(|s| *s != 0),
            duration_ms: http.map(|(_, d)| d.as_millis() as u64).unwrap_or(0),
            error,
            response_body: response_body.filter(|b| !b.is_empty()),
            next_retry_at,
            at: self.now,
        };
        let retention = std::time::Duration::from_secs(ctx.config.streams.delivery_log_retention_days * 86_400);
        tokio::spawn(crate::attempts::record(ctx.js.clone(), ctx.redis.clone(), ctx.names.clone(), retention, record));
    }
}
