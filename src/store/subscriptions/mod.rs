//! Subscriptions in Redis and the indexes fan-out uses to find the ones an event matches.
//!
//! Layout (all keys under `<p>:`):
//! - `sub:<id>`: hash with id, url, event_types (JSON list), tenant_id, description, active,
//!   secret, created_at, updated_at;
//! - `subs`: set of every id (for `list`);
//! - `idx:all`: ids with no filter; `idx:type:<type>`: ids with that exact filter;
//!   `idx:patterns`: the wildcard filters in use; `idx:pattern:<pattern>`: ids per wildcard.
//!
//! A lookup reads the few index sets that can match an event type, never every subscription, so
//! its cost grows with the number of matches and distinct wildcard patterns only. Writes change
//! the hash and its index entries in one MULTI transaction, together with `subs:version`, the
//! token the in-process [`super::cache`] checks (a change made by hand with `redis-cli` must
//! `SET <p>:subs:version` to something new, or running processes keep their cached copy).
//!
//! Files: this one creates, reads, changes and deletes; `index` keeps the indexes and is the one
//! write path; `codec` turns a subscription into its hash and back; `model` holds the types and
//! their validation.

use crate::store::RedisConn;
use redis::AsyncCommands;
use time::OffsetDateTime;

mod codec;
mod index;
mod model;

pub use model::*;
use model::{dedup_schemes, validate_filters, validate_metadata, validate_tenant};

use super::Doing;
use crate::signing::Secret;
use crate::subjects::Names;
use codec::decode;

/// `<p>:subs:version`: a token replaced by every subscription write (see [`super::cache`]).
const VERSION_KEY: &str = "subs:version";

/// The key of the subscriptions' version token.
pub fn version_key(names: &Names) -> String {
    names.key(VERSION_KEY)
}

/// Subscription storage bound to one prefix.
#[derive(Clone)]
pub struct SubscriptionStore {
    conn: RedisConn,
    names: Names,
    egress: std::sync::Arc<crate::egress::EgressPolicy>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| OffsetDateTime::now_utc())
}

impl SubscriptionStore {
    pub fn new(conn: RedisConn, names: Names) -> SubscriptionStore {
        SubscriptionStore { conn, names, egress: Default::default() }
    }

    /// The same store checking endpoint URLs against `egress` (the default is the strict policy:
    /// no allow-list).
    pub fn with_egress(
        mut self,
        egress: std::sync::Arc<crate::egress::EgressPolicy>,
    ) -> SubscriptionStore {
        self.egress = egress;
        self
    }

    fn hash_key(&self, id: &str) -> String {
        self.names.key(&format!("sub:{id}"))
    }

    /// Creates a subscription with a fresh secret; validates everything before writing.
    pub async fn create(
        &self,
        input: SubscriptionInput,
    ) -> Result<Subscription, SubscriptionError> {
        let url = input.url.unwrap_or_default();
        check_endpoint(&url, &self.egress).await?;
        let event_types = validate_filters(&input.event_types.unwrap_or_default())?;
        if let Some(t) = &input.tenant_id {
            validate_tenant(t)?;
        }
        let description = input.description.unwrap_or_default();
        if description.len() > 1024 {
            return Err(SubscriptionError::DescriptionTooLong);
        }
        let metadata = input.metadata.unwrap_or_default();
        validate_metadata(&metadata)?;
        let at = now();
        let sub = Subscription {
            id: crate::ids::SubscriptionId::generate().into_string(),
            url,
            event_types,
            tenant_id: input.tenant_id,
            description,
            metadata,
            active: input.active.unwrap_or(true),
            signature_schemes: dedup_schemes(input.signature_schemes.unwrap_or_default()),
            body_format: input.body_format.unwrap_or_default(),
            max_in_flight: input.max_in_flight.filter(|n| *n > 0),
            max_rps: input.max_rps,
            disabled_reason: None,
            ordering: input.ordering.unwrap_or_default(),
            created_at: at,
            updated_at: at,
            secrets: vec![SigningSecret { secret: Secret::generate(), expires_at: None }],
        };
        self.write(None, &sub).await?;
        Ok(sub)
    }

    /// One subscription, or `None`.
    pub async fn get(&self, id: &str) -> Result<Option<Subscription>, SubscriptionError> {
        Ok(self.get_versioned(id).await?.0)
    }

    /// One subscription and the [`version_key`] token read just before it (for
    /// [`super::cache`]: the data is at least as new as the token).
    pub async fn get_versioned(
        &self,
        id: &str,
    ) -> Result<(Option<Subscription>, String), SubscriptionError> {
        if !crate::ids::SubscriptionId::is_valid(id) {
            return Err(SubscriptionError::BadId(id.to_string()));
        }
        let mut conn = self.conn.clone();
        let (version, fields): (Option<String>, Vec<(String, String)>) = redis::pipe()
            .get(self.names.key(VERSION_KEY))
            .hgetall(self.hash_key(id))
            .query_async(&mut conn)
            .await
            .doing(|| format!("reading subscription {id}"))?;
        let version = version.unwrap_or_default();
        if fields.is_empty() {
            return Ok((None, version));
        }
        Ok((Some(decode(id, fields)?), version))
    }

