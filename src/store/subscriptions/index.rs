//! The Redis side: the records the hot path reads and the indexes fan-out reads, written only by
//! [`APPLY`], which is idempotent by bucket revision (a revision not newer than the record's is a
//! no-op), so the writer, the watch of every process and a rebuild may all apply the same change
//! in any order. The layout is described in the parent module.

use std::collections::BTreeSet;

use redis::AsyncCommands;

use super::codec::{decode, encode};
use super::{Ordering, Subscription, SubscriptionError, SubscriptionStore};
use crate::filter::EventFilter;
use crate::store::{Doing, StoreError};

/// How long a deleted subscription's tombstone (its revision) stays, so that a late apply of an
/// older revision cannot bring it back.
const TOMBSTONE_MS: u64 = 24 * 3600 * 1000;

/// Applies one bucket revision of a subscription (a put or a delete) to its record and the
/// indexes, atomically, unless the record already holds that revision or a newer one.
///
/// KEYS: record, all ids, version token, marker, patterns in use.
/// ARGV: id, revision, new version token, deleted (0/1), tombstone ms, index keys (JSON list),
/// patterns (JSON list of [pattern, key]), force (1: also rewrite a record at the same revision,
/// for a rebuild), then the record's field/value pairs.
/// The marker is raised, never created: only a rebuild creates it (a missing marker means the
/// index is incomplete).
const APPLY: &str = r#"
local rev = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if cur > rev or (cur == rev and ARGV[8] ~= '1') then return 0 end
local id = ARGV[1]
local old_keys = redis.call('HGET', KEYS[1], 'idx_keys')
if old_keys then
  for _, k in ipairs(cjson.decode(old_keys)) do redis.call('SREM', k, id) end
end
local old_patterns = redis.call('HGET', KEYS[1], 'idx_patterns')
redis.call('DEL', KEYS[1])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'deleted', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('SREM', KEYS[2], id)
else
  for _, k in ipairs(cjson.decode(ARGV[6])) do redis.call('SADD', k, id) end
  for _, pk in ipairs(cjson.decode(ARGV[7])) do redis.call('SADD', KEYS[5], pk[1]) end
  redis.call('HSET', KEYS[1], 'rev', ARGV[2], 'idx_keys', ARGV[6], 'idx_patterns', ARGV[7], unpack(ARGV, 9))
  redis.call('SADD', KEYS[2], id)
end
if old_patterns then
  for _, pk in ipairs(cjson.decode(old_patterns)) do
    if redis.call('SCARD', pk[2]) == 0 then redis.call('SREM', KEYS[5], pk[1]) end
  end
end
redis.call('SET', KEYS[3], ARGV[3])
local m = redis.call('GET', KEYS[4])
if m and tonumber(m) < rev then redis.call('SET', KEYS[4], ARGV[2]) end
return 1
"#;

/// Raises a counter key to ARGV[1] (never lowers it). KEYS: the key.
const RAISE: &str = r#"
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 0
"#;

static APPLY_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(APPLY));
static RAISE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(RAISE));

/// The lookup's first round trip: version, marker, `idx:all`, `idx:type:<t>`, `idx:patterns`.
type LookupReply = (Option<String>, Option<u64>, BTreeSet<String>, Vec<String>, Vec<String>);

/// What fan-out's lookup read: the matches, the version token and the marker.
pub struct Lookup {
    pub subscriptions: Vec<Subscription>,
    pub version: String,
    pub marker: Option<u64>,
}

impl SubscriptionStore {
    pub(super) fn key(&self, rest: &str) -> String {
        self.names.key(&format!("{{subs}}:{rest}"))
    }

    fn record_key(&self, id: &str) -> String {
        self.key(&format!("sub:{id}"))
    }

