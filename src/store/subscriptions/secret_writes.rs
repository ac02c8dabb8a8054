//! The store's writes of a subscription's secrets: rotation (a new current secret, the
//! previous one signing on for a grace period) and resealing with the current encryption key.

use async_nats::jetstream::kv;

use super::{
    OWN_CHANGE_TRIES, SigningSecret, Subscription, SubscriptionError, SubscriptionStore,
    bucket_error, codec, now,
};
use crate::signing::Secret;

impl SubscriptionStore {
    /// Makes a new current secret; the previous current one keeps signing for `grace` (expired
    /// ones are dropped). Returns the subscription with the new secret first.
    pub async fn rotate_secret(
        &self,
        id: &str,
        grace: std::time::Duration,
    ) -> Result<Subscription, SubscriptionError> {
        let old = self.require(id).await?;
        let at = now();
        let fresh = Secret::generate_of(old.key_type);
        let mut secrets = vec![SigningSecret { secret: fresh, expires_at: None }];
        for s in &old.secrets {
            let expires_at = s.expires_at.unwrap_or(at + grace).min(at + grace);
            if expires_at > at {
                secrets
                    .push(SigningSecret { secret: s.secret.clone(), expires_at: Some(expires_at) });
            }
        }
        let new = Subscription { secrets, updated_at: at, ..old.clone() };
        self.write(&old, new).await
    }

    /// Rewrites the subscription when a secret of it is not stored the way the current key
    /// writes (plain, or sealed with an older key); `false` when it already is, or is gone.
    /// Changes nothing else (not even `updated_at`); a concurrent change is met by reading again.
    pub async fn reseal(&self, id: &str) -> Result<bool, SubscriptionError> {
        let mut tries = 0;
        loop {
            let entry = self.kv.entry(id).await.map_err(|e| bucket_error("reading", id, e))?;
            let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                return Ok(false);
            };
            if codec::value_secrets_current(&entry.value, &self.secret_box) {
                return Ok(false);
            }
            let sub = codec::from_entry(&entry, &self.secret_box)?;
            match self.write(&sub, sub.clone()).await {
                Err(SubscriptionError::Conflict(_)) if tries + 1 < OWN_CHANGE_TRIES => tries += 1,
                other => return other.map(|_| true),
            }
        }
    }
}
