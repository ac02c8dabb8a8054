//! After the POST: a 2xx is recorded for dedupe and health; a 429 defers; any other failure
//! counts towards the breaker and auto-disable and is retried (or held, for a FIFO head) while
//! attempts are left, else dead-lettered; 410 disables the subscription at once, an egress
//! refusal is dead-lettered at once, and `webhook-delivery: abort-message` stops retries.

use std::time::Duration;

use super::settle::Log;
use super::{Claim, Job, fifo_key};
use crate::attempt_record::{AttemptStatus, FailureKind};
use crate::config::RetryConfig;
use crate::lifecycle::{self, LifecycleKind};
use crate::metrics;
use crate::pipeline::Transient;
use crate::pipeline::http_post::Outcome;
use crate::pipeline::retry::{self, Failure};
use crate::store::health::Backoff;
use crate::store::subscriptions::Subscription;

/// A failed attempt, as `Job::failed` needs it.
struct Failed {
    status: Option<u16>,
    kind: FailureKind,
    abort: bool,
    error: String,
    retry_after: Option<Duration>,
    duration: Duration,
}

impl Job<'_> {
    /// Maps the attempt's outcome to ack, deferral, retry, hold or dead letter.
    pub(super) async fn conclude(
        &self,
        sub: &Subscription,
        outcome: Outcome,
        claim: &Claim,
        inbox_key: &str,
    ) -> Result<(), Transient> {
        match outcome {
            Outcome::Delivered { status, duration, response_body } => {
                self.delivered(sub, claim, inbox_key, (status, duration), response_body).await;
                Ok(())
            }
            Outcome::Failed { status: Some(429), retry_after, duration, .. } => {
                metrics::attempt("deferred", Some(429), duration);
                let plan = self.retry_config(sub);
                let wait = retry_after.map(|r| r.min(plan.max_retry_after)).unwrap_or_else(|| {
                    let next = self.state.attempt + 1;
                    retry::delay_before(&plan, next, None, rand::random::<f64>())
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
                let failed = Failed { status, kind, abort, error, retry_after, duration };
                self.failed(sub, failed, log).await
            }
        }
    }

    /// Concludes a first attempt whose delivery the fan-out took back while the POST was under
    /// way (see [`super::first`]): a success is recorded as usual (the delivery message then
    /// finds it in the inbox); a failure is logged and counted for the endpoint's health only,
    /// since the delivery message makes the attempt again.
    pub(super) async fn conclude_handed_over(
        &self,
        sub: &Subscription,
        outcome: Outcome,
        claim: &Claim,
        inbox_key: &str,
    ) -> Result<(), Transient> {
        let Outcome::Failed { status, kind, error, duration, response_body, .. } = outcome else {
            return self.conclude(sub, outcome, claim, inbox_key).await;
        };
        metrics::attempt("failed", status, duration);
        if kind != FailureKind::Blocked && status != Some(429) {
            self.count_failure(sub).await?;
        }
        let log = Log {
            http: Some((status.unwrap_or(0), duration)),
            error: Some(error),
            kind: Some(kind),
            body: Some(response_body),
            next: None,
        };
        self.log(sub, AttemptStatus::Failed, log).await;
        Ok(())
    }

    async fn delivered(
        &self,
        sub: &Subscription,
        claim: &Claim,
        inbox_key: &str,
        (status, duration): (u16, Duration),
        response_body: String,
    ) {
        // Debug, not info: a line per delivery costs ~15 % CPU; metrics count them.
        tracing::debug!(status, ms = duration.as_millis() as u64, "delivered");
        metrics::attempt("succeeded", Some(status), duration);
        // The endpoint has it: a Redis failure here must not cause a retry (that would be a
        // duplicate); the worst case is a duplicate if JetStream also redelivers.
        let (sub_id, ttl) = (&self.delivery.subscription_id, self.ctx.config.delivery.dedupe_ttl);
        if let Err(e) = self.health().succeeded(sub_id, inbox_key, ttl, claim.failing).await {
            job_log!(error, self, error = %e, "could not record the delivery for dedupe");
        }
        let log =
            Log { http: Some((status, duration)), body: Some(response_body), ..Log::default() };
        self.log(sub, AttemptStatus::Succeeded, log).await;
    }

    /// A failed attempt (not a 429): abort, refusal, 410 and auto-disable end it at once.
    async fn failed(&self, sub: &Subscription, f: Failed, log: Log) -> Result<(), Transient> {
        let (status, duration) = (f.status, f.duration);
        if f.abort {
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
        if f.kind == FailureKind::Blocked {
            // The egress policy refuses this endpoint: retrying cannot help, and it says nothing
            // about the endpoint's health.
            metrics::attempt("dead_lettered", status, duration);
            let reason = crate::egress::BLOCKED_REASON;
            return self.dead_letter_failed(reason, sub, &f.error, status, log).await;
        }
        if status == Some(410) {
            metrics::attempt("dead_lettered", status, duration);
            self.disable(sub, "gone", "endpoint answered 410 Gone").await?;
            return self.dead_letter_failed("endpoint_gone", sub, &f.error, status, log).await;
        }
        let count = self.count_failure(sub).await?;
        let limit = self.ctx.config.health.disable_after_failures;
        if limit > 0 && count >= limit {
            metrics::attempt("dead_lettered", status, duration);
            self.disable(sub, "failing", &format!("{count} consecutive failed attempts")).await?;
            let reason = "subscription_disabled";
            return self.dead_letter_failed(reason, sub, &f.error, status, log).await;
        }
        self.retry_or_dead_letter(sub, f, log).await
    }

    /// Schedules the next attempt (holds a FIFO head) while attempts are left, else
    /// dead-letters.
    async fn retry_or_dead_letter(
        &self,
        sub: &Subscription,
        f: Failed,
        log: Log,
    ) -> Result<(), Transient> {
        let (ctx, status, duration) = (self.ctx, f.status, f.duration);
        let plan = self.retry_config(sub);
        if !retry::has_attempts_left(&plan, self.state.attempt) {
            metrics::attempt("dead_lettered", status, duration);
            return self.dead_letter_failed("retries_exhausted", sub, &f.error, status, log).await;
        }
        metrics::attempt("failed", status, duration);
        let next = self.state.attempt + 1;
        let delay = retry::delay_before(&plan, next, f.retry_after, rand::random::<f64>());
        if self.fifo {
            return self.hold_head(sub, delay, log).await;
        }
        let failure = Failure { status, error: &f.error, at: self.now };
        let next = retry::Next { attempt: next, delay, schedule: &plan.schedule };
        let due =
            retry::schedule(ctx, &self.delivery, &self.state, &failure, &self.follow_up_id, next)
                .await?;
        let error = &f.error;
        job_log!(info, self, status = status.map(i64::from).unwrap_or(-1), %error, ms = duration.as_millis() as u64, retry_in = ?delay, "attempt failed; retry scheduled");
        self.log(sub, AttemptStatus::Failed, Log { next: Some(due), ..log }).await;
        Ok(())
    }

    /// The retry settings of this delivery: the schedule it started with (carried by its
    /// retries), else the subscription's own, else `retry.schedule`; jitter and the
    /// `Retry-After` cap are global.
    pub(super) fn retry_config(&self, sub: &Subscription) -> RetryConfig {
        let global = &self.ctx.config.retry;
        let schedule = self
            .state
            .schedule
            .clone()
            .or_else(|| sub.retry_schedule.clone())
            .unwrap_or_else(|| global.schedule.clone());
        RetryConfig { schedule, ..global.clone() }
    }

    /// FIFO: counts the failed attempt and keeps the message at the head for `delay`.
    pub(super) async fn hold_head(
        &self,
        sub: &Subscription,
        delay: Duration,
        log: Log,
    ) -> Result<(), Transient> {
        let mut redis = self.ctx.redis.clone();
        let key = fifo_key(self.ctx, &self.delivery.subscription_id, self.seq);
        redis::pipe()
            .incr(&key, 1)
            .ignore()
            .expire(&key, 7 * 86_400)
            .ignore()
            .query_async::<()>(&mut redis)
            .await
            .map_err(Transient::redis)?;
        let due = self.now + delay;
        job_log!(info, self, retry_in = ?delay, "fifo head failed; holding it (later deliveries of this subscription wait)");
        self.log(sub, AttemptStatus::Failed, Log { next: Some(due), ..log }).await;
        Err(Transient::hold(delay, "fifo head waiting for its retry"))
    }

    /// Counts the failure for the breaker and auto-disable; returns the consecutive count.
    pub(super) async fn count_failure(&self, sub: &Subscription) -> Result<u64, Transient> {
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
            .map_err(Transient::redis)?;
        if let Some(open_for) = count.opened {
            self.ctx.limits.note_breaker_open(&sub.id, open_for);
            job_log!(warn, self, failures = count.consecutive, ?open_for, "circuit breaker opened");
            metrics::inc("hookline_breaker_opened_total", &[]);
        }
        Ok(count.consecutive)
    }

    /// Deactivates the subscription (once across processes) and tells the world.
    pub(super) async fn disable(
        &self,
        sub: &Subscription,
        reason: &str,
        detail: &str,
    ) -> Result<(), Transient> {
        let ctx = self.ctx;
        if let Some(disabled) =
            ctx.subscriptions.disable(&sub.id, reason).await.map_err(Transient::redis)?
        {
            tracing::warn!(subscription_id = %sub.id, url = %sub.url, reason, detail, "subscription disabled; its pending deliveries go to the dlq");
            metrics::inc("hookline_subscriptions_disabled_total", &[("reason", reason)]);
            lifecycle::publish(&ctx.nats, &ctx.names, LifecycleKind::Disabled, &disabled).await;
        }
        Ok(())
    }
}
