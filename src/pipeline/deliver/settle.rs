//! How a delivery is settled without a 2xx, and what every path writes: a deferral (the same
//! attempt rescheduled, no attempt used), a dead letter (its DLQ entry acknowledged before the
//! message is acked), and the attempt-log record (queued for the background writer).

use std::time::Duration;

use time::OffsetDateTime;

use super::Job;
use crate::attempt_record::{AttemptRecord, AttemptStatus, FailureKind};
use crate::metrics;
use crate::pipeline::Transient;
use crate::pipeline::dlq::{self, Entry};
use crate::pipeline::retry::{self, Failure};
use crate::store::subscriptions::Subscription;

/// What the attempt log gets for one attempt.
#[derive(Default)]
pub(super) struct Log {
    pub(super) http: Option<(u16, Duration)>,
    pub(super) error: Option<String>,
    pub(super) kind: Option<FailureKind>,
    pub(super) body: Option<String>,
    pub(super) next: Option<OffsetDateTime>,
}

impl Job<'_> {
    /// Reschedules this attempt unchanged (no attempt is used).
    pub(super) async fn defer(
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
            &self.follow_up_id,
            retry::Next {
                attempt: self.state.attempt,
                delay: wait,
                schedule: &self.retry_config(sub).schedule,
            },
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

    /// Dead-letters a delivery whose attempt failed, with the attempt's status and error.
    pub(super) async fn dead_letter_failed(
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
        dlq::publish_delivery(self.ctx, &self.delivery, &entry, self.subject, self.seq).await?;
        metrics::inc("hookline_dead_letters_total", &[("reason", reason)]);
        self.log(sub, AttemptStatus::DeadLettered, log).await;
        Ok(())
    }

    /// Dead-letters a delivery that was never attempted (or could not be), with why.
    pub(super) async fn dead_letter(
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
        dlq::publish_delivery(self.ctx, &self.delivery, &entry, self.subject, self.seq).await?;
        metrics::inc("hookline_dead_letters_total", &[("reason", reason)]);
        let tenant = sub
            .and_then(|s| s.tenant_id.clone())
            .or_else(|| self.delivery.event.tenant_id.as_ref().map(|t| t.to_string()));
        self.write_log(
            tenant,
            AttemptStatus::DeadLettered,
            Log { error: Some(format!("{reason}: {detail}")), ..Log::default() },
        )
        .await;
        Ok(())
    }

    /// Records the attempt under the subscription's tenant.
    pub(super) async fn log(&self, sub: &Subscription, status: AttemptStatus, log: Log) {
        self.write_log(sub.tenant_id.clone(), status, log).await;
    }

    /// Queues the attempt record (written with its stats in the background, in batches).
    async fn write_log(&self, tenant_id: Option<String>, status: AttemptStatus, log: Log) {
        let ctx = self.ctx;
        let record = AttemptRecord {
            attempt_id: format!("att_{}", uuid::Uuid::now_v7().simple()),
            subscription_id: self.delivery.subscription_id.to_string(),
            event_id: self.delivery.event.event_id.to_string(),
            event_type: self.delivery.event.event_type.to_string(),
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
            test: false,
        };
        ctx.attempts.record(record).await;
    }
}
