//! Subscriptions: create (with a fresh secret), get, list with filters, update, delete,
//! activate, deactivate, rotate secret, public keys, and reseal every secret with the current key. Each change publishes its lifecycle event; a change that
//! would change nothing is a conflict and publishes none. Create, update and activate run the
//! CloudEvents validation handshake when the subscription needs one (see `handshake`).

use super::{Ops, OpsError, Scope};
use crate::ids::{EventType, SubscriptionId, TenantId};
use crate::lifecycle::LifecycleKind;
use crate::store::subscriptions::{Subscription, SubscriptionInput};

/// Filters of a subscription list; `None` keeps everything.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this tenant's subscriptions.
    pub tenant_id: Option<TenantId>,
    /// Only subscriptions that receive this event type.
    pub event_type: Option<EventType>,
    /// Only active (true) or inactive (false) ones.
    pub active: Option<bool>,
}

impl ListFilter {
    /// Whether `s` passes every filter.
    pub fn keeps(&self, s: &Subscription) -> bool {
        self.tenant_id.as_ref().is_none_or(|t| s.tenant_id.as_deref() == Some(t.as_str()))
            && self.active.is_none_or(|a| s.active == a)
            && self.event_type.as_ref().is_none_or(|t| {
                s.event_types.is_empty() || s.filters().iter().any(|f| f.matches(t))
            })
    }
}

/// What [`Ops::reseal_subscriptions`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResealReport {
    /// Subscriptions looked at (all of them).
    pub examined: usize,
    /// Subscriptions rewritten (the others were already stored as the current key writes).
    pub rewritten: usize,
    /// The key every secret is now sealed with; `None`: stored plain (no encryption key).
    pub key_id: Option<String>,
}

fn not_found(id: &SubscriptionId) -> OpsError {
    OpsError::NotFound(format!("subscription {id} not found"))
}

impl Ops {
    /// Creates a subscription; its secret is in the result (shown to the caller only now).
    /// `url` is required; a tenant scope's subscription gets its tenant. With validation, the
    /// handshake runs first: a refused one is created inactive, with the reason.
    pub async fn create_subscription(
        &self,
        scope: &Scope,
        mut input: SubscriptionInput,
    ) -> Result<Subscription, OpsError> {
        if input.url.is_none() {
            return Err(OpsError::invalid("url", "url is required"));
        }
        let asked = match input.tenant_id.take() {
            Some(t) => Some(TenantId::parse(&t).map_err(|e| OpsError::bad_id("tenant_id", e))?),
            None => None,
        };
        input.tenant_id =
            scope.scope_tenant(asked, "create subscriptions")?.map(TenantId::into_string);
        let wanted = input.active.unwrap_or(true);
        let sub = self.store()?.create(input).await?;
        let sub = self.settle_handshake(sub, wanted).await?;
        self.notify(LifecycleKind::Created, &sub).await;
        Ok(sub)
    }

    /// One subscription the scope may see (without its secret in any rendering).
    pub async fn get_subscription(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
    ) -> Result<Subscription, OpsError> {
        match self.store()?.get(id).await? {
            Some(sub) if scope.sees(sub.tenant_id.as_deref()) => Ok(sub),
            _ => Err(not_found(id)),
        }
    }

    /// The subscriptions the scope sees that pass `filter`, oldest first.
    pub async fn list_subscriptions(
        &self,
        scope: &Scope,
        filter: &ListFilter,
    ) -> Result<Vec<Subscription>, OpsError> {
        Ok(self
            .store()?
            .list()
            .await?
            .into_iter()
            .filter(|s| scope.sees(s.tenant_id.as_deref()) && filter.keeps(s))
            .collect())
    }

    /// Changes the fields given in `input`; only an admin may move it to another tenant. A
    /// change of `active` also publishes `activated` / `deactivated`.
    pub async fn update_subscription(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
        input: SubscriptionInput,
    ) -> Result<Subscription, OpsError> {
        let before = self.get_subscription(scope, id).await?;
        if input.tenant_id.is_some() && *scope != Scope::Admin {
            return Err(OpsError::invalid(
                "tenant_id",
                "only an admin token can move a subscription to another tenant",
            ));
        }
        let wanted = input.active.unwrap_or(before.active || before.held_by_handshake());
        let sub = self.store()?.update(id, input).await?;
        let sub = self.settle_handshake(sub, wanted).await?;
        self.notify(LifecycleKind::Updated, &sub).await;
        if before.active != sub.active {
            let kind =
                if sub.active { LifecycleKind::Activated } else { LifecycleKind::Deactivated };
            self.notify(kind, &sub).await;
        }
        Ok(sub)
    }

    /// Deletes a subscription and its index entries.
    pub async fn delete_subscription(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
    ) -> Result<Subscription, OpsError> {
        self.get_subscription(scope, id).await?;
        let sub = self.store()?.delete(id).await?;
        self.notify(LifecycleKind::Deleted, &sub).await;
        Ok(sub)
    }

