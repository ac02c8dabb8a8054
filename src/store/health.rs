//! Endpoint health in Redis, shared by every hookline process: consecutive-failure counting (for
//! auto-disable and the circuit breaker), the breaker's state, and per-endpoint limits
//! (in-flight leases and a GCRA rate limit). Each decision is one Lua script or one pipeline
//! whose outcome is safe under races, shared by all processes; before a POST, one round trip
//! ([`Health::admit`]: plain commands, or a script when a rate limit or an open breaker needs
//! one) makes all of them together with the inbox check and the subscription cache's version
//! check.
//!
//! Keys ([`key`], all in the subscription's hash slot so one script may touch them together on
//! Redis Cluster): `<p>:{<sub>}:health` hash {failures, first_failure_ms, opens, open_until_ms},
//! `<p>:{<sub>}:probe` (the half-open probe lock), `<p>:{<sub>}:inflight` zset of leases
//! (member -> expiry; each process reuses its own, see [`Lease`]), `<p>:{<sub>}:rate` (GCRA
//! theoretical arrival time), and the pair's inbox key ([`super::inbox`]), which holds the
//! claim token while a copy of the delivery is being sent (so two copies are never sent at
//! once) and `1` once it was delivered.

use std::sync::LazyLock;
use std::time::Duration;

use crate::limiter::Lease;
use crate::store::RedisConn;

use super::{Doing, StoreError};
use crate::subjects::Names;

/// The state after a failure was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Consecutive failures (no success in between) inside the window.
    pub consecutive: u64,
    /// The breaker (re)opened with this failure, for this long.
    pub opened: Option<Duration>,
}

/// How long an opened breaker stays open: `first`, doubled with each re-opening, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

/// The health key `kind` (`health`, `probe`, `inflight`, `rate`) of subscription `sub`:
/// `<p>:{<sub>}:<kind>`.
pub fn key(names: &Names, kind: &str, sub: &str) -> String {
    names.sub_key(sub, kind)
}

/// Unix milliseconds, the clock of lease scores.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Health operations for one prefix.
#[derive(Clone)]
pub struct Health {
    conn: RedisConn,
    names: Names,
}

/// Counts a failure; opens the breaker at `threshold` consecutive failures or when the failure
/// was the half-open probe. Each opening without a success in between stays open twice as long
/// as the one before (`open_for`, 2x, 4x, ... at most `max_open_for`): a long outage then costs
/// a deferral per pending delivery every few minutes, not every `open_for`. A failure of a
/// request admitted before the breaker opened changes nothing (it is the same opening).
///
/// KEYS: health, probe. ARGV: now ms, window ms, threshold, open_for ms, max_open_for ms.
/// Returns {consecutive failures, how long it opened for in ms (0: it did not open now)}.
const FAILURE: &str = r#"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local open_for = tonumber(ARGV[4])
local max_open_for = tonumber(ARGV[5])
local first = tonumber(redis.call('HGET', KEYS[1], 'first_failure_ms') or '0')
if first == 0 or now - first > window then
  redis.call('HSET', KEYS[1], 'failures', 0, 'first_failure_ms', now)
end
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local was_probe = redis.call('DEL', KEYS[2])
local opened_for = 0
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until_ms') or '0')
if threshold > 0 and (was_probe == 1 or (open_until == 0 and n >= threshold)) then
  local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
  opened_for = math.min(open_for * 2 ^ math.min(opens - 1, 32), math.max(max_open_for, open_for))
  redis.call('HSET', KEYS[1], 'open_until_ms', now + opened_for)
  open_until = now + opened_for
end
redis.call('PEXPIRE', KEYS[1], window + math.max(open_until - now, 0))
return {n, opened_for}
"#;

