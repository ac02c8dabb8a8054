//! Subscriptions: the model, what a caller may ask for, and its validation (no Redis here; the
//! store is the parent module).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::handshake::{Handshake, Validation};
#[path = "body_format.rs"]
mod body_format;
use super::headers::{BadHeader, CustomHeaders};
use crate::filter::{EventFilter, InvalidFilter};
use crate::ids::TenantId;
use crate::payload_filter::{InvalidPayloadFilter, PayloadFilter};
use crate::signing::{KeyType, Secret};
use crate::store::StoreError;
pub use body_format::BodyFormat;

/// Additional, non-standard signature schemes a subscription may ask for (for receivers built
/// on libraries that do not speak Standard Webhooks); the Standard Webhooks headers are always
/// sent as well.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret string, raw body)>` with
    /// `X-Webhook-Event-Type`, `X-Webhook-Event-ID`, `X-Webhook-Timestamp` (ISO-8601).
    WebhookSha256,
    /// `X-Signature: <hex HMAC-SHA256(secret string, body)>`, the body sent as canonical JSON
    /// (sorted keys, compact, ASCII) so a receiver that re-serialises the parsed body gets the
    /// same bytes.
    XSignatureCanonical,
}

/// Delivery order of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Concurrent deliveries; retries do not block later events (the default).
    #[default]
    Unordered,
    /// One delivery at a time in publish order; a failing head blocks only this subscription.
    Fifo,
}

/// One signing secret; a rotated-out secret keeps signing until `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningSecret {
    pub secret: Secret,
    pub expires_at: Option<OffsetDateTime>,
}

/// A stored subscription (secrets are kept apart from what is displayed).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    #[schema(value_type = crate::ids::SubscriptionId)]
    pub id: String,
    pub url: String,
    /// Empty means every event type.
    #[schema(value_type = Vec<crate::ids::EventTypeFilter>)]
    pub event_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TenantId>)]
    pub tenant_id: Option<String>,
    pub description: String,
    /// Free key/value pairs for the owner's use.
    pub metadata: BTreeMap<String, String>,
    pub active: bool,
    /// `hmac` (`v1` signatures with a `whsec_` secret, the default) or `ed25519` (`v1a`
    /// signatures; receivers verify with `public_key`). Fixed at create.
    pub key_type: KeyType,
    /// ed25519 only: the current public key, `whpk_...` (the signing key is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^whpk_[A-Za-z0-9+/]+={0,2}$")]
    pub public_key: Option<String>,
    /// Extra signature schemes besides Standard Webhooks.
    pub signature_schemes: Vec<SignatureScheme>,
    pub body_format: BodyFormat,
    /// Override of `health.max_in_flight_per_endpoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Override of `health.max_rps_per_endpoint` (0: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rps: Option<u32>,
    /// Why hookline deactivated it (`failing`, `gone`), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Unordered (default) or fifo.
    pub ordering: Ordering,
    /// Payload filter (compiled once, here): only events whose payload matches are delivered.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::options::filter_document"
    )]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Arc<PayloadFilter>>,
    /// Delays before each attempt, overriding `retry.schedule` (its length is the attempt
    /// budget); absent: the global schedule.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::options::schedule_text"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub retry_schedule: Option<Vec<std::time::Duration>>,
    /// Custom request headers: names only, every value shown as `[redacted]`.
    #[serde(skip_serializing_if = "CustomHeaders::is_empty")]
    pub headers: CustomHeaders,
    /// The CloudEvents validation handshake: `validation`, `validation_status`,
    /// `allowed_rate_per_minute` (see `handshake`).
    #[serde(flatten)]
    pub handshake: Handshake,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Newest first; the first one is current.
    #[serde(skip)]
    #[schema(ignore)]
    pub secrets: Vec<SigningSecret>,
    /// The bucket revision this copy was read at (0: not from the bucket).
    #[serde(skip)]
    #[schema(ignore)]
    pub revision: u64,
}

impl Subscription {
    /// The current (newest) secret.
    pub fn current_secret(&self) -> &Secret {
        &self.secrets[0].secret
    }

