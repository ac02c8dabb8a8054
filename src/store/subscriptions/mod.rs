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

use std::collections::BTreeSet;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod model;

pub use model::*;
use model::{dedup_schemes, validate_filters, validate_metadata, validate_tenant};

use super::{Doing, StoreError};
use crate::filter::EventFilter;
use crate::signing::Secret;
use crate::subjects::Names;

/// `<p>:subs:version`: a token replaced by every subscription write (see [`super::cache`]).
const VERSION_KEY: &str = "subs:version";

/// The key of the subscriptions' version token.
pub fn version_key(names: &Names) -> String {
    names.key(VERSION_KEY)
}

/// Subscription storage bound to one prefix.
#[derive(Clone)]
pub struct SubscriptionStore {
    conn: ConnectionManager,
    names: Names,
    egress: std::sync::Arc<crate::egress::EgressPolicy>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| OffsetDateTime::now_utc())
}

impl SubscriptionStore {
    pub fn new(conn: ConnectionManager, names: Names) -> SubscriptionStore {
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

    /// Ids of the FIFO subscriptions (each needs its own consumer).
    pub async fn fifo_ids(&self) -> Result<Vec<String>, SubscriptionError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .smembers(self.names.key("idx:fifo"))
            .await
            .doing(|| "listing fifo subscriptions".into())?;
        Ok(ids)
    }

