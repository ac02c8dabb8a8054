//! Subscriptions: the JetStream KV bucket `<P>_SUBSCRIPTIONS` is the source of truth (every
//! field, secrets included); Redis holds the lookup index fan-out reads and the records the hot
//! path reads, derived from the bucket and rebuildable from it at any time.
//!
//! Writes go to the bucket first (compare-and-set on the key's revision: of two concurrent
//! changes one wins, the other gets [`SubscriptionError::Conflict`]), then to Redis, idempotently
//! and tagged with the bucket revision (see `index`). Every process also watches the bucket and
//! applies what Redis has not seen (see `sync`), so a crash between the two writes heals by
//! itself, and a Redis that lost its data is rebuilt from the bucket.
//!
//! Redis layout (all under `<p>:{subs}:`, one Cluster slot, so a change and its index entries
//! are one atomic script): `sub:<id>` hash (the encoded fields, `rev`, the index keys it is in);
//! `all` (every id); `idx:all` (no filter), `idx:type:<type>`, `idx:patterns` (wildcards in
//! use), `idx:pattern:<pattern>`, `idx:fifo`; `version` (a token replaced by every change, for
//! the in-process [`super::cache`]); `rev` (the marker: the last bucket revision applied; missing
//! means "rebuild"). Beside it, `<p>:{<id>}:rev` holds the subscription's revision in its own
//! slot, for the admission script.
//!
//! Files: this one creates, reads, changes and deletes; `index` is the Redis side; `sync` the
//! watch and the rebuild; `codec` turns a subscription into its fields and back (sealing its
//! secrets with [`crate::secret_box`]); `model` holds the types, `rules` the input checks;
//! `handshake` the CloudEvents validation handshake's state and its invariant; `secret_writes`
//! rotation and resealing.

use std::sync::Arc;

use async_nats::jetstream::kv;
use time::OffsetDateTime;

mod codec;
pub mod handshake;
pub mod headers;
mod index;
mod model;
mod options;
mod rules;
mod secret_writes;
pub mod sync;

pub use handshake::{Handshake, Validation, ValidationStatus, Verdict};
pub use model::*;
pub use options::schedule_strings;
use options::{compile_filter, validate_schedule};
pub use rules::{check_endpoint, validate_url};
use rules::{dedup_schemes, validate_filters, validate_metadata, validate_tenant};

use crate::secret_box::SecretBox;
use crate::signing::Secret;
use crate::store::RedisConn;
use crate::subjects::Names;

/// The key of the subscriptions' version token (see [`super::cache`]).
pub fn version_key(names: &Names) -> String {
    names.key("{subs}:version")
}

/// The key of the marker: the last bucket revision Redis has applied.
pub fn marker_key(names: &Names) -> String {
    names.key("{subs}:rev")
}

/// The key holding one subscription's applied revision, in that subscription's slot.
pub fn revision_key(names: &Names, id: &str) -> String {
    names.sub_key(id, "rev")
}

/// Subscription storage bound to one prefix: the bucket and the Redis index.
#[derive(Clone)]
pub struct SubscriptionStore {
    kv: kv::Store,
    conn: RedisConn,
    names: Names,
    egress: Arc<crate::egress::EgressPolicy>,
    /// Seals the `secrets` field on write and opens it on read (see [`codec`]).
    secret_box: Arc<SecretBox>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| OffsetDateTime::now_utc())
}

/// How many times a change hookline makes by itself (disable) is tried again after losing a
/// compare-and-set race.
const OWN_CHANGE_TRIES: usize = 5;

impl SubscriptionStore {
    pub fn new(kv: kv::Store, conn: RedisConn, names: Names) -> SubscriptionStore {
        SubscriptionStore {
            kv,
            conn,
            names,
            egress: Default::default(),
            secret_box: Default::default(),
        }
    }

    /// The same store checking endpoint URLs against `egress` (the default is the strict policy:
    /// no allow-list).
    pub fn with_egress(mut self, egress: Arc<crate::egress::EgressPolicy>) -> SubscriptionStore {
        self.egress = egress;
        self
    }

    /// The bucket (for the watch and the rebuild).
    pub fn bucket(&self) -> &kv::Store {
        &self.kv
    }

    /// The same store sealing secrets with `secret_box`'s current key and opening them with any
    /// of its keys (the default has no key: secrets are stored plain).
    pub fn with_secret_box(mut self, secret_box: Arc<SecretBox>) -> SubscriptionStore {
        self.secret_box = secret_box;
        self
    }