    /// The index sets a subscription belongs in, and its wildcard patterns with their sets.
    fn index_keys(&self, sub: &Subscription) -> (Vec<String>, Vec<(String, String)>) {
        let mut keys = Vec::new();
        let mut patterns = Vec::new();
        if sub.ordering == Ordering::Fifo {
            keys.push(self.key("idx:fifo"));
        }
        if sub.event_types.is_empty() {
            keys.push(self.key("idx:all"));
        }
        for filter in sub.filters() {
            match filter {
                EventFilter::Exact(t) => keys.push(self.key(&format!("idx:type:{t}"))),
                EventFilter::Pattern(p) => {
                    let key = self.key(&format!("idx:pattern:{p}"));
                    keys.push(key.clone());
                    patterns.push((p, key));
                }
            }
        }
        (keys, patterns)
    }

    /// Applies a put of `sub` (at `sub.revision`) to Redis; a no-op when Redis has it already.
    pub(super) async fn index_put(&self, sub: &Subscription) -> Result<(), StoreError> {
        self.index_put_forced(sub, false).await
    }

    /// [`Self::index_put`]; `force` rewrites a record that has the same revision too (a rebuild
    /// cannot trust what it finds).
    pub(super) async fn index_put_forced(
        &self,
        sub: &Subscription,
        force: bool,
    ) -> Result<(), StoreError> {
        let (keys, patterns) = self.index_keys(sub);
        let mut invocation = APPLY_SCRIPT.prepare_invoke();
        self.apply_keys(&mut invocation, &sub.id, sub.revision);
        invocation
            .arg(0)
            .arg(TOMBSTONE_MS)
            .arg(serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into()))
            .arg(serde_json::to_string(&patterns).unwrap_or_else(|_| "[]".into()))
            .arg(u8::from(force));
        for (field, value) in encode(sub, &self.secret_box) {
            invocation.arg(field).arg(value);
        }
        self.run_apply(invocation, &sub.id, sub.revision).await
    }

    /// Applies a delete of `id` at `revision`.
    pub(super) async fn index_delete(&self, id: &str, revision: u64) -> Result<(), StoreError> {
        let mut invocation = APPLY_SCRIPT.prepare_invoke();
        self.apply_keys(&mut invocation, id, revision);
        invocation.arg(1).arg(TOMBSTONE_MS).arg("[]").arg("[]").arg(1);
        self.run_apply(invocation, id, revision).await
    }

    fn apply_keys(&self, invocation: &mut redis::ScriptInvocation<'_>, id: &str, revision: u64) {
        invocation
            .key(self.record_key(id))
            .key(self.key("all"))
            .key(super::version_key(&self.names))
            .key(super::marker_key(&self.names))
            .key(self.key("idx:patterns"))
            .arg(id)
            .arg(revision)
            .arg(uuid::Uuid::new_v4().simple().to_string());
    }

    async fn run_apply(
        &self,
        invocation: redis::ScriptInvocation<'_>,
        id: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let doing = || format!("applying revision {revision} of subscription {id} to redis");
        let _: i64 = invocation.invoke_async(&mut conn).await.doing(doing)?;
        // The subscription's own revision key (its slot), for the admission check; raised even
        // when the record already had the revision (a crash may have come between the two).
        let _: i64 = RAISE_SCRIPT
            .key(super::revision_key(&self.names, id))
            .arg(revision)
            .invoke_async(&mut conn)
            .await
            .doing(doing)?;
        Ok(())
    }

    /// Sets the marker (after a rebuild): the index holds every revision up to `revision`.
    pub(super) async fn set_marker(&self, revision: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let () = conn
            .set(super::marker_key(&self.names), revision)
            .await
            .doing(|| "setting the subscription index marker".into())?;
        Ok(())
    }

    /// The marker (`None`: missing, the index is incomplete).
    pub async fn marker(&self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.clone();
        let m: Option<u64> = conn
            .get(super::marker_key(&self.names))
            .await
            .doing(|| "reading the subscription index marker".into())?;
        Ok(m)
    }

    /// Removes the marker and every record and index entry (the start of a rebuild). Records
    /// are found through `all`, their index sets through their `idx_keys`.
    pub(super) async fn clear_index(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let doing = || "clearing the subscription index".to_string();
        let () = conn.del(super::marker_key(&self.names)).await.doing(doing)?;
        let ids: Vec<String> = conn.smembers(self.key("all")).await.doing(doing)?;
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hget(self.record_key(id), "idx_keys");
            }
            let keys: Vec<Option<String>> = pipe.query_async(&mut conn).await.doing(doing)?;
            let mut del = redis::pipe();
            for (id, k) in chunk.iter().zip(keys) {
                del.del(self.record_key(id)).ignore();
                for key in
                    k.and_then(|k| serde_json::from_str::<Vec<String>>(&k).ok()).unwrap_or_default()
                {
                    del.del(key).ignore();
                }
            }
            let () = del.query_async(&mut conn).await.doing(doing)?;
        }
        let () = redis::pipe()
            .del(self.key("all"))
            .ignore()
            .del(self.key("idx:patterns"))
            .ignore()
            .del(self.key("idx:all"))
            .ignore()
            .del(self.key("idx:fifo"))
            .ignore()
            .query_async(&mut conn)
            .await
            .doing(doing)?;
        Ok(())
    }

    /// Ids of the FIFO subscriptions (each needs its own consumer).
    pub async fn fifo_ids(&self) -> Result<Vec<String>, SubscriptionError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .smembers(self.key("idx:fifo"))
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
        Ok(self.lookup(event_type, tenant, None).await?.subscriptions)
    }

    /// [`Self::matching`] with the version token and the marker read just before the indexes;
    /// `also` (its reply ignored) rides along in the first round trip.
    pub async fn lookup(
        &self,
        event_type: &str,
        tenant: Option<&str>,
        also: Option<redis::Cmd>,
    ) -> Result<Lookup, SubscriptionError> {
        let mut conn = self.conn.clone();
        let doing = || format!("looking up subscriptions for event type {event_type}");
        let mut pipe = redis::pipe();
        pipe.get(super::version_key(&self.names))
            .get(super::marker_key(&self.names))
            .smembers(self.key("idx:all"))
            .smembers(self.key(&format!("idx:type:{event_type}")))
            .smembers(self.key("idx:patterns"));
        if let Some(cmd) = also {
            pipe.add_command(cmd).ignore();
        }
        let (version, marker, mut ids, exact, patterns): LookupReply =
            pipe.query_async(&mut conn).await.doing(doing)?;
        ids.extend(exact);
        let matching: Vec<String> = patterns
            .iter()
            .filter(|p| crate::filter::pattern_matches(p, event_type))
            .map(|p| self.key(&format!("idx:pattern:{p}")))
            .collect();
        if !matching.is_empty() {
            let from_patterns: Vec<String> = conn.sunion(matching).await.doing(doing)?;
            ids.extend(from_patterns);
        }
        let subs = self.load_many(ids.into_iter().collect()).await?;
        Ok(Lookup {
            subscriptions: subs.into_iter().filter(|s| s.accepts(event_type, tenant)).collect(),
            version: version.unwrap_or_default(),
            marker,
        })
    }

    /// One subscription's Redis record (what the delivery path reads), or `None`.
    pub async fn get_indexed(&self, id: &str) -> Result<Option<Subscription>, SubscriptionError> {
        if !crate::ids::SubscriptionId::is_valid(id) {
            return Err(SubscriptionError::BadId(id.to_string()));
        }
        Ok(self.load_many(vec![id.to_string()]).await?.pop())
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
            pipe.hgetall(self.record_key(id));
        }
        let rows: Vec<Vec<(String, String)>> = pipe
            .query_async(&mut conn)
            .await
            .doing(|| format!("reading {} subscriptions", ids.len()))?;
        let mut subs = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(rows) {
            // An id still in an index whose record is gone, or a tombstone, is skipped.
            if !fields.is_empty() && !fields.iter().any(|(k, _)| k == "deleted") {
                subs.push(decode(id, fields, &self.secret_box)?);
            }
        }
        Ok(subs)
    }
}
