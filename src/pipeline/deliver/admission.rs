//! Before the POST: the subscription read from the exact cache, then one Redis script
//! ([`crate::store::health::Health::admit`]) for the dedupe, the age bound and the endpoint's
//! health gates; what is not admitted is acked as a duplicate, dead-lettered or deferred here.

use std::sync::Arc;
use std::time::Duration;

use super::{FULL_RETRIES_MS, Job, busy_endpoint_wait};
use crate::attempt_record::AttemptStatus;
use crate::config::Config;
use crate::limiter::Lease;
use crate::pipeline::Transient;
use crate::store::health::{Admission, Admit};
use crate::store::subscriptions::Subscription;

/// What reading the subscription came to.
pub(super) enum Read {
    /// Active: deliver with this copy, read at this version.
    Active(Arc<Subscription>, Arc<str>),
    /// It changed between two reads: read again.
    Changed,
    /// Inactive or unknown: the delivery was dead-lettered.
    Settled,
}

/// How long one request holds its claim and lease at most: the request timeout and a margin for
/// what follows the POST.
pub(super) fn request_lease(config: &Config) -> Duration {
    config.delivery.request_timeout + Duration::from_secs(5)
}

impl Job<'_> {
    /// Reads the subscription; an inactive or unknown one dead-letters the delivery.
    pub(super) async fn read_subscription(&self) -> Result<Read, Transient> {
        let (ctx, sub_id) = (self.ctx, &self.delivery.subscription_id);
        let (sub, version) =
            ctx.cache.subscription(sub_id, false).await.map_err(Transient::redis)?;
        if let Some(sub) = sub.filter(|s| s.active) {
            return Ok(Read::Active(sub, version));
        }
        // Dead-lettering must not rest on a cached copy: read it again first.
        match ctx.cache.subscription(sub_id, true).await.map_err(Transient::redis)?.0 {
            Some(sub) if sub.active => Ok(Read::Changed),
            Some(sub) => self.inactive(&sub).await.map(|()| Read::Settled),
            None => {
                let detail = format!("subscription {sub_id} does not exist");
                self.dead_letter("unknown_subscription", &detail, None).await?;
                Ok(Read::Settled)
            }
        }
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

    /// How long to defer when no local permit came within the wait.
    pub(super) fn no_permit_wait(&self) -> Duration {
        // A hanging endpoint frees nothing before its requests time out: come back then (spread
        // over the second half of the timeout) instead of every few moments — each return
        // costs a deferral, and a deep backlog of such returns costs the healthy endpoints
        // their CPU (the isolation benchmark).
        if self.ctx.limits.is_busy(&self.delivery.subscription_id) {
            busy_endpoint_wait(self.ctx)
        } else {
            Duration::from_millis(200 + rand::random::<u64>() % 800)
        }
    }

    /// What [`crate::store::health::Health::admit`] is asked for this delivery.
    pub(super) fn admit_request<'a>(
        &self,
        sub: &Subscription,
        version: &'a str,
        inbox_key: &'a str,
        limit: u32,
        pooled: Option<&'a Lease>,
    ) -> Admit<'a> {
        let (config, now) = (&self.ctx.config, self.now);
        Admit {
            version,
            inbox_key,
            expired: now - self.state.first_attempt_at > config.health.max_delivery_age,
            probe_timeout: config.delivery.request_timeout + Duration::from_secs(5),
            min_interval: sub.min_request_interval(config.health.max_rps_per_endpoint),
            limit,
            lease: request_lease(config),
            pooled,
            breaker_maybe_open: self.ctx.limits.breaker_maybe_open(&sub.id),
        }
    }

    /// One admission round trip, asked again a moment later while it says "full".
    pub(super) async fn admit(&self, admit: &Admit<'_>) -> Result<Admission, Transient> {
        let sub_id = &self.delivery.subscription_id;
        let mut admission = self.health().admit(sub_id, admit).await.map_err(Transient::redis)?;
        // "Full" right after taking a local permit is mostly a lease of this process whose
        // return (sent after its permit was dropped, possibly queued behind other commands)
        // Redis has not seen yet: ask again a moment later rather than pay a deferral (~0.6 %
        // of all deliveries were deferred so in the fan-out benchmark, none with this). Truly
        // full across processes, it is deferred by the caller.
        for pause_ms in FULL_RETRIES_MS {
            if admission != Admission::Full {
                break;
            }
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            admission = self.health().admit(sub_id, admit).await.map_err(Transient::redis)?;
        }
        Ok(admission)
    }

    /// Settles a delivery that was not admitted (and is not stale).
    pub(super) async fn not_admitted(
        &self,
        sub: &Subscription,
        admission: Admission,
    ) -> Result<(), Transient> {
        match admission {
            Admission::Duplicate => {
                job_log!(info, self, "already delivered; acking the duplicate without a request");
                self.log(sub, AttemptStatus::SkippedDuplicate, Default::default()).await;
                Ok(())
            }
            Admission::Expired => {
                let age = self.now - self.state.first_attempt_at;
                let detail = format!("delivery is {age} old");
                self.dead_letter("max_age_exceeded", &detail, Some(sub)).await
            }
            Admission::BreakerOpen { retry_in } => {
                self.ctx.limits.note_breaker_open(&sub.id, retry_in);
                self.defer(sub, retry_in, "breaker_open", None).await
            }
            Admission::RateLimited { wait } => self.defer(sub, wait, "rate_limited", None).await,
            Admission::InFlight => {
                // Held, not deferred: a redelivery of this very message must not schedule a copy
                // of it, and the other copy answers within a request timeout; then this one
                // finds the pair in the inbox (or sends it, if that attempt failed).
                job_log!(
                    info,
                    self,
                    "another copy of this delivery is being sent; holding this one"
                );
                let wait = Duration::from_millis(500 + rand::random::<u64>() % 1000);
                Err(Transient::hold(wait, "another copy is being sent"))
            }
            // Full across processes (Stale and Admitted are the caller's).
            Admission::Full | Admission::Admitted { .. } | Admission::Stale => {
                let wait = Duration::from_millis(200 + rand::random::<u64>() % 800);
                self.defer(sub, wait, "in_flight_limit", None).await
            }
        }
    }
}
