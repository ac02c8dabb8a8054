//! Delivery: one due delivery in; a signed POST; then ack (2xx), a scheduled retry, or a DLQ
//! entry — each replacement acknowledged by JetStream before the message is acked. Every
//! attempt (and every skip) is written to the attempt log.
//!
//! Before the POST: the subscription (from the process's exact cache, [`crate::store::cache`]),
//! a local per-endpoint permit, then one Redis script ([`Health::admit`]) that checks the cached
//! copy is current, the inbox dedupe (a delivery an endpoint already accepted is acked without
//! a request), the delivery's age bound, and the endpoint's health gates — circuit breaker,
//! rate limit, in-flight limit — shared by all processes. A gate that says "not now" defers the
//! delivery (a message schedule with the same attempt number), so backpressure never uses up
//! attempts and never holds a consumer slot. After the POST: a success resets the endpoint's
//! failure count; failures count towards the breaker and auto-disable; 410 disables the
//! subscription at once; `webhook-delivery: abort-message` stops retries.
//!
//! Files: this one is the step's spine ([`handle`], then read, admit, POST, conclude);
//! `admission` holds what is decided before the POST, `conclude` what follows it, and `settle`
//! the deferrals, dead letters and attempt-log records both of them write.

use std::time::Duration;

use async_nats::jetstream;
use time::OffsetDateTime;

use self::admission::Read;
pub use self::first::{FirstAttempt, Settled};
pub use self::leases::{return_all_leases, sweep_leases};
use super::Transient;
use super::dlq;
use super::headers::AttemptState;
use super::http_post::{self, Outcome};
use crate::context::Ctx;
use crate::event::Delivery;
use crate::metrics;
use crate::store::health::{self, Admission, Health};
use crate::store::inbox;

/// A log line of one job, naming its event, subscription and attempt (the per-message span is
/// debug-level: see [`handle`]).
macro_rules! job_log {
    ($level:ident, $job:expr, $($rest:tt)+) => {
        tracing::$level!(
            event_id = %$job.delivery.event.event_id,
            subscription_id = %$job.delivery.subscription_id,
            attempt = $job.state.attempt,
            $($rest)+
        )
    };
}

mod admission;
mod conclude;
mod first;
mod leases;
mod settle;
mod trace;

/// Reads of a subscription that changed before it could be used, at most per delivery.
const MAX_STALE_READS: usize = 3;

/// How long a delivery waits for a local in-flight permit before it is deferred instead.
const LOCAL_PERMIT_WAIT: Duration = Duration::from_secs(2);

/// Pauses before asking Redis again when it said every in-flight lease is taken.
const FULL_RETRIES_MS: [u64; 3] = [1, 4, 16];

/// One message being delivered, with what the later steps need.
struct Job<'a> {
    ctx: &'a Ctx,
    /// The delivery subject it arrived on (for a first attempt made by the fan-out: the one it
    /// would have been published to); DLQ entries name it.
    subject: &'a str,
    /// Its stream sequence (0 for a first attempt made by the fan-out).
    seq: u64,
    /// `Nats-Msg-Id` of the retry or deferral this attempt may publish: unique per message it
    /// came from, so a repeat of this step after a crash stores it once.
    follow_up_id: String,
    now: OffsetDateTime,
    state: AttemptState,
    delivery: Delivery,
    /// Arrived on `<p>.fifo.<sub>`: failures hold the head instead of scheduling a retry.
    fifo: bool,
    /// Made by the fan-out (a first attempt without a delivery message): the hand-over gate
    /// it shares with the fan-out, see [`first`].
    first: Option<&'a first::Gate>,
}

/// What an admitted attempt holds until it concludes: its claim token (held in the pair's inbox
/// key) and whether a success has failures or breaker state to reset.
struct Claim {
    token: String,
    failing: bool,
}