    /// The same subscription with `key_type` and `public_key` read from its current key (every
    /// path that builds or changes one calls this, so they never disagree with the keys).
    pub fn with_derived_keys(mut self) -> Subscription {
        let current = self.secrets.first().map(|s| &s.secret);
        self.key_type = current.map(Secret::key_type).unwrap_or_default();
        self.public_key = current.and_then(Secret::public_key).map(|p| p.expose());
        self
    }

    /// The public keys of the keys that sign at `now`, newest first (empty for hmac).
    pub fn live_public_keys(&self, now: OffsetDateTime) -> Vec<String> {
        self.live_secrets(now).iter().filter_map(Secret::public_key).map(|p| p.expose()).collect()
    }

    /// Secrets that sign deliveries at `now`: the current one and rotated ones still in their
    /// grace window.
    pub fn live_secrets(&self, now: OffsetDateTime) -> Vec<Secret> {
        self.secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|at| at > now))
            .map(|s| s.secret.clone())
            .collect()
    }

    /// The parsed filters (validated on write, so parsing cannot fail for stored ones).
    pub fn filters(&self) -> Vec<EventFilter> {
        self.event_types.iter().filter_map(|t| EventFilter::parse(t).ok()).collect()
    }

    /// Whether `payload` passes this subscription's payload filter (none: every payload).
    pub fn accepts_payload(&self, payload: &serde_json::Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(payload))
    }

    /// Whether this subscription should receive an event of `event_type` from `tenant`.
    pub fn accepts(&self, event_type: &str, tenant: Option<&str>) -> bool {
        let tenant_ok = match (tenant, self.tenant_id.as_deref()) {
            (Some(event_tenant), Some(own)) => event_tenant == own,
            _ => true,
        };
        let type_ok =
            self.event_types.is_empty() || self.filters().iter().any(|f| f.matches(event_type));
        self.active && tenant_ok && type_ok
    }
}

/// Input of `create` (and the fields `update` may change; also the body of
/// `PATCH /v1/subscriptions/{id}`, where every field is optional).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    /// http(s) endpoint with a host and no fragment; its addresses must pass the egress policy.
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+[^#]*$",
        min_length = 8,
        max_length = 2048
    )]
    pub url: Option<String>,
    /// Exact types or NATS wildcards; empty = every event.
    #[schema(value_type = Option<Vec<crate::ids::EventTypeFilter>>)]
    pub event_types: Option<Vec<String>>,
    /// A tenant id, or "" to remove the tenant (admin tokens only).
    #[schema(pattern = "^[A-Za-z0-9_.:-]{0,128}$", max_length = 128)]
    pub tenant_id: Option<String>,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// At most 32 entries; keys of 1-64, values of at most 512 characters.
    pub metadata: Option<BTreeMap<String, String>>,
    pub active: Option<bool>,
    pub signature_schemes: Option<Vec<SignatureScheme>>,
    /// `hmac` (default) or `ed25519`; create only (an update may repeat the current one).
    pub key_type: Option<KeyType>,
    pub body_format: Option<BodyFormat>,
    /// `Some(0)` clears the override.
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub max_in_flight: Option<u32>,
    /// `Some(0)` means unlimited.
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub max_rps: Option<u32>,
    pub ordering: Option<Ordering>,
    /// Payload filter: a JSON document matched against each event's payload (operators `$eq
    /// $ne $gt $gte $lt $lte $in $nin $exists $prefix`, combinators `$and $or $not`, dotted
    /// paths); `{}` removes it.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// Delays before each attempt (`["0s", "1m", "10m"]`), overriding `retry.schedule` for this
    /// subscription: 1-100 durations of at most 30 days; `[]` on update returns to the global
    /// schedule.
    #[schema(max_items = 100)]
    pub retry_schedule: Option<Vec<String>>,
    /// Custom headers sent with every request (replaces the whole set; `{}` removes them). At
    /// most 20; no hop-by-hop header and none hookline sets (`webhook-*`, `*signature*`,
    /// `content-*`, `host`, `user-agent`); values are stored like secrets and shown redacted.
    pub headers: Option<BTreeMap<String, String>>,
    /// `cloudevents`: the endpoint must agree in the CloudEvents validation handshake before
    /// the subscription becomes active (run at once, and again on a new url); `none` (default).
    pub validation: Option<Validation>,
}

