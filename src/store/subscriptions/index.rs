//! The subscription indexes fan-out reads (`idx:all`, `idx:type:<type>`, `idx:patterns`,
//! `idx:pattern:<pattern>`, `idx:fifo`) and the one write path that keeps them, the hash and
//! the version token consistent in a single MULTI. The layout is described in the parent
//! module.

use std::collections::BTreeSet;

use redis::AsyncCommands;

use super::codec::{decode, encode};
use super::{Ordering, Subscription, SubscriptionError, SubscriptionStore, VERSION_KEY};
use crate::filter::EventFilter;
use crate::store::Doing;

impl SubscriptionStore {
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

    pub(super) async fn load_many(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Subscription>, SubscriptionError> {
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
                subs.push(decode(id, fields, &self.secret_box)?);
            }
        }
        Ok(subs)
    }

    pub(super) async fn write(
        &self,
        old: Option<&Subscription>,
        new: &Subscription,
    ) -> Result<(), SubscriptionError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        if let Some(old) = old {
            self.unindex(&mut pipe, old);
        }
        pipe.hset_multiple(self.hash_key(&new.id), &encode(new, &self.secret_box)).ignore();
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
    pub(super) fn bump_version(&self, pipe: &mut redis::Pipeline) {
        pipe.set(self.names.key(VERSION_KEY), uuid::Uuid::new_v4().simple().to_string()).ignore();
    }

    pub(super) fn index(&self, pipe: &mut redis::Pipeline, sub: &Subscription) {
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

    pub(super) fn unindex(&self, pipe: &mut redis::Pipeline, sub: &Subscription) {
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
    pub(super) async fn drop_empty_patterns(
        &self,
        sub: &Subscription,
    ) -> Result<(), SubscriptionError> {
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

    pub(super) async fn exec(
        &self,
        pipe: redis::Pipeline,
        doing: impl FnOnce() -> String,
    ) -> Result<(), SubscriptionError> {
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await.doing(doing)?;
        Ok(())
    }
}