/// How long a delivery to a busy endpoint (every permit of this process held by requests that
/// have not answered) is deferred: spread over the second half of the request timeout, when
/// the first of those requests must have ended.
pub(super) fn busy_endpoint_wait(ctx: &Ctx) -> Duration {
    let timeout = ctx.config.delivery.request_timeout.max(Duration::from_secs(1));
    timeout / 2 + timeout.mul_f64(rand::random::<f64>() / 2.0)
}

/// Handles one message of `<p>.deliver.<subscription_id>`.
// A debug span: at the default `info` level an enabled span (its fields formatted on every
// record) cost ~10 % of the CPU of a delivery; the lines below name the ids themselves.
#[tracing::instrument(level = "debug", skip_all, fields(subject = %msg.subject, event_id, subscription_id, attempt))]
pub async fn handle(ctx: &Ctx, msg: &jetstream::Message) -> Result<(), Transient> {
    let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
    let now = OffsetDateTime::now_utc();
    let state = AttemptState::from_headers(msg.headers.as_ref(), now);
    let delivery = match Delivery::parse(&msg.payload) {
        Ok(d) => d,
        Err(invalid) => return dlq::publish_unparsable(ctx, msg, seq, &invalid).await,
    };
    let span = tracing::Span::current();
    span.record("event_id", delivery.event.event_id.as_str());
    span.record("subscription_id", delivery.subscription_id.as_str());
    span.record("attempt", state.attempt);
    let fifo = ctx.names.is_subject_of(&msg.subject, "fifo", &delivery.subscription_id);
    let mut state = state;
    trace::ensure_trace(ctx, &mut state, &delivery.event.event_id, &delivery.subscription_id);
    if fifo {
        // A FIFO head keeps its place in the stream; its attempt count lives in Redis.
        state.attempt = fifo_failures(ctx, &delivery.subscription_id, seq).await? as u32 + 1;
        if let Ok(info) = msg.info() {
            state.first_attempt_at = info.published;
        }
        span.record("attempt", state.attempt);
    }
    let job = Job {
        ctx,
        subject: &msg.subject,
        seq,
        follow_up_id: format!("retry.{seq}"),
        now,
        state,
        delivery,
        fifo,
        first: None,
    };
    if !fifo && !ctx.names.is_subject_of(&msg.subject, "deliver", &job.delivery.subscription_id) {
        let detail = format!(
            "body names subscription {} but the subject is {}",
            job.delivery.subscription_id, msg.subject
        );
        return job.dead_letter("subscription_mismatch", &detail, None).await;
    }
    let fifo_sub = fifo.then(|| job.delivery.subscription_id.clone());
    let result = job.run().await;
    if let (Some(sub), true) = (fifo_sub, result.is_ok()) {
        let mut redis = ctx.redis.clone();
        let _: Result<(), _> =
            redis::cmd("DEL").arg(fifo_key(ctx, &sub, seq)).query_async(&mut redis).await;
    }
    result
}

fn fifo_key(ctx: &Ctx, subscription_id: &str, seq: u64) -> String {
    ctx.names.fifo_failures_key(subscription_id, seq)
}

async fn fifo_failures(ctx: &Ctx, subscription_id: &str, seq: u64) -> Result<u64, Transient> {
    let mut redis = ctx.redis.clone();
    let n: Option<u64> = redis::cmd("GET")
        .arg(fifo_key(ctx, subscription_id, seq))
        .query_async(&mut redis)
        .await
        .map_err(Transient::redis)?;
    Ok(n.unwrap_or(0))
}