    /// Activates (`true`) or deactivates; a conflict when it already is, and when the
    /// validation handshake it needs first is refused (`handshake_refused`).
    pub async fn set_active(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
        active: bool,
    ) -> Result<Subscription, OpsError> {
        let before = self.get_subscription(scope, id).await?;
        if before.active == active {
            let state = if active { "active" } else { "inactive" };
            return Err(OpsError::Conflict {
                code: "conflict",
                message: format!("subscription {id} is already {state}"),
            });
        }
        let sub = if active && before.handshake.blocks_delivery() {
            let sub = self.settle_handshake(before, true).await?;
            if !sub.active {
                return Err(OpsError::Conflict {
                    code: "handshake_refused",
                    message: format!(
                        "subscription {id} stays inactive: {}",
                        sub.disabled_reason.as_deref().unwrap_or("handshake refused")
                    ),
                });
            }
            sub
        } else {
            self.store()?.set_active(id, active).await?
        };
        let kind = if active { LifecycleKind::Activated } else { LifecycleKind::Deactivated };
        self.notify(kind, &sub).await;
        Ok(sub)
    }

    /// A new current secret; the previous one keeps signing for the configured grace period.
    pub async fn rotate_secret(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
    ) -> Result<Subscription, OpsError> {
        self.get_subscription(scope, id).await?;
        let grace = self.config.api.rotation_grace();
        let sub = self.store()?.rotate_secret(id, grace).await?;
        self.notify(LifecycleKind::SecretRotated, &sub).await;
        Ok(sub)
    }

    /// The subscription and the `whpk_` public keys that verify its deliveries now, newest
    /// first; a conflict for an hmac subscription (it has none).
    pub async fn public_keys(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
    ) -> Result<(Subscription, Vec<String>), OpsError> {
        let sub = self.get_subscription(scope, id).await?;
        let keys = sub.live_public_keys(time::OffsetDateTime::now_utc());
        if keys.is_empty() {
            return Err(OpsError::Conflict {
                code: "no_public_key",
                message: format!(
                    "subscription {id} signs with an hmac secret (key_type hmac): it has no public key"
                ),
            });
        }
        Ok((sub, keys))
    }

    /// Rebuilds the Redis subscription index from the bucket now (`hookline admin reindex`):
    /// every process's fan-out holds events until it is complete. Returns how many
    /// subscriptions it holds.
    pub async fn reindex_subscriptions(&self) -> Result<usize, OpsError> {
        Ok(self.store()?.reindex().await?)
    }

    /// Rewrites every subscription whose secrets are not stored the way the current key writes
    /// (plain ones, or sealed with an older key), through the store's one write path; after it
    /// no secret is sealed with any other key, so older keys can leave
    /// `secrets.decryption_keys`. An operator's action (no tenant scope), publishing no
    /// lifecycle event: the subscriptions do not change. A secret sealed with a key that is not
    /// configured fails the whole run, naming the subscription and the key id.
    pub async fn reseal_subscriptions(&self) -> Result<ResealReport, OpsError> {
        let store = self.store()?;
        let subs = store.list().await?;
        let mut rewritten = 0;
        for sub in &subs {
            if store.reseal(&sub.id).await? {
                rewritten += 1;
            }
        }
        let key_id = store.secret_box().current_key_id().map(str::to_string);
        Ok(ResealReport { examined: subs.len(), rewritten, key_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::subscriptions::{BodyFormat, Ordering, SigningSecret};

    fn sub(types: &[&str], tenant: Option<&str>, active: bool) -> Subscription {
        let at = time::OffsetDateTime::UNIX_EPOCH;
        Subscription {
            id: "sub_1".into(),
            url: "https://example.com/".into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            tenant_id: tenant.map(str::to_string),
            description: String::new(),
            metadata: Default::default(),
            active,
            key_type: Default::default(),
            public_key: None,
            signature_schemes: vec![],
            body_format: BodyFormat::Envelope,
            max_in_flight: None,
            max_rps: None,
            disabled_reason: None,
            ordering: Ordering::Unordered,
            headers: Default::default(),
            handshake: Default::default(),
            retry_schedule: None,
            filter: None,
            created_at: at,
            updated_at: at,
            secrets: vec![SigningSecret {
                secret: crate::signing::Secret::generate(),
                expires_at: None,
            }],
            revision: 0,
        }
    }

    #[test]
    fn list_filters_combine_tenant_activity_and_event_type() {
        let by_type =
            ListFilter { event_type: Some("order.created".parse().unwrap()), ..Default::default() };
        assert!(by_type.keeps(&sub(&["order.*"], None, true)));
        assert!(by_type.keeps(&sub(&[], None, true)), "no filter receives every type");
        assert!(!by_type.keeps(&sub(&["invoice.paid"], None, true)));
        let acme_inactive = ListFilter {
            tenant_id: Some("acme".parse().unwrap()),
            active: Some(false),
            ..Default::default()
        };
        assert!(acme_inactive.keeps(&sub(&[], Some("acme"), false)));
        assert!(!acme_inactive.keeps(&sub(&[], Some("acme"), true)));
        assert!(!acme_inactive.keeps(&sub(&[], None, false)));
        assert!(ListFilter::default().keeps(&sub(&["x"], Some("t"), false)));
    }
}