    /// Active subscriptions that should receive an event of this type and tenant.
    pub async fn matching(
        &self,
        event_type: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Subscription>, SubscriptionError> {
        Ok(self.matching_versioned(event_type, tenant, None).await?.0)
    }

    /// [`Self::matching`] and the [`version_key`] token read just before the indexes; `also`
    /// (its reply ignored) rides along in the first round trip.
    pub async fn matching_versioned(
        &self,
        event_type: &str,
        tenant: Option<&str>,
        also: Option<redis::Cmd>,
    ) -> Result<(Vec<Subscription>, String), SubscriptionError> {
        let mut conn = self.conn.clone();
        let doing = || format!("looking up subscriptions for event type {event_type}");
        let mut pipe = redis::pipe();
        pipe.get(self.names.key(VERSION_KEY))
            .smembers(self.names.key("idx:all"))
            .smembers(self.names.key(&format!("idx:type:{event_type}")))
            .smembers(self.names.key("idx:patterns"));
        if let Some(cmd) = also {
            pipe.add_command(cmd).ignore();
        }
        let (version, mut ids, exact, patterns): (
            Option<String>,
            BTreeSet<String>,
            Vec<String>,
            Vec<String>,
        ) = pipe.query_async(&mut conn).await.doing(doing)?;
        ids.extend(exact);
        let matching: Vec<String> = patterns
            .iter()
            .filter(|p| crate::filter::pattern_matches(p, event_type))
            .map(|p| self.names.key(&format!("idx:pattern:{p}")))
            .collect();
        if !matching.is_empty() {
            let from_patterns: Vec<String> = conn.sunion(matching).await.doing(doing)?;
            ids.extend(from_patterns);
        }
        let subs = self.load_many(ids.into_iter().collect()).await?;
        Ok((
            subs.into_iter().filter(|s| s.accepts(event_type, tenant)).collect(),
            version.unwrap_or_default(),
        ))
    }

    async fn load_many(&self, ids: Vec<String>) -> Result<Vec<Subscription>, SubscriptionError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.hash_key(id));
        }
        let rows: Vec<Vec<(String, String)>> = pipe
            .query_async(&mut conn)
            .await
            .doing(|| format!("reading {} subscriptions", ids.len()))?;
        let mut subs = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(rows) {
            // An id still in an index whose hash is gone (deleted meanwhile) is skipped.
            if !fields.is_empty() {
                subs.push(decode(id, fields)?);
            }
        }
        Ok(subs)
    }

    async fn write(
        &self,
        old: Option<&Subscription>,
        new: &Subscription,
    ) -> Result<(), SubscriptionError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        if let Some(old) = old {
            self.unindex(&mut pipe, old);
        }
        pipe.hset_multiple(self.hash_key(&new.id), &encode(new)).ignore();
        if old.is_some_and(|o| !o.active) && new.active {
            // Re-activated: the endpoint starts with a clean record (breaker closed).
            pipe.del(self.names.key(&format!("health:{}", new.id))).ignore();
            pipe.del(self.names.key(&format!("probe:{}", new.id))).ignore();
        }
        pipe.sadd(self.names.key("subs"), &new.id).ignore();
        self.index(&mut pipe, new);
        self.bump_version(&mut pipe);
        self.exec(pipe, || format!("writing subscription {}", new.id)).await?;
        if let Some(old) = old {
            self.drop_empty_patterns(old).await?;
        }
        Ok(())
    }

    /// A fresh token in [`version_key`], in the same MULTI as the change: every process's
    /// [`super::cache`] sees it at its next check. A random token, not a counter, so a Redis
    /// restored from an older snapshot can never show a token a cache already holds for other
    /// data.
    fn bump_version(&self, pipe: &mut redis::Pipeline) {
        pipe.set(self.names.key(VERSION_KEY), uuid::Uuid::new_v4().simple().to_string()).ignore();
    }

    fn index(&self, pipe: &mut redis::Pipeline, sub: &Subscription) {
        if sub.ordering == Ordering::Fifo {
            pipe.sadd(self.names.key("idx:fifo"), &sub.id).ignore();
        }
        if sub.event_types.is_empty() {
            pipe.sadd(self.names.key("idx:all"), &sub.id).ignore();
        }
        for filter in sub.filters() {
            match filter {
                EventFilter::Exact(t) => {
                    pipe.sadd(self.names.key(&format!("idx:type:{t}")), &sub.id).ignore()
                }
                EventFilter::Pattern(p) => pipe
                    .sadd(self.names.key("idx:patterns"), &p)
                    .ignore()
                    .sadd(self.names.key(&format!("idx:pattern:{p}")), &sub.id)
                    .ignore(),
            };
        }
    }

    fn unindex(&self, pipe: &mut redis::Pipeline, sub: &Subscription) {
        pipe.srem(self.names.key("idx:all"), &sub.id).ignore();
        pipe.srem(self.names.key("idx:fifo"), &sub.id).ignore();
        for filter in sub.filters() {
            let key = match &filter {
                EventFilter::Exact(t) => self.names.key(&format!("idx:type:{t}")),
                EventFilter::Pattern(p) => self.names.key(&format!("idx:pattern:{p}")),
            };
            pipe.srem(key, &sub.id).ignore();
        }
    }

    /// Forgets wildcard patterns no subscription uses any more (atomically, in a script, so a
    /// concurrent writer that just added one keeps it).
    async fn drop_empty_patterns(&self, sub: &Subscription) -> Result<(), SubscriptionError> {
        let script = redis::Script::new(
            "if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end return 0",
        );
        let mut conn = self.conn.clone();
        for filter in sub.filters() {
            if let EventFilter::Pattern(p) = filter {
                let _: i64 = script
                    .key(self.names.key(&format!("idx:pattern:{p}")))
                    .key(self.names.key("idx:patterns"))
                    .arg(&p)
                    .invoke_async(&mut conn)
                    .await
                    .doing(|| format!("cleaning up pattern {p}"))?;
            }
        }
        Ok(())
    }

    async fn exec(
        &self,
        pipe: redis::Pipeline,
        doing: impl FnOnce() -> String,
    ) -> Result<(), SubscriptionError> {
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await.doing(doing)?;
        Ok(())
    }
}

fn encode(sub: &Subscription) -> Vec<(&'static str, String)> {
    let ts = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    vec![
        ("id", sub.id.clone()),
        ("url", sub.url.clone()),
        ("event_types", serde_json::to_string(&sub.event_types).unwrap_or_else(|_| "[]".into())),
        ("tenant_id", sub.tenant_id.clone().unwrap_or_default()),
        ("description", sub.description.clone()),
        ("active", if sub.active { "1" } else { "0" }.to_string()),
        ("metadata", serde_json::to_string(&sub.metadata).unwrap_or_else(|_| "{}".into())),
        (
            "signature_schemes",
            serde_json::to_string(&sub.signature_schemes).unwrap_or_else(|_| "[]".into()),
        ),
        (
            "body_format",
            serde_json::to_string(&sub.body_format).unwrap_or_else(|_| "\"envelope\"".into()),
        ),
        ("secrets", encode_secrets(&sub.secrets)),
        ("max_in_flight", sub.max_in_flight.map(|n| n.to_string()).unwrap_or_default()),
        ("max_rps", sub.max_rps.map(|n| n.to_string()).unwrap_or_default()),
        ("disabled_reason", sub.disabled_reason.clone().unwrap_or_default()),
        (
            "ordering",
            serde_json::to_string(&sub.ordering).unwrap_or_else(|_| "\"unordered\"".into()),
        ),
        ("created_at", ts(sub.created_at)),
        ("updated_at", ts(sub.updated_at)),
    ]
}

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    secret: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

