//! When the CloudEvents validation handshake runs: inline, in the call that creates a
//! subscription with `validation: cloudevents`, changes its url, switches validation on, or
//! activates one whose handshake has not succeeded; bounded by `delivery.handshake_timeout`.
//! A refusal is stored (inactive, with the reason) and never fails the call with a 5xx; only an
//! explicit activate answers it with a conflict, since the asked state change did not happen.

use super::{BackendError, Ops, OpsError};
use crate::store::subscriptions::{Subscription, Validation, ValidationStatus};

impl Ops {
    /// Runs `sub`'s handshake when it needs one (pending, or `wanted` active while not allowed)
    /// and stores the verdict; `wanted`: whether it should be active once allowed.
    pub(super) async fn settle_handshake(
        &self,
        sub: Subscription,
        wanted: bool,
    ) -> Result<Subscription, OpsError> {
        let h = &sub.handshake;
        let needed = h.validation == Validation::Cloudevents
            && (h.status == Some(ValidationStatus::Pending) || (wanted && h.blocks_delivery()));
        if !needed {
            return Ok(sub);
        }
        let http =
            self.http.as_ref().ok_or(OpsError::Backend(BackendError::NotConnected("http")))?;
        let delivery = &self.config.delivery;
        // Ask for what hookline would send anyway: the subscription's rate limit, per minute.
        let rps = sub.max_rps.unwrap_or(self.config.health.max_rps_per_endpoint);
        let rate = (rps > 0).then(|| rps.saturating_mul(60));
        let verdict = crate::pipeline::handshake::validate(
            http,
            &sub.url,
            &delivery.webhook_origin,
            rate,
            delivery.handshake_timeout,
        )
        .await;
        tracing::info!(subscription = %sub.id, ?verdict, "validation handshake");
        Ok(self.store()?.record_handshake(&sub.id, &sub.url, &verdict, wanted).await?)
    }
}