    /// Like `get`, but a missing subscription is an error.
    pub async fn require(&self, id: &str) -> Result<Subscription, SubscriptionError> {
        self.get(id).await?.ok_or_else(|| SubscriptionError::NotFound(id.to_string()))
    }

    /// Every subscription, oldest first.
    pub async fn list(&self) -> Result<Vec<Subscription>, SubscriptionError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> =
            conn.smembers(self.names.key("subs")).await.doing(|| "listing subscriptions".into())?;
        let mut subs = self.load_many(ids).await?;
        subs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(subs)
    }

    /// Changes url, filters, tenant or description; keeps the secret.
    pub async fn update(
        &self,
        id: &str,
        input: SubscriptionInput,
    ) -> Result<Subscription, SubscriptionError> {
        let old = self.require(id).await?;
        let mut new = old.clone();
        if let Some(url) = input.url {
            check_endpoint(&url, &self.egress).await?;
            new.url = url;
        }
        if let Some(types) = input.event_types {
            new.event_types = validate_filters(&types)?;
        }
        if let Some(tenant) = input.tenant_id {
            if tenant.is_empty() {
                new.tenant_id = None;
            } else {
                validate_tenant(&tenant)?;
                new.tenant_id = Some(tenant);
            }
        }
        if let Some(description) = input.description {
            if description.len() > 1024 {
                return Err(SubscriptionError::DescriptionTooLong);
            }
            new.description = description;
        }
        if let Some(metadata) = input.metadata {
            validate_metadata(&metadata)?;
            new.metadata = metadata;
        }
        if let Some(active) = input.active {
            new.active = active;
            if active {
                new.disabled_reason = None;
            }
        }
        if let Some(n) = input.max_in_flight {
            new.max_in_flight = (n > 0).then_some(n);
        }
        if let Some(n) = input.max_rps {
            new.max_rps = Some(n);
        }
        if let Some(o) = input.ordering {
            new.ordering = o;
        }
        if let Some(schemes) = input.signature_schemes {
            new.signature_schemes = dedup_schemes(schemes);
        }
        if let Some(format) = input.body_format {
            new.body_format = format;
        }
        new.updated_at = now();
        self.write(Some(&old), &new).await?;
        Ok(new)
    }

    /// Activates or deactivates; an inactive subscription receives nothing new.
    pub async fn set_active(
        &self,
        id: &str,
        active: bool,
    ) -> Result<Subscription, SubscriptionError> {
        let old = self.require(id).await?;
        let disabled_reason = if active { None } else { old.disabled_reason.clone() };
        let new = Subscription { active, disabled_reason, updated_at: now(), ..old.clone() };
        self.write(Some(&old), &new).await?;
        Ok(new)
    }

    /// Deactivates on hookline's own decision (`failing`, `gone`); `None` when it was already
    /// inactive (another process got there first), so only one disable event is published.
    pub async fn disable(
        &self,
        id: &str,
        reason: &str,
    ) -> Result<Option<Subscription>, SubscriptionError> {
        let old = self.require(id).await?;
        if !old.active {
            return Ok(None);
        }
        let new = Subscription {
            active: false,
            disabled_reason: Some(reason.to_string()),
            updated_at: now(),
            ..old.clone()
        };
        self.write(Some(&old), &new).await?;
        Ok(Some(new))
    }

    /// Makes a new current secret; the previous current one keeps signing for `grace` (expired
    /// ones are dropped). Returns the subscription with the new secret first.
    pub async fn rotate_secret(
        &self,
        id: &str,
        grace: std::time::Duration,
    ) -> Result<Subscription, SubscriptionError> {
        let old = self.require(id).await?;
        let at = now();
        let mut secrets = vec![SigningSecret { secret: Secret::generate(), expires_at: None }];
        for s in &old.secrets {
            let expires_at = s.expires_at.unwrap_or(at + grace).min(at + grace);
            if expires_at > at {
                secrets
                    .push(SigningSecret { secret: s.secret.clone(), expires_at: Some(expires_at) });
            }
        }
        let new = Subscription { secrets, updated_at: at, ..old.clone() };
        self.write(Some(&old), &new).await?;
        Ok(new)
    }

    /// Deletes the subscription and its index entries.
    pub async fn delete(&self, id: &str) -> Result<Subscription, SubscriptionError> {
        let old = self.require(id).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.del(self.hash_key(id)).ignore();
        pipe.srem(self.names.key("subs"), id).ignore();
        // Its attempt index goes too (the records themselves age out of the stream).
        pipe.del(self.names.key(&format!("att:sub:{id}"))).ignore();
        self.unindex(&mut pipe, &old);
        self.bump_version(&mut pipe);
        self.exec(pipe, || format!("deleting subscription {id}")).await?;
        self.drop_empty_patterns(&old).await?;
        Ok(old)
    }
}