/// Everything a delivery needs from Redis before its POST, in one round trip: the cached
/// subscription is current, the pair is not in the inbox, the delivery is not too old, the
/// breaker lets it through (taking the half-open probe), the rate limit (GCRA, no burst) has
/// room, and an in-flight lease is free. Stops at the first "no", changing nothing after it.
///
/// While another process's probe is out, the answer is to come back when that probe's lock
/// expires (at least 1 s): asking every moment would cost a deferral per pending delivery each
/// time, for nothing.
///
/// The lease is the caller's pooled one when it is still in the set (it is this process's
/// already: nothing is counted), else a new member counted against the limit.
///
/// KEYS: the subscription's revision, inbox (the claim), health, probe, rate, inflight. ARGV:
/// the cached copy's revision, now ms, expired (0/1), probe timeout ms, (unused), rate interval
/// ms (0: none), in-flight limit, claim ms, claim token, lease member, lease ms, pooled (0/1).
/// Returns {verdict, n, the pooled lease was used (0/1)}.
const ADMIT: &str = r#"
if tonumber(redis.call('GET', KEYS[1]) or '0') > tonumber(ARGV[1]) then return {0, 0, 0} end
local held = redis.call('GET', KEYS[2])
if held == '1' then return {1, 0, 0} end
if ARGV[3] == '1' then return {2, 0, 0} end
if held or not redis.call('SET', KEYS[2], ARGV[9], 'NX', 'PX', ARGV[8]) then return {7, 0, 0} end
local function no(verdict, n)
  redis.call('DEL', KEYS[2])
  return {verdict, n, 0}
end
local now = tonumber(ARGV[2])
local probe = 0
local open_until = tonumber(redis.call('HGET', KEYS[3], 'open_until_ms') or '0')
if open_until ~= 0 then
  if now < open_until then return no(3, open_until - now) end
  if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[4]) then return no(3, math.max(redis.call('PTTL', KEYS[4]), 1000)) end
  probe = 1
end
local interval = tonumber(ARGV[6])
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[5]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - now > interval then return no(4, new_tat - now - interval) end
  redis.call('SET', KEYS[5], string.format('%.0f', new_tat), 'PX', interval + interval)
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
if ARGV[12] == '1' and redis.call('ZSCORE', KEYS[6], ARGV[10]) then return {6, probe, 1} end
if redis.call('ZCARD', KEYS[6]) >= tonumber(ARGV[7]) then return no(5, 0) end
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[11]), ARGV[10])
redis.call('PEXPIRE', KEYS[6], tonumber(ARGV[11]))
return {6, probe, 0}
"#;

/// Returns the pair's claim (its inbox key) if this attempt still holds it, and a lease taken
/// for nothing (the admission said no); prunes leases that expired (of a process that died).
///
/// KEYS: inflight, inbox. ARGV: claim token, now ms, lease member ('': none).
const RELEASE: &str = r#"
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[1], ARGV[3]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
"#;

static ADMIT_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ADMIT));
static RELEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RELEASE));
static FAILURE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(FAILURE));

/// What a delivery asks [`Health::admit`].
pub struct Admit<'a> {
    /// The bucket revision the caller's copy was read at.
    pub version: &'a str,
    /// The pair's inbox key.
    pub inbox_key: &'a str,
    /// Older than `health.max_delivery_age` (only said after the inbox check).
    pub expired: bool,
    /// How long one half-open probe holds the breaker.
    pub probe_timeout: Duration,
    /// The shortest spacing between two requests (zero: no rate limit), whole milliseconds:
    /// above 1000/s not limited more finely than 1 ms.
    pub min_interval: Duration,
    /// In-flight leases at most.
    pub limit: u32,
    /// How long one request may take at most: the pair's claim expires after it, and a lease
    /// is taken for twice as long (it serves one request after another, see
    /// [`Lease`]).
    pub lease: Duration,
    /// A lease of the endpoint this process holds and no request uses (from the pool of
    /// [`crate::limiter`]), valid for at least `lease` more: no new one is taken in Redis.
    pub pooled: Option<&'a Lease>,
    /// The breaker was seen open lately: go straight to the script (which answers an open
    /// breaker in one round trip; the pipeline would take a lease only to give it back).
    pub breaker_maybe_open: bool,
}

