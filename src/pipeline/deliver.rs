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

use std::time::Duration;

use async_nats::jetstream;
use time::OffsetDateTime;

use super::Transient;
use super::attempt::{self, FailureKind, Outcome};
use super::dlq::{self, Entry};
use super::headers::AttemptState;
use super::retry::{self, Failure};
use crate::attempts::{AttemptRecord, AttemptStatus};
use crate::context::Ctx;
use crate::event::Delivery;
use crate::lifecycle::{self, LifecycleKind};
use crate::metrics;
use crate::store::health::{Admission, Admit, Backoff, Health};
use crate::store::inbox;
use crate::store::subscriptions::Subscription;

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

/// Reads of a subscription that changed before it could be used, at most per delivery.
const MAX_STALE_READS: usize = 3;

/// How long a delivery waits for a local in-flight permit before it is deferred instead.
const LOCAL_PERMIT_WAIT: Duration = Duration::from_secs(2);

/// Pauses before asking Redis again when it said every in-flight lease is taken.
const FULL_RETRIES_MS: [u64; 3] = [1, 4, 16];

/// One message being delivered, with what the later steps need.
struct Job<'a> {
    ctx: &'a Ctx,
    msg: &'a jetstream::Message,
    seq: u64,
    now: OffsetDateTime,
    state: AttemptState,
    delivery: Delivery,
    /// Arrived on `<p>.fifo.<sub>`: failures hold the head instead of scheduling a retry.
    fifo: bool,
}

/// What the attempt log gets for one attempt.
#[derive(Default)]
struct Log {
    http: Option<(u16, Duration)>,
    error: Option<String>,
    kind: Option<FailureKind>,
    body: Option<String>,
    next: Option<OffsetDateTime>,
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
        Err(invalid) => {
            let detail = invalid.to_string();
            return dlq::publish_invalid(
                ctx,
                &msg.payload,
                invalid.reason(),
                &detail,
                &msg.subject,
                seq,
            )
            .await;
        }
    };
    let span = tracing::Span::current();
    span.record("event_id", delivery.event.event_id.as_str());
    span.record("subscription_id", delivery.subscription_id.as_str());
    span.record("attempt", state.attempt);
    let fifo = ctx.names.is_subject_of(&msg.subject, "fifo", &delivery.subscription_id);
    let mut state = state;
    if fifo {
        // A FIFO head keeps its place in the stream; its attempt count lives in Redis.
        state.attempt = fifo_failures(ctx, seq).await? as u32 + 1;
        if let Ok(info) = msg.info() {
            state.first_attempt_at = info.published;
        }
        span.record("attempt", state.attempt);
    }
    let job = Job { ctx, msg, seq, now, state, delivery, fifo };
    if !fifo && !ctx.names.is_subject_of(&msg.subject, "deliver", &job.delivery.subscription_id) {
        let detail = format!(
            "body names subscription {} but the subject is {}",
            job.delivery.subscription_id, msg.subject
        );
        return job.dead_letter("subscription_mismatch", &detail, None).await;
    }
    let result = job.run().await;
    if fifo && result.is_ok() {
        let mut redis = ctx.redis.clone();
        let _: Result<(), _> =
            redis::cmd("DEL").arg(fifo_key(ctx, seq)).query_async(&mut redis).await;
    }
    result
}

fn fifo_key(ctx: &Ctx, seq: u64) -> String {
    ctx.names.key(&format!("fifo_failures:{seq}"))
}

async fn fifo_failures(ctx: &Ctx, seq: u64) -> Result<u64, Transient> {
    let mut redis = ctx.redis.clone();
    let n: Option<u64> = redis::cmd("GET")
        .arg(fifo_key(ctx, seq))
        .query_async(&mut redis)
        .await
        .map_err(|e| Transient::new(format!("redis: {e}")))?;
    Ok(n.unwrap_or(0))
}