    /// The keys secrets are sealed and opened with.
    pub fn secret_box(&self) -> &SecretBox {
        &self.secret_box
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
        let key_type = input.key_type.unwrap_or_default();
        let signature_schemes = dedup_schemes(input.signature_schemes.unwrap_or_default());
        check_schemes(key_type, &signature_schemes)?;
        let at = now();
        let handshake = Handshake::new(input.validation.unwrap_or_default());
        let mut sub = Subscription {
            id: crate::ids::SubscriptionId::generate().into_string(),
            url,
            event_types,
            tenant_id: input.tenant_id,
            description,
            metadata,
            active: input.active.unwrap_or(true),
            key_type,
            public_key: None,
            signature_schemes,
            body_format: input.body_format.unwrap_or_default(),
            max_in_flight: input.max_in_flight.filter(|n| *n > 0),
            max_rps: input.max_rps,
            disabled_reason: None,
            ordering: input.ordering.unwrap_or_default(),
            headers: headers::validate(&input.headers.unwrap_or_default())?,
            handshake,
            retry_schedule: validate_schedule(&input.retry_schedule.unwrap_or_default())?,
            filter: match &input.filter {
                Some(doc) => compile_filter(doc)?,
                None => None,
            },
            created_at: at,
            updated_at: at,
            secrets: vec![SigningSecret {
                secret: Secret::generate_of(key_type),
                expires_at: None,
            }],
            revision: 0,
        }
        .with_derived_keys();
        handshake::reconcile(&sub.clone(), &mut sub);
        let value = codec::to_value(&sub, &self.secret_box);
        sub.revision = self
            .kv
            .create(&sub.id, value)
            .await
            .map_err(|e| bucket_error("creating", &sub.id, e))?;
        self.apply_put(&sub).await;
        Ok(sub)
    }

    /// One subscription from the bucket (the source of truth), or `None`.
    pub async fn get(&self, id: &str) -> Result<Option<Subscription>, SubscriptionError> {
        if !crate::ids::SubscriptionId::is_valid(id) {
            return Err(SubscriptionError::BadId(id.to_string()));
        }
        let entry = self.kv.entry(id).await.map_err(|e| bucket_error("reading", id, e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                Ok(Some(codec::from_entry(&e, &self.secret_box)?))
            }
            _ => Ok(None),
        }
    }

    /// Like `get`, but a missing subscription is an error.
    pub async fn require(&self, id: &str) -> Result<Subscription, SubscriptionError> {
        self.get(id).await?.ok_or_else(|| SubscriptionError::NotFound(id.to_string()))
    }

    /// Every subscription, oldest first, from the bucket.
    pub async fn list(&self) -> Result<Vec<Subscription>, SubscriptionError> {
        let (entries, _) = sync::snapshot(&self.kv).await?;
        let mut subs = Vec::with_capacity(entries.len());
        for e in entries.iter().filter(|e| e.operation == kv::Operation::Put) {
            subs.push(codec::from_entry(e, &self.secret_box)?);
        }
        subs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(subs)
    }

    /// Changes url, filters, tenant or description; keeps the secret.
    pub async fn update(
        &self,
        id: &str,
        input: SubscriptionInput,
    ) -> Result<Subscription, SubscriptionError> {
        self.update_at(id, input, None).await
    }

    /// [`Self::update`] of the copy read at bucket `revision` (`None`: the current one): the
    /// write is a compare-and-set on that revision, so a change made since is not overwritten
    /// ([`SubscriptionError::Conflict`]).
    pub async fn update_at(
        &self,
        id: &str,
        input: SubscriptionInput,
        revision: Option<u64>,
    ) -> Result<Subscription, SubscriptionError> {
        let mut old = self.require(id).await?;
        if let Some(revision) = revision {
            old.revision = revision;
        }
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
        if let Some(key_type) = input.key_type
            && key_type != old.key_type
        {
            return Err(SubscriptionError::KeyTypeFixed(old.key_type));
        }
        if let Some(schemes) = input.signature_schemes {
            new.signature_schemes = dedup_schemes(schemes);
            check_schemes(new.key_type, &new.signature_schemes)?;
        }
        if let Some(format) = input.body_format {
            new.body_format = format;
        }
        if let Some(h) = input.headers {
            new.headers = headers::validate(&h)?;
        }
        if let Some(schedule) = input.retry_schedule {
            new.retry_schedule = validate_schedule(&schedule)?;
        }
        if let Some(doc) = &input.filter {
            new.filter = compile_filter(doc)?;
        }
        if let Some(validation) = input.validation {
            new.handshake.validation = validation;
        }
        new.updated_at = now();
        self.write(&old, new).await
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
        self.write(&old, new).await
    }