/// [`Health::admit`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The subscriptions changed since the caller's copy was read: read it again.
    Stale,
    /// Already delivered: ack without a request.
    Duplicate,
    /// Too old (and not delivered).
    Expired,
    /// The breaker is open (or another process's probe is out): try again after this long.
    BreakerOpen { retry_in: Duration },
    /// Over the rate limit: try again after this long.
    RateLimited { wait: Duration },
    /// Every in-flight lease is taken.
    Full,
    /// Another copy of this delivery is being sent (the pair is claimed): offer it again once
    /// that one has answered.
    InFlight,
    /// Send; `token` is the pair's claim (given back by [`Health::succeeded`] or
    /// [`Health::release`]), `lease` the in-flight lease the request holds (the pooled one, or
    /// a new one). `failing`: the endpoint has failures or breaker state to reset on a success
    /// (false only when the admission saw none).
    Admitted { token: String, probe: bool, failing: bool, lease: Lease },
}

impl Health {
    pub fn new(conn: RedisConn, names: Names) -> Health {
        Health { conn, names }
    }

    fn key(&self, kind: &str, sub: &str) -> String {
        key(&self.names, kind, sub)
    }

    /// The admission check before a POST, one round trip: [`Self::admit_fast`] when the endpoint
    /// has no rate limit, else the [`ADMIT`] script.
    pub async fn admit(&self, sub: &str, a: &Admit<'_>) -> Result<Admission, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        if a.min_interval.is_zero()
            && !a.breaker_maybe_open
            && let Some(admission) = self.admit_fast(sub, a, &token).await?
        {
            return Ok(admission);
        }
        self.admit_script(sub, a, token).await
    }

    /// The common case without a script: one pipeline of plain commands that reads the version,
    /// claims the pair in its inbox key (`SET NX`, then reads what the key holds: `1` when it
    /// was delivered, another copy's token while that copy is being sent) and reads the
    /// breaker; without a pooled lease it also takes a new one optimistically (add, then
    /// count). The claim and a new lease are given back when any answer is "no". Measured: the
    /// script cost Redis ~33 us per delivery, the pipeline a fraction of that. Two processes
    /// racing for the last lease may both see the count over the limit and both step back: the
    /// limit is never exceeded. `None` when the breaker is not closed: the script decides then
    /// (probe lock, its wait).
    async fn admit_fast(
        &self,
        sub: &str,
        a: &Admit<'_>,
        token: &str,
    ) -> Result<Option<Admission>, StoreError> {
        let now = now_ms();
        let inflight = self.key("inflight", sub);
        let claim_ms = a.lease.as_millis() as i64;
        let mut pipe = redis::pipe();
        pipe.get(super::subscriptions::revision_key(&self.names, sub))
            .cmd("SET")
            .arg(a.inbox_key)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(claim_ms)
            .get(a.inbox_key)
            .cmd("HMGET")
            .arg(self.key("health", sub))
            .arg("open_until_ms")
            .arg("first_failure_ms");
        let (lease, new) = match a.pooled {
            Some(pooled) => (pooled.clone(), false),
            None => {
                let member = uuid::Uuid::new_v4().simple().to_string();
                (Lease { member, expires_ms: now + 2 * claim_ms }, true)
            }
        };
        if new {
            // Leases not yet expired; expired ones (of a process that died) are pruned by the
            // release below, the script and the key's own expiry.
            pipe.zadd(&inflight, &lease.member, lease.expires_ms)
                .ignore()
                .zcount(&inflight, now, "+inf")
                .pexpire(&inflight, 2 * claim_ms)
                .ignore();
        }
        let mut conn = self.conn.clone();
        let doing = || format!("admitting a delivery to {sub}");
        #[allow(clippy::type_complexity)]
        let (version, claimed, held, (open_until, failing), count) = if new {
            let reply: (
                Option<String>,
                Option<String>,
                Option<String>,
                (Option<i64>, Option<i64>),
                u64,
            ) = pipe.query_async(&mut conn).await.doing(doing)?;
            reply
        } else {
            let (v, c, h, f): (
                Option<String>,
                Option<String>,
                Option<String>,
                (Option<i64>, Option<i64>),
            ) = pipe.query_async(&mut conn).await.doing(doing)?;
            (v, c, h, f, 0)
        };
        let newer = |stored: Option<&str>| {
            stored.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                > a.version.parse::<u64>().unwrap_or(0)
        };
        let verdict = if newer(version.as_deref()) {
            Some(Admission::Stale)
        } else if held.as_deref() == Some(super::inbox::DELIVERED) {
            Some(Admission::Duplicate)
        } else if a.expired {
            Some(Admission::Expired)
        } else if claimed.is_none() {
            Some(Admission::InFlight)
        } else if open_until.unwrap_or(0) != 0 {
            None
        } else if count > u64::from(a.limit) {
            Some(Admission::Full)
        } else {
            // No failure counted and no breaker state: a success has nothing to reset.
            let failing = failing.is_some() || open_until.is_some();
            return Ok(Some(Admission::Admitted {
                token: token.to_string(),
                probe: false,
                failing,
                lease,
            }));
        };
        self.release(sub, token, a.inbox_key, new.then_some(lease.member.as_str())).await?;
        Ok(verdict)
    }