fn encode_secrets(secrets: &[SigningSecret]) -> String {
    let stored: Vec<StoredSecret> = secrets
        .iter()
        .map(|s| StoredSecret { secret: s.secret.expose(), expires_at: s.expires_at })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

fn decode_secrets(text: &str) -> Option<Vec<SigningSecret>> {
    let stored: Vec<StoredSecret> = serde_json::from_str(text).ok()?;
    let secrets = stored
        .into_iter()
        .map(|s| {
            Secret::parse(&s.secret)
                .ok()
                .map(|secret| SigningSecret { secret, expires_at: s.expires_at })
        })
        .collect::<Option<Vec<_>>>()?;
    (!secrets.is_empty()).then_some(secrets)
}

fn decode(id: &str, fields: Vec<(String, String)>) -> Result<Subscription, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt { id: id.to_string(), why };
    let map: std::collections::HashMap<String, String> = fields.into_iter().collect();
    let get = |k: &str| map.get(k).cloned().ok_or_else(|| corrupt(format!("field {k} missing")));
    let time = |k: &str| -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::parse(&get(k)?, &Rfc3339).map_err(|e| corrupt(format!("field {k}: {e}")))
    };
    let event_types: Vec<String> = serde_json::from_str(&get("event_types")?)
        .map_err(|e| corrupt(format!("field event_types: {e}")))?;
    let tenant = get("tenant_id")?;
    Ok(Subscription {
        id: id.to_string(),
        url: get("url")?,
        event_types,
        tenant_id: (!tenant.is_empty()).then_some(tenant),
        description: get("description")?,
        metadata: map
            .get("metadata")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        active: get("active")? == "1",
        signature_schemes: map
            .get("signature_schemes")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        body_format: map
            .get("body_format")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        max_in_flight: map.get("max_in_flight").and_then(|v| v.parse().ok()),
        max_rps: map.get("max_rps").and_then(|v| v.parse().ok()),
        disabled_reason: map.get("disabled_reason").filter(|v| !v.is_empty()).cloned(),
        ordering: map
            .get("ordering")
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default(),
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        secrets: decode_secrets(&get("secrets")?)
            .ok_or_else(|| corrupt("field secrets holds no valid whsec_ secret".into()))?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sub(types: &[&str], tenant: Option<&str>) -> Subscription {
        Subscription {
            id: "sub_1".into(),
            url: "http://x".into(),
            event_types: types.iter().map(|s| s.to_string()).collect(),
            tenant_id: tenant.map(str::to_string),
            description: String::new(),
            metadata: BTreeMap::new(),
            active: true,
            signature_schemes: vec![],
            body_format: BodyFormat::Envelope,
            max_in_flight: None,
            max_rps: None,
            disabled_reason: None,
            ordering: Ordering::Unordered,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            secrets: vec![SigningSecret { secret: Secret::generate(), expires_at: None }],
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

    #[test]
    fn secrets_round_trip_through_their_stored_form() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let secrets = vec![
            SigningSecret { secret: Secret::generate(), expires_at: None },
            SigningSecret { secret: Secret::generate(), expires_at: Some(now) },
        ];
        assert_eq!(decode_secrets(&encode_secrets(&secrets)), Some(secrets));
        assert_eq!(decode_secrets("[]"), None);
    }

    #[test]
    fn urls_are_validated() {
        assert!(validate_url("https://example.com/hook").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/").is_ok());
        for bad in ["ftp://x/", "not a url", "http://", "https://x/#frag", "mailto:a@b"] {
            assert!(validate_url(bad).is_err(), "{bad} accepted");
        }
    }
}