impl Job<'_> {
    fn replay(&self) -> Option<&str> {
        self.state.replay_id.as_deref()
    }

    fn health(&self) -> Health {
        Health::new(self.ctx.redis.clone(), self.ctx.names.clone())
    }

    /// Returns the claim of an attempt that did not succeed (or was not made); its lease goes
    /// back to the pool with its permit.
    async fn return_claim(&self, token: &str, inbox_key: &str) {
        let sub_id = &self.delivery.subscription_id;
        if let Err(e) = self.health().release(sub_id, token, inbox_key, None).await {
            job_log!(warn, self, error = %e, "could not return the claim (it expires by itself)");
        }
    }

    async fn run(&self) -> Result<(), Transient> {
        let (ctx, sub_id) = (self.ctx, &self.delivery.subscription_id);
        let inbox_key =
            inbox::delivered_key(&ctx.names, &self.delivery.event.event_id, sub_id, self.replay());
        // A copy that went stale between its read and the admission check is read again; a
        // subscription changing on every read is a transient condition.
        for _ in 0..MAX_STALE_READS {
            let (sub, version) = match self.read_subscription().await? {
                Read::Active(sub, version) => (sub, version),
                Read::Changed => continue,
                Read::Settled => return Ok(()),
            };
            let limit = sub.max_in_flight.unwrap_or(ctx.config.health.max_in_flight_per_endpoint);
            // Local permit first (cheap, and no deferral churn for a busy fast endpoint), then
            // everything Redis decides, in one round trip.
            let wait = if self.first.is_some() { first::PERMIT_WAIT } else { LOCAL_PERMIT_WAIT };
            let Some(mut permit) = ctx.limits.acquire(sub_id, limit, wait).await else {
                if let Some(gate) = self.first {
                    // The fan-out publishes the delivery message: the deliverer waits longer.
                    gate.not_started();
                    return Ok(());
                }
                return self.defer(&sub, self.no_permit_wait(), "in_flight_limit", None).await;
            };
            // A lease this process already holds for the endpoint, valid for a whole request.
            let until = health::now_ms() + admission::request_lease(&ctx.config).as_millis() as i64;
            let pooled = permit.pooled_lease(until);
            let admit = self.admit_request(&sub, &version, &inbox_key, limit, pooled.as_ref());
            let admission = self.admit(&admit).await;
            let breaker_maybe_open = admit.breaker_maybe_open;
            // The request holds the lease the admission gave (it goes back to the pool with
            // the permit); a pooled one it did not use goes back at once.
            let admitted = match &admission {
                Ok(Admission::Admitted { lease, .. }) => Some(lease),
                _ => None,
            };
            permit.settle_leases(pooled, admitted);
            let claim = match admission? {
                Admission::Admitted { token, failing, .. } => Claim { token, failing },
                Admission::Stale => {
                    drop(permit);
                    ctx.cache.forget(sub_id);
                    continue;
                }
                other => {
                    drop(permit);
                    return self.not_admitted(&sub, other).await;
                }
            };
            if let Some(gate) = self.first
                && !gate.begin_post()
            {
                // Handed over before the POST: the delivery message makes this attempt.
                drop(permit);
                self.return_claim(&claim.token, &inbox_key).await;
                return Ok(());
            }
            let (span, trace) = self.attempt_trace();
            let outcome = {
                let _in_flight = metrics::InFlight::start();
                let delivery = &self.delivery;
                http_post::post(&ctx.http, &ctx.config.delivery, &sub, delivery, trace.as_ref())
                    .await
            };
            trace::end_attempt(span, &outcome);
            drop(permit);
            let delivered = matches!(outcome, Outcome::Delivered { .. });
            if breaker_maybe_open && delivered {
                // The success closes the breaker (in Redis, below): the next deliveries and the
                // fan-out need not check it, nor take the script path, until it opens again.
                ctx.limits.note_breaker_closed(sub_id);
            }
            // After a success the claim becomes the inbox entry, with the health writes.
            if !delivered {
                self.return_claim(&claim.token, &inbox_key).await;
            }
            if let Some(gate) = self.first
                && !gate.begin_conclude()
            {
                return self.conclude_handed_over(&sub, outcome, &claim, &inbox_key).await;
            }
            return self.conclude(&sub, outcome, &claim, &inbox_key).await;
        }
        // The subscription keeps changing in Redis: a Redis-side condition, tried again later.
        Err(Transient::redis(format!(
            "subscription {sub_id} changed {MAX_STALE_READS} times while being read"
        )))
    }
}