    /// The full admission check (see [`ADMIT`]), one round trip.
    async fn admit_script(
        &self,
        sub: &str,
        a: &Admit<'_>,
        token: String,
    ) -> Result<Admission, StoreError> {
        // Whole milliseconds keep the Lua arithmetic exact.
        let interval = a.min_interval.as_millis().min(u128::from(u32::MAX)) as u32;
        let now = now_ms();
        let claim_ms = a.lease.as_millis() as i64;
        let member = match a.pooled {
            Some(pooled) => pooled.member.clone(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut conn = self.conn.clone();
        let (verdict, n, used_pooled): (i64, i64, i64) = ADMIT_SCRIPT
            .key(super::subscriptions::revision_key(&self.names, sub))
            .key(a.inbox_key)
            .key(self.key("health", sub))
            .key(self.key("probe", sub))
            .key(self.key("rate", sub))
            .key(self.key("inflight", sub))
            .arg(a.version)
            .arg(now)
            .arg(u8::from(a.expired))
            .arg(a.probe_timeout.as_millis() as i64)
            .arg(0)
            .arg(interval)
            .arg(a.limit)
            .arg(claim_ms)
            .arg(&token)
            .arg(&member)
            .arg(2 * claim_ms)
            .arg(u8::from(a.pooled.is_some()))
            .invoke_async(&mut conn)
            .await
            .doing(|| format!("admitting a delivery to {sub}"))?;
        let ms = |n: i64| Duration::from_millis(n.max(0) as u64);
        Ok(match verdict {
            0 => Admission::Stale,
            1 => Admission::Duplicate,
            2 => Admission::Expired,
            // Spread over 2 s, so a large backlog does not come back all at once.
            3 => Admission::BreakerOpen {
                retry_in: ms(n) + Duration::from_millis(rand::random::<u64>() % 2000),
            },
            4 => Admission::RateLimited { wait: ms(n) },
            5 => Admission::Full,
            7 => Admission::InFlight,
            _ => {
                let lease = match a.pooled {
                    Some(pooled) if used_pooled == 1 => pooled.clone(),
                    _ => Lease { member, expires_ms: now + 2 * claim_ms },
                };
                Admission::Admitted { token, probe: n == 1, failing: true, lease }
            }
        })
    }

    /// Counts a failed attempt; opens the breaker at `threshold` consecutive failures (0 never)
    /// or when the failure was the half-open probe, for `open_for` doubled with each opening
    /// since the last success, at most `max_open_for`.
    pub async fn record_failure(
        &self,
        sub: &str,
        window: Duration,
        threshold: u64,
        breaker: Backoff,
    ) -> Result<FailureCount, StoreError> {
        let mut conn = self.conn.clone();
        let (n, opened_for): (u64, u64) = FAILURE_SCRIPT
            .key(self.key("health", sub))
            .key(self.key("probe", sub))
            .arg(now_ms())
            .arg(window.as_millis() as i64)
            .arg(threshold)
            .arg(breaker.first.as_millis() as i64)
            .arg(breaker.max.as_millis() as i64)
            .invoke_async(&mut conn)
            .await
            .doing(|| format!("counting a failure of {sub}"))?;
        let opened = (opened_for > 0).then(|| Duration::from_millis(opened_for));
        Ok(FailureCount { consecutive: n, opened })
    }

    /// A success, in one round trip: records the pair in the inbox (its claim becomes `1`, see
    /// [`super::inbox`]) and, when the endpoint had failures or breaker state counted
    /// (`failing`), resets the failure count and closes the breaker. The request's lease stays
    /// with this process (pooled for the next request, see [`Lease`]).
    pub async fn succeeded(
        &self,
        sub: &str,
        inbox_key: &str,
        dedupe_ttl: Duration,
        failing: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(inbox_key)
            .arg(super::inbox::DELIVERED)
            .arg("EX")
            .arg(dedupe_ttl.as_secs().max(1))
            .ignore();
        if failing {
            pipe.cmd("DEL").arg(self.key("health", sub)).arg(self.key("probe", sub)).ignore();
        }
        pipe.query_async::<()>(&mut conn).await.doing(|| format!("recording the success of {sub}"))
    }

    /// Whether the breaker of `sub` is open now (for metrics and stats).
    pub async fn is_open(&self, sub: &str) -> Result<bool, StoreError> {
        Ok(self.open_for(&[sub]).await?.first().is_some_and(Option::is_some))
    }

    /// How long each breaker stays open from now (`None`: closed or half-open), in one round
    /// trip.
    pub async fn open_for(&self, subs: &[&str]) -> Result<Vec<Option<Duration>>, StoreError> {
        if subs.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for sub in subs {
            pipe.hget(self.key("health", sub), "open_until_ms");
        }
        let until: Vec<Option<i64>> = pipe.query_async(&mut conn).await.doing(|| match subs {
            [one] => format!("reading the breaker of {one}"),
            many => format!("reading the breakers of {} subscriptions", many.len()),
        })?;
        let now = now_ms();
        Ok(until
            .into_iter()
            .map(|u| u.filter(|u| *u > now).map(|u| Duration::from_millis((u - now) as u64)))
            .collect())
    }

    /// Gives back the claim on the pair of `inbox_key` if `token` still holds it, and `lease`
    /// (a member of the endpoint's in-flight set) if one is given.
    pub async fn release(
        &self,
        sub: &str,
        token: &str,
        inbox_key: &str,
        lease: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        RELEASE_SCRIPT
            .key(self.key("inflight", sub))
            .key(inbox_key)
            .arg(token)
            .arg(now_ms())
            .arg(lease.unwrap_or(""))
            .invoke_async::<()>(&mut conn)
            .await
            .doing(|| format!("returning the claim of {sub}"))
    }

    /// Gives back leases this process no longer uses (idle in its pool, or too close to their
    /// expiry), in one round trip.
    pub async fn return_leases(&self, sub: &str, members: &[&str]) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.key("inflight", sub))
            .arg(members)
            .query_async::<()>(&mut conn)
            .await
            .doing(|| format!("returning {} in-flight leases of {sub}", members.len()))
    }
}