    /// Deactivates on hookline's own decision (`failing`, `gone`); `None` when it was already
    /// inactive (another process got there first), so only one disable event is published.
    pub async fn disable(
        &self,
        id: &str,
        reason: &str,
    ) -> Result<Option<Subscription>, SubscriptionError> {
        let mut tries = 0;
        loop {
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
            match self.write(&old, new).await {
                Err(SubscriptionError::Conflict(_)) if tries + 1 < OWN_CHANGE_TRIES => tries += 1,
                other => return other.map(Some),
            }
        }
    }

    /// Deletes the subscription (compare-and-set on the revision read) and its index entries.
    pub async fn delete(&self, id: &str) -> Result<Subscription, SubscriptionError> {
        let old = self.require(id).await?;
        self.kv.delete_expect_revision(id, Some(old.revision)).await.map_err(|e| {
            match e.kind() {
                kv::DeleteErrorKind::WrongLastRevision => conflict(id),
                _ => bucket_error("deleting", id, e),
            }
        })?;
        // The tombstone's revision is the next one in the bucket: the watch applies it; this
        // process applies it now with a revision just above the one it deleted.
        let revision = self.kv.entry(id).await.ok().flatten().map(|e| e.revision);
        self.apply_delete(id, revision.unwrap_or(old.revision + 1)).await;
        // Its attempt index goes too (the records themselves age out of the stream).
        let mut conn = self.conn.clone();
        let _: Result<(), _> =
            redis::cmd("DEL").arg(self.names.attempt_index("sub", id)).query_async(&mut conn).await;
        Ok(old)
    }

    /// Writes `new` over `old` if the bucket still holds `old`'s revision.
    async fn write(
        &self,
        old: &Subscription,
        new: Subscription,
    ) -> Result<Subscription, SubscriptionError> {
        let mut new = new.with_derived_keys();
        handshake::reconcile(old, &mut new);
        let value = codec::to_value(&new, &self.secret_box);
        new.revision =
            self.kv.update(&new.id, value, old.revision).await.map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => conflict(&new.id),
                _ => bucket_error("writing", &new.id, e),
            })?;
        if !old.active && new.active {
            self.reset_health(&new.id).await;
        }
        self.apply_put(&new).await;
        Ok(new)
    }

    /// Re-activated: the endpoint starts with a clean record (breaker closed). Best effort (a
    /// Redis failure here leaves an old breaker to close by itself).
    async fn reset_health(&self, id: &str) {
        let mut conn = self.conn.clone();
        let result: Result<(), _> = redis::pipe()
            .del(self.names.sub_key(id, "health"))
            .ignore()
            .del(self.names.sub_key(id, "probe"))
            .ignore()
            .del(self.names.key(&format!("health:{id}")))
            .ignore()
            .del(self.names.key(&format!("probe:{id}")))
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = result {
            tracing::warn!(subscription = %id, error = %e, "could not reset the endpoint's health record");
        }
    }

    /// Applies a stored change to Redis now; on failure the watch of every process applies it
    /// later (the bucket has it), so the caller is not failed for it.
    async fn apply_put(&self, sub: &Subscription) {
        if let Err(e) = self.index_put(sub).await {
            tracing::warn!(subscription = %sub.id, error = %e, "stored in the bucket; the redis index catches up from the watch");
        }
    }

    async fn apply_delete(&self, id: &str, revision: u64) {
        if let Err(e) = self.index_delete(id, revision).await {
            tracing::warn!(subscription = %id, error = %e, "deleted from the bucket; the redis index catches up from the watch");
        }
    }
}

/// The extra signature schemes are HMACs of the `whsec_` secret: an ed25519 subscription has
/// none to give them.
fn check_schemes(
    key_type: crate::signing::KeyType,
    schemes: &[SignatureScheme],
) -> Result<(), SubscriptionError> {
    if key_type == crate::signing::KeyType::Ed25519 && !schemes.is_empty() {
        return Err(SubscriptionError::SchemesNeedHmac);
    }
    Ok(())
}

fn conflict(id: &str) -> SubscriptionError {
    SubscriptionError::Conflict(id.to_string())
}

fn bucket_error(doing: &str, id: &str, e: impl std::fmt::Display) -> SubscriptionError {
    SubscriptionError::Bucket(format!("{doing} subscription {id} in the bucket: {e}"))
}
