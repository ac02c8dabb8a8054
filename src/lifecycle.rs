//! Subscription lifecycle events on plain NATS subjects `<p>.lifecycle.<kind>`, so other
//! services can react to subscriptions being created, changed, disabled or rotated. The
//! payload is the subscription as shown by the API (never a secret).
//!
//! Published with core NATS (fire and forget): lifecycle events are notifications, the source
//! of truth stays in Redis.

use serde::Serialize;
use time::OffsetDateTime;

use crate::store::subscriptions::Subscription;
use crate::subjects::Names;

/// What happened to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleKind {
    Created,
    Updated,
    Deleted,
    Activated,
    Deactivated,
    Disabled,
    SecretRotated,
}

impl LifecycleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleKind::Created => "created",
            LifecycleKind::Updated => "updated",
            LifecycleKind::Deleted => "deleted",
            LifecycleKind::Activated => "activated",
            LifecycleKind::Deactivated => "deactivated",
            LifecycleKind::Disabled => "disabled",
            LifecycleKind::SecretRotated => "secret_rotated",
        }
    }
}

/// The JSON body of a lifecycle event.
#[derive(Debug, Serialize)]
pub struct LifecycleEvent<'a> {
    pub kind: LifecycleKind,
    pub subscription: &'a Subscription,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Publishes `kind` for `sub`; a failure is logged (the change itself already happened).
pub async fn publish(
    nats: &async_nats::Client,
    names: &Names,
    kind: LifecycleKind,
    sub: &Subscription,
) {
    let event = LifecycleEvent { kind, subscription: sub, at: OffsetDateTime::now_utc() };
    let body = match serde_json::to_vec(&event) {
        Ok(b) => b,
        Err(e) => return tracing::error!(error = %e, "cannot encode lifecycle event"),
    };
    if let Err(e) = nats.publish(names.lifecycle(kind.as_str()), body.into()).await {
        tracing::warn!(error = %e, subscription_id = %sub.id, kind = kind.as_str(), "lifecycle event not published");
    }
}