/// A rejected subscription input; names the field.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("invalid url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error(transparent)]
    BadFilter(#[from] InvalidFilter),
    #[error("invalid tenant_id {0:?}: {rule}", rule = TenantId::RULE)]
    BadTenant(String),
    #[error("description is longer than 1024 characters")]
    DescriptionTooLong,
    #[error(
        "metadata must have at most 32 entries, keys of 1-64 and values of at most 512 characters"
    )]
    BadMetadata,
    #[error(transparent)]
    BadHeader(#[from] BadHeader),
    #[error("key_type is fixed when a subscription is created (this one's is {0:?})")]
    KeyTypeFixed(KeyType),
    #[error(
        "signature_schemes are HMAC schemes: a subscription with key_type ed25519 cannot use them"
    )]
    SchemesNeedHmac,
    #[error("invalid retry_schedule: {0}")]
    BadRetrySchedule(String),
    #[error(transparent)]
    BadPayloadFilter(#[from] InvalidPayloadFilter),
    #[error("subscription {0} not found")]
    NotFound(String),
    #[error("invalid subscription id {0:?}: {rule}", rule = crate::ids::SubscriptionId::RULE)]
    BadId(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The compare-and-set on the bucket revision lost: someone else changed it meanwhile.
    #[error("subscription {0} was changed by someone else meanwhile; read it again and retry")]
    Conflict(String),
    /// The bucket (NATS) failed.
    #[error("{0}")]
    Bucket(String),
    /// Redis's index is being rebuilt from the bucket (or was found missing): fan-out waits.
    #[error("the subscription index in redis is being rebuilt from the bucket")]
    IndexNotReady,
}

impl SubscriptionError {
    /// The input field at fault, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            SubscriptionError::BadUrl { .. } => Some("url"),
            SubscriptionError::BadFilter(_) => Some("event_types"),
            SubscriptionError::BadTenant(_) => Some("tenant_id"),
            SubscriptionError::DescriptionTooLong => Some("description"),
            SubscriptionError::BadMetadata => Some("metadata"),
            SubscriptionError::BadHeader(_) => Some("headers"),
            SubscriptionError::BadRetrySchedule(_) => Some("retry_schedule"),
            SubscriptionError::KeyTypeFixed(_) => Some("key_type"),
            SubscriptionError::SchemesNeedHmac => Some("signature_schemes"),
            SubscriptionError::BadPayloadFilter(_) => Some("filter"),
            SubscriptionError::BadId(_) => Some("id"),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    pub(crate) fn sub(types: &[&str], tenant: Option<&str>) -> Subscription {
        Subscription {
            id: "sub_1".into(),
            url: "http://x".into(),
            event_types: types.iter().map(|s| s.to_string()).collect(),
            tenant_id: tenant.map(str::to_string),
            description: String::new(),
            metadata: BTreeMap::new(),
            active: true,
            key_type: KeyType::Hmac,
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
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            secrets: vec![SigningSecret { secret: Secret::generate(), expires_at: None }],
            revision: 0,
        }
    }

    #[test]
    fn no_filter_accepts_every_type() {
        assert!(sub(&[], None).accepts("anything.here", None));
    }

    #[test]
    fn tenant_must_match_when_both_have_one() {
        assert!(sub(&[], Some("t1")).accepts("a", Some("t1")));
        assert!(!sub(&[], Some("t1")).accepts("a", Some("t2")));
        assert!(sub(&[], None).accepts("a", Some("t2")), "tenant-less subscriptions are global");
        assert!(
            sub(&[], Some("t1")).accepts("a", None),
            "tenant-less events go to every matching subscription"
        );
    }

    #[test]
    fn inactive_accepts_nothing() {
        let mut s = sub(&[], None);
        s.active = false;
        assert!(!s.accepts("a", None));
    }

    #[test]
    fn only_unexpired_secrets_are_live() {
        let now = OffsetDateTime::now_utc();
        let mut s = sub(&[], None);
        let old = Secret::generate();
        let dead = Secret::generate();
        s.secrets.push(SigningSecret {
            secret: old.clone(),
            expires_at: Some(now + time::Duration::hours(1)),
        });
        s.secrets.push(SigningSecret {
            secret: dead,
            expires_at: Some(now - time::Duration::seconds(1)),
        });
        assert_eq!(s.live_secrets(now), vec![s.current_secret().clone(), old]);
    }
}