impl Job<'_> {
    fn replay(&self) -> Option<&str> {
        self.state.replay_id.as_deref()
    }

    fn health(&self) -> Health {
        Health::new(self.ctx.redis.clone(), self.ctx.names.clone())
    }

    async fn run(&self) -> Result<(), Transient> {
        let (ctx, sub_id) = (self.ctx, &self.delivery.subscription_id);
        let inbox_key =
            inbox::delivered_key(&ctx.names, &self.delivery.event.event_id, sub_id, self.replay());
        // A copy that went stale between its read and the admission check is read again; a
        // subscription changing on every read is a transient condition.
        for _ in 0..MAX_STALE_READS {
            let (sub, version) =
                ctx.cache.subscription(sub_id, false).await.map_err(Transient::new)?;
            let sub = match sub {
                Some(sub) if sub.active => sub,
                // Dead-lettering must not rest on a cached copy: read it again first.
                _ => match ctx.cache.subscription(sub_id, true).await.map_err(Transient::new)?.0 {
                    Some(sub) if sub.active => continue,
                    Some(sub) => return self.inactive(&sub).await,
                    None => {
                        let detail = format!("subscription {sub_id} does not exist");
                        return self.dead_letter("unknown_subscription", &detail, None).await;
                    }
                },
            };
            let limit = sub.max_in_flight.unwrap_or(ctx.config.health.max_in_flight_per_endpoint);
            // Local permit first (cheap, and no deferral churn for a busy fast endpoint), then
            // everything Redis decides, in one round trip.
            let Some(permit) = ctx.limits.acquire(sub_id, limit, LOCAL_PERMIT_WAIT).await else {
                // A hanging endpoint frees nothing before its requests time out: come back then
                // (spread over the second half of the timeout) instead of every few moments —
                // each return costs a deferral, and a deep backlog of such returns costs the
                // healthy endpoints their CPU (the isolation benchmark).
                let wait = if ctx.limits.is_busy(sub_id) {
                    busy_endpoint_wait(ctx)
                } else {
                    Duration::from_millis(200 + rand::random::<u64>() % 800)
                };
                return self.defer(&sub, wait, "in_flight_limit", None).await;
            };
            let admit = Admit {
                version: &version,
                inbox_key: &inbox_key,
                expired: self.now - self.state.first_attempt_at
                    > ctx.config.health.max_delivery_age,
                probe_timeout: ctx.config.delivery.request_timeout + Duration::from_secs(5),
                rps: sub.max_rps.unwrap_or(ctx.config.health.max_rps_per_endpoint),
                limit,
                lease: ctx.config.delivery.request_timeout + Duration::from_secs(5),
                breaker_maybe_open: ctx.limits.breaker_maybe_open(sub_id),
            };
            let mut admission =
                self.health().admit(sub_id, &admit).await.map_err(Transient::new)?;
            // "Full" right after taking a local permit is mostly a lease of this process whose
            // return (sent after its permit was dropped, possibly queued behind other commands)
            // Redis has not seen yet: ask again a moment later rather than pay a deferral
            // (~0.6 % of all deliveries were deferred so in the fan-out benchmark, none with
            // this). Truly full across processes, it is deferred below.
            for pause_ms in FULL_RETRIES_MS {
                if admission != Admission::Full {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                admission = self.health().admit(sub_id, &admit).await.map_err(Transient::new)?;
            }
            let token = match admission {
                Admission::Admitted { token, .. } => token,
                other => {
                    drop(permit);
                    match other {
                        Admission::Stale => {
                            ctx.cache.stale(&version);
                            continue;
                        }
                        Admission::Duplicate => {
                            job_log!(
                                info,
                                self,
                                "already delivered; acking the duplicate without a request"
                            );
                            self.log(&sub, AttemptStatus::SkippedDuplicate, Log::default()).await;
                            return Ok(());
                        }
                        Admission::Expired => {
                            let age = self.now - self.state.first_attempt_at;
                            return self
                                .dead_letter(
                                    "max_age_exceeded",
                                    &format!("delivery is {age} old"),
                                    Some(&sub),
                                )
                                .await;
                        }
                        Admission::BreakerOpen { retry_in } => {
                            ctx.limits.note_breaker_open(sub_id, retry_in);
                            return self.defer(&sub, retry_in, "breaker_open", None).await;
                        }
                        Admission::RateLimited { wait } => {
                            return self.defer(&sub, wait, "rate_limited", None).await;
                        }
                        Admission::InFlight => {
                            // Held, not deferred: a redelivery of this very message must not
                            // schedule a copy of it, and the other copy answers within a request
                            // timeout; then this one finds the pair in the inbox (or sends it,
                            // if that attempt failed).
                            job_log!(
                                info,
                                self,
                                "another copy of this delivery is being sent; holding this one"
                            );
                            let wait = Duration::from_millis(500 + rand::random::<u64>() % 1000);
                            return Err(Transient::hold(wait, "another copy is being sent"));
                        }
                        Admission::Full | Admission::Admitted { .. } => {
                            let wait = Duration::from_millis(200 + rand::random::<u64>() % 800);
                            return self.defer(&sub, wait, "in_flight_limit", None).await;
                        }
                    }
                }
            };
            let outcome = {
                let _in_flight = metrics::InFlight::start();
                attempt::post(&ctx.http, &ctx.config.delivery, &sub, &self.delivery).await
            };
            drop(permit);
            let delivered = matches!(outcome, Outcome::Delivered { .. });
            if admit.breaker_maybe_open && delivered {
                // The success closes the breaker (in Redis, below): the next deliveries and the
                // fan-out need not check it, nor take the script path, until it opens again.
                ctx.limits.note_breaker_closed(sub_id);
            }
            // After a success the lease is returned together with the inbox and health writes.
            if !delivered && let Err(e) = self.health().release(sub_id, &token, &inbox_key).await {
                job_log!(warn, self, error = %e, "could not return the in-flight lease (it expires by itself)");
            }
            return self.conclude(&sub, outcome, &token, &inbox_key).await;
        }
        Err(Transient::new(format!(
            "subscription {sub_id} changed {MAX_STALE_READS} times while being read"
        )))
    }

    /// Dead-letters a delivery of a deactivated subscription.
    async fn inactive(&self, sub: &Subscription) -> Result<(), Transient> {
        match &sub.disabled_reason {
            Some(why) => {
                self.dead_letter(
                    "subscription_disabled",
                    &format!("subscription {} was disabled ({why})", sub.id),
                    Some(sub),
                )
                .await
            }
            None => {
                self.dead_letter(
                    "subscription_inactive",
                    &format!("subscription {} is inactive", sub.id),
                    Some(sub),
                )
                .await
            }
        }
    }

    /// Reschedules this attempt unchanged (no attempt is used).
    async fn defer(
        &self,
        sub: &Subscription,
        wait: Duration,
        reason: &'static str,
        status: Option<u16>,
    ) -> Result<(), Transient> {
        metrics::inc("hookline_deferrals_total", &[("reason", reason)]);
        if self.fifo {
            return Err(Transient::hold(wait, reason));
        }
        let failure = Failure { status, error: reason, at: self.now };
        let due = retry::schedule(
            self.ctx,
            &self.delivery,
            &self.state,
            &failure,
            wait,
            self.seq,
            self.state.attempt,
        )
        .await?;
        tracing::debug!(reason, ?wait, subscription_id = %sub.id, "delivery deferred");
        if status.is_some() {
            self.log(
                sub,
                AttemptStatus::Deferred,
                Log {
                    http: status.map(|s| (s, Duration::ZERO)),
                    error: Some(reason.into()),
                    next: Some(due),
                    ..Log::default()
                },
            )
            .await;
        }
        Ok(())
    }

    async fn conclude(
        &self,
        sub: &Subscription,
        outcome: Outcome,
        lease: &str,
        inbox_key: &str,
    ) -> Result<(), Transient> {
        let ctx = self.ctx;
        match outcome {
            Outcome::Delivered { status, duration, response_body } => {
                // Debug, not info: a line per delivery costs ~15 % CPU; metrics count them.
                tracing::debug!(status, ms = duration.as_millis() as u64, "delivered");
                metrics::attempt("succeeded", Some(status), duration);
                // The endpoint has it: a Redis failure here must not cause a retry (that would
                // be a duplicate); the worst case is a duplicate if JetStream also redelivers.
                let sub_id = &self.delivery.subscription_id;
                if let Err(e) = self
                    .health()
                    .succeeded(sub_id, lease, inbox_key, ctx.config.delivery.dedupe_ttl)
                    .await
                {
                    job_log!(error, self, error = %e, "could not record the delivery for dedupe");
                }
                self.log(
                    sub,
                    AttemptStatus::Succeeded,
                    Log {
                        http: Some((status, duration)),
                        body: Some(response_body),
                        ..Log::default()
                    },
                )
                .await;
                Ok(())
            }
            Outcome::Failed { status: Some(429), retry_after, duration, .. } => {
                metrics::attempt("deferred", Some(429), duration);
                let wait = retry_after
                    .map(|r| r.min(ctx.config.retry.max_retry_after))
                    .unwrap_or_else(|| {
                        retry::delay_before(
                            &ctx.config.retry,
                            self.state.attempt + 1,
                            None,
                            rand::random::<f64>(),
                        )
                    });
                self.defer(sub, wait, "http_429", Some(429)).await
            }
            Outcome::Failed {
                status,
                kind,
                abort,
                error,
                retry_after,
                duration,
                response_body,
            } => {
                let log = Log {
                    http: Some((status.unwrap_or(0), duration)),
                    error: Some(error.clone()),
                    kind: Some(kind),
                    body: Some(response_body),
                    next: None,
                };
                if abort {
                    metrics::attempt("aborted", status, duration);
                    job_log!(
                        info,
                        self,
                        status = status.map(i64::from).unwrap_or(-1),
                        "receiver asked to abort this message; no more retries"
                    );
                    self.log(sub, AttemptStatus::Aborted, log).await;
                    return Ok(());
                }
                if kind == FailureKind::Blocked {
                    // The egress policy refuses this endpoint: retrying cannot help, and it says
                    // nothing about the endpoint's health.
                    metrics::attempt("dead_lettered", status, duration);
                    return self
                        .dead_letter_failed(crate::egress::BLOCKED_REASON, sub, &error, status, log)
                        .await;
                }
                if status == Some(410) {
                    metrics::attempt("dead_lettered", status, duration);
                    self.disable(sub, "gone", "endpoint answered 410 Gone").await?;
                    return self
                        .dead_letter_failed("endpoint_gone", sub, &error, status, log)
                        .await;
                }
                let count = self.count_failure(sub).await?;
                let limit = ctx.config.health.disable_after_failures;
                if limit > 0 && count >= limit {
                    metrics::attempt("dead_lettered", status, duration);
                    self.disable(sub, "failing", &format!("{count} consecutive failed attempts"))
                        .await?;
                    return self
                        .dead_letter_failed("subscription_disabled", sub, &error, status, log)
                        .await;
                }
                if retry::has_attempts_left(&ctx.config.retry, self.state.attempt) {
                    metrics::attempt("failed", status, duration);
                    let delay = retry::delay_before(
                        &ctx.config.retry,
                        self.state.attempt + 1,
                        retry_after,
                        rand::random::<f64>(),
                    );
                    if self.fifo {
                        return self.hold_head(sub, delay, log).await;
                    }
                    let failure = Failure { status, error: &error, at: self.now };
                    let due = retry::schedule(
                        ctx,
                        &self.delivery,
                        &self.state,
                        &failure,
                        delay,
                        self.seq,
                        self.state.attempt + 1,
                    )
                    .await?;
                    job_log!(info, self, status = status.map(i64::from).unwrap_or(-1), %error, ms = duration.as_millis() as u64, retry_in = ?delay, "attempt failed; retry scheduled");
                    self.log(sub, AttemptStatus::Failed, Log { next: Some(due), ..log }).await;
                    Ok(())
                } else {
                    metrics::attempt("dead_lettered", status, duration);
                    self.dead_letter_failed("retries_exhausted", sub, &error, status, log).await
                }
            }
        }
    }

    /// FIFO: counts the failed attempt and keeps the message at the head for `delay`.
    async fn hold_head(
        &self,
        sub: &Subscription,
        delay: Duration,
        log: Log,
    ) -> Result<(), Transient> {
        let mut redis = self.ctx.redis.clone();
        let key = fifo_key(self.ctx, self.seq);
        redis::pipe()
            .incr(&key, 1)
            .ignore()
            .expire(&key, 7 * 86_400)
            .ignore()
            .query_async::<()>(&mut redis)
            .await
            .map_err(|e| Transient::new(format!("redis: {e}")))?;
        let due = self.now + delay;
        job_log!(info, self, retry_in = ?delay, "fifo head failed; holding it (later deliveries of this subscription wait)");
        self.log(sub, AttemptStatus::Failed, Log { next: Some(due), ..log }).await;
        Err(Transient::hold(delay, "fifo head waiting for its retry"))
    }

    /// Counts the failure for the breaker and auto-disable; returns the consecutive count.
    async fn count_failure(&self, sub: &Subscription) -> Result<u64, Transient> {
        let h = &self.ctx.config.health;
        let count = self
            .health()
            .record_failure(
                &sub.id,
                h.disable_window,
                h.breaker_failure_threshold,
                Backoff { first: h.breaker_open_for, max: h.breaker_max_open_for },
            )
            .await
            .map_err(Transient::new)?;
        if let Some(open_for) = count.opened {
            self.ctx.limits.note_breaker_open(&sub.id, open_for);
            job_log!(warn, self, failures = count.consecutive, ?open_for, "circuit breaker opened");
            metrics::inc("hookline_breaker_opened_total", &[]);
        }
        Ok(count.consecutive)
    }

    /// Deactivates the subscription (once across processes) and tells the world.
    async fn disable(
        &self,
        sub: &Subscription,
        reason: &str,
        detail: &str,
    ) -> Result<(), Transient> {
        let ctx = self.ctx;
        if let Some(disabled) =
            ctx.subscriptions.disable(&sub.id, reason).await.map_err(Transient::new)?
        {
            tracing::warn!(subscription_id = %sub.id, url = %sub.url, reason, detail, "subscription disabled; its pending deliveries go to the dlq");
            metrics::inc("hookline_subscriptions_disabled_total", &[("reason", reason)]);
            lifecycle::publish(&ctx.nats, &ctx.names, LifecycleKind::Disabled, &disabled).await;
        }
        Ok(())
    }

    async fn dead_letter_failed(
        &self,
        reason: &'static str,
        sub: &Subscription,
        error: &str,
        status: Option<u16>,
        log: Log,
    ) -> Result<(), Transient> {
        let entry = Entry {
            reason,
            detail: error,
            state: Some(&self.state),
            last_status: status,
            last_attempt_at: Some(self.now),
        };
        dlq::publish_delivery(self.ctx, &self.delivery, &entry, &self.msg.subject, self.seq)
            .await?;
        metrics::inc("hookline_dead_letters_total", &[("reason", reason)]);
        self.log(sub, AttemptStatus::DeadLettered, log).await;
        Ok(())
    }

    async fn dead_letter(
        &self,
        reason: &'static str,
        detail: &str,
        sub: Option<&Subscription>,
    ) -> Result<(), Transient> {
        let entry = Entry {
            reason,
            detail,
            state: Some(&self.state),
            last_status: None,
            last_attempt_at: None,
        };
        dlq::publish_delivery(self.ctx, &self.delivery, &entry, &self.msg.subject, self.seq)
            .await?;
        metrics::inc("hookline_dead_letters_total", &[("reason", reason)]);
        let tenant =
            sub.and_then(|s| s.tenant_id.clone()).or_else(|| self.delivery.event.tenant_id.clone());
        self.write_log(
            tenant,
            AttemptStatus::DeadLettered,
            Log { error: Some(format!("{reason}: {detail}")), ..Log::default() },
        )
        .await;
        Ok(())
    }

    async fn log(&self, sub: &Subscription, status: AttemptStatus, log: Log) {
        self.write_log(sub.tenant_id.clone(), status, log).await;
    }

    /// Queues the attempt record (written with its stats in the background, in batches).
    async fn write_log(&self, tenant_id: Option<String>, status: AttemptStatus, log: Log) {
        let ctx = self.ctx;
        let record = AttemptRecord {
            attempt_id: format!("att_{}", uuid::Uuid::now_v7().simple()),
            subscription_id: self.delivery.subscription_id.clone(),
            event_id: self.delivery.event.event_id.clone(),
            event_type: self.delivery.event.event_type.clone(),
            tenant_id,
            attempt: self.state.attempt,
            status,
            http_status: log.http.map(|(s, _)| s).filter(|s| *s != 0),
            duration_ms: log.http.map(|(_, d)| d.as_millis() as u64).unwrap_or(0),
            error: log.error,
            error_kind: log.kind,
            response_body: log.body.filter(|b| !b.is_empty()),
            next_retry_at: log.next,
            at: self.now,
        };
        ctx.attempts.record(record).await;
    }
}
