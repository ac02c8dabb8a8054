//! Endpoint health in Redis, shared by every hookline process: consecutive-failure counting (for
//! auto-disable and the circuit breaker), the breaker's state, and per-endpoint limits
//! (in-flight leases and a GCRA rate limit). Each decision is one Lua script, so it is atomic
//! across processes.
//!
//! Keys (under `<p>:`): `health:<sub>` hash {failures, first_failure_ms, open_until_ms},
//! `probe:<sub>` (the half-open probe lock), `inflight:<sub>` zset of leases, `rate:<sub>` (GCRA
//! theoretical arrival time).

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Doing, StoreError};
use crate::subjects::Names;

/// What the breaker says about sending a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// Send.
    Closed,
    /// Send: this request is the one probe of a half-open breaker.
    Probe,
    /// Do not send; try again after this long.
    Open { retry_in: Duration },
}

/// The state after a failure was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Consecutive failures (no success in between) inside the window.
    pub consecutive: u64,
    /// The breaker (re)opened with this failure.
    pub opened: bool,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Health operations for one prefix.
#[derive(Clone)]
pub struct Health {
    conn: ConnectionManager,
    names: Names,
}

const BREAKER: &str = r#"
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until_ms') or '0')
local now = tonumber(ARGV[1])
if open_until == 0 then return {0, 0} end
if now < open_until then return {2, open_until - now} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return {1, 0} end
return {2, tonumber(ARGV[3])}
"#;

const FAILURE: &str = r#"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local open_for = tonumber(ARGV[4])
local first = tonumber(redis.call('HGET', KEYS[1], 'first_failure_ms') or '0')
if first == 0 or now - first > window then
  redis.call('HSET', KEYS[1], 'failures', 0, 'first_failure_ms', now)
end
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local was_probe = redis.call('DEL', KEYS[2])
local opened = 0
if threshold > 0 and (n >= threshold or was_probe == 1) then
  redis.call('HSET', KEYS[1], 'open_until_ms', now + open_for)
  opened = 1
end
redis.call('PEXPIRE', KEYS[1], window + open_for)
return {n, opened}
"#;

const ACQUIRE: &str = r#"
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"#;

const RATE: &str = r#"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > burst then return new_tat - now - burst end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', burst + interval)
return 0
"#;

impl Health {
    pub fn new(conn: ConnectionManager, names: Names) -> Health {
        Health { conn, names }
    }

    fn key(&self, kind: &str, sub: &str) -> String {
        self.names.key(&format!("{kind}:{sub}"))
    }

    /// The breaker's verdict for a request now. `probe_timeout` bounds how long one probe holds
    /// the half-open state.
    pub async fn breaker(&self, sub: &str, probe_timeout: Duration) -> Result<Breaker, StoreError> {
        let mut conn = self.conn.clone();
        let (state, wait): (i64, i64) = redis::Script::new(BREAKER)
            .key(self.key("health", sub))
            .key(self.key("probe", sub))
            .arg(now_ms())
            .arg(probe_timeout.as_millis() as i64)
            // While another process's probe is out, wait 1-3 s (spread, so a large backlog does
            // not come back all at once).
            .arg(1000 + (rand::random::<u64>() % 2000) as i64)
            .invoke_async(&mut conn)
            .await
            .doing(|| format!("reading the breaker of {sub}"))?;
        Ok(match state {
            0 => Breaker::Closed,
            1 => Breaker::Probe,
            _ => Breaker::Open { retry_in: Duration::from_millis(wait.max(0) as u64) },
        })
    }

    /// Counts a failed attempt; opens the breaker at `threshold` consecutive failures (0 never)
    /// or when the failure was the half-open probe.
    pub async fn record_failure(&self, sub: &str, window: Duration, threshold: u64, open_for: Duration) -> Result<FailureCount, StoreError> {
        let mut conn = self.conn.clone();
        let (n, opened): (u64, i64) = redis::Script::new(FAILURE)
            .key(self.key("health", sub))
            .key(self.key("probe", sub))
            .arg(now_ms())
            .arg(window.as_millis() as i64)
            .arg(threshold)
            .arg(open_for.as_millis() as i64)
            .invoke_async(&mut conn)
            .await
            .doing(|| format!("counting a failure of {sub}"))?;
        Ok(FailureCount { consecutive: n, opened: opened == 1 })
    }

    /// A success, in one round trip: records the pair in the inbox (`SET NX EX`, see
    /// [`super::inbox`]), returns the in-flight lease, resets the failure count and closes the
    /// breaker.
    pub async fn succeeded(&self, sub: &str, lease: &str, inbox_key: &str, dedupe_ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("SET").arg(inbox_key).arg(1).arg("NX").arg("EX").arg(dedupe_ttl.as_secs().max(1)).ignore()
            .cmd("ZREM").arg(self.key("inflight", sub)).arg(lease).ignore()
            .cmd("DEL").arg(self.key("health", sub)).arg(self.key("probe", sub)).ignore()
            .query_async::<()>(&mut conn)
            .await
            .doing(|| format!("recording the success of {sub}"))
    }

    /// Whether the breaker of `sub` is open now (for metrics and stats).
    pub async fn is_open(&self, sub: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let until: Option<i64> = redis::cmd("HGET")
            .arg(self.key("health", sub))
            .arg("open_until_ms")
            .query_async(&mut conn)
            .await
            .doing(|| format!("reading the breaker of {sub}"))?;
        Ok(until.is_some_and(|u| u > now_ms()))
    }

    /// Takes one of `limit` in-flight leases of `sub` (held at most `lease`); `None` when all
    /// are taken.
    pub async fn acquire(&self, sub: &str, limit: u32, lease: Duration) -> Result<Option<String>, StoreError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut conn = self.conn.clone();
        let got: i64 = redis::Script::new(ACQUIRE)
            .key(self.key("inflight", sub))
            .arg(now_ms())
            .arg(limit)
            .arg(lease.as_millis() as i64)
            .arg(&token)
            .invoke_async(&mut conn)
            .await
            .doing(|| format!("taking an in-flight lease of {sub}"))?;
        Ok((got == 1).then_some(token))
    }

    /// Returns a lease.
    pub async fn release(&self, sub: &str, token: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.key("inflight", sub))
            .arg(token)
            .query_async::<()>(&mut conn)
            .await
            .doing(|| format!("returning an in-flight lease of {sub}"))
    }

    /// GCRA: `Duration::ZERO` when a request at `rps` may go now, else how long to wait.
    /// Requests are spaced evenly (no burst), so any one-second window holds at most rps + 1.
    pub async fn rate(&self, sub: &str, rps: u32) -> Result<Duration, StoreError> {
        // Whole milliseconds keep the Lua arithmetic exact; rates above 1000/s are not limited
        // more finely than 1 ms.
        let interval = (1000 / rps.max(1)).max(1);
        let mut conn = self.conn.clone();
        let wait: i64 = redis::Script::new(RATE)
            .key(self.key("rate", sub))
            .arg(now_ms())
            .arg(interval)
            .arg(interval)
            .invoke_async(&mut conn)
            .await
            .doing(|| format!("checking the rate limit of {sub}"))?;
        Ok(Duration::from_millis(wait.max(0) as u64))
    }
}
