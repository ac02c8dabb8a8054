//! Delivery statistics per subscription and overall, over the last 5 min / 1 h / 24 h: success
//! rate, latency percentiles, failures by type. Kept as per-minute Redis hashes
//! (`<p>:stats:<sub|_all>:<unix minute>`, expiring after 25 h) written off the delivery path by
//! the attempt recorder, so every process contributes and a query sums at most 1,440 buckets.
//! Latency uses the metrics histogram's buckets, so percentiles are bucket upper bounds.

use std::collections::BTreeMap;

use crate::store::RedisConn;
use serde::Serialize;

use crate::attempt_record::{AttemptRecord, AttemptStatus, FailureKind};
use crate::metrics::LATENCY_BUCKETS;
use crate::subjects::Names;

const ALL: &str = "_all";

fn key(names: &Names, scope: &str, minute: i64) -> String {
    names.key(&format!("stats:{scope}:{minute}"))
}

fn minute_of(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp() / 60
}

/// Counts of a batch of attempt records per minute bucket, written in one round trip with
/// one `HINCRBY` per (bucket, field) and one `EXPIRE` per bucket, however many records the
/// batch holds.
#[derive(Debug, Default)]
pub struct Tally {
    buckets: BTreeMap<String, BTreeMap<String, i64>>,
}

impl Tally {
    /// Counts one record in its subscription's and the overall minute bucket.
    pub fn add(&mut self, names: &Names, r: &AttemptRecord) {
        if r.test {
            return;
        }
        let outcome = match r.status {
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed | AttemptStatus::Aborted => "failed",
            AttemptStatus::DeadLettered => "dead_lettered",
            AttemptStatus::Deferred => "deferred",
            AttemptStatus::SkippedDuplicate => return,
        };
        let minute = minute_of(r.at);
        let latency = (r.http_status.is_some() && !matches!(r.status, AttemptStatus::Deferred))
            .then(|| {
                let secs = r.duration_ms as f64 / 1000.0;
                LATENCY_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(LATENCY_BUCKETS.len())
            });
        for scope in [r.subscription_id.as_str(), ALL] {
            let fields = self.buckets.entry(key(names, scope, minute)).or_default();
            *fields.entry(outcome.to_string()).or_default() += 1;
            if let Some(kind) = r.error_kind {
                *fields.entry(format!("kind:{}", kind.as_str())).or_default() += 1;
            }
            if let Some(bucket) = latency {
                *fields.entry(format!("lat:{bucket}")).or_default() += 1;
            }
        }
    }

    /// Adds the batch's commands to `pipe`.
    pub fn write(&self, pipe: &mut redis::Pipeline) {
        for (key, fields) in &self.buckets {
            for (field, n) in fields {
                pipe.hincr(key, field, *n).ignore();
            }
            pipe.expire(key, 25 * 3600).ignore();
        }
    }
}

/// Statistics of one window.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct WindowStats {
    pub succeeded: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub deferred: u64,
    /// succeeded / (succeeded + failed + dead_lettered); absent without attempts.
    pub success_rate: Option<f64>,
    /// Upper bounds of the latency buckets holding the 50th, 95th and 99th percentile, ms.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Failed attempts by type: timeout, connect, dns, tls, blocked, 3xx, 4xx, 5xx, other.
    pub failures_by_type: BTreeMap<String, u64>,
}

/// The three standard windows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Windows {
    #[serde(rename = "5m")]
    pub last_5m: WindowStats,
    #[serde(rename = "1h")]
    pub last_1h: WindowStats,
    #[serde(rename = "24h")]
    pub last_24h: WindowStats,
}

/// Sums the buckets of the last `minutes` minutes (`subscription` None: overall).
pub async fn window(
    redis: &RedisConn,
    names: &Names,
    subscription: Option<&str>,
    minutes: i64,
) -> redis::RedisResult<WindowStats> {
    let scope = subscription.unwrap_or(ALL);
    let now = minute_of(time::OffsetDateTime::now_utc());
    let mut pipe = redis::pipe();
    for m in (now - minutes + 1)..=now {
        pipe.hgetall(key(names, scope, m));
    }
    let mut conn = redis.clone();
    let buckets: Vec<BTreeMap<String, u64>> = pipe.query_async(&mut conn).await?;
    let mut sum: BTreeMap<String, u64> = BTreeMap::new();
    for b in buckets {
        for (k, v) in b {
            *sum.entry(k).or_default() += v;
        }
    }
    Ok(summarize(&sum))
}

fn summarize(sum: &BTreeMap<String, u64>) -> WindowStats {
    let get = |k: &str| sum.get(k).copied().unwrap_or(0);
    let (succeeded, failed, dead_lettered, deferred) =
        (get("succeeded"), get("failed"), get("dead_lettered"), get("deferred"));
    let decided = succeeded + failed + dead_lettered;
    let hist: Vec<u64> = (0..=LATENCY_BUCKETS.len()).map(|i| get(&format!("lat:{i}"))).collect();
    let total: u64 = hist.iter().sum();
    let percentile = |q: f64| -> Option<f64> {
        if total == 0 {
            return None;
        }
        let target = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in hist.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Some(LATENCY_BUCKETS.get(i).map(|b| b * 1000.0).unwrap_or(f64::INFINITY));
            }
        }
        None
    };
    let failures_by_type = FailureKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), get(&format!("kind:{}", k.as_str()))))
        .filter(|(_, n)| *n > 0)
        .collect();
    WindowStats {
        succeeded,
        failed,
        dead_lettered,
        deferred,
        success_rate: (decided > 0).then(|| succeeded as f64 / decided as f64),
        latency_p50_ms: percentile(0.50),
        latency_p95_ms: percentile(0.95),
        latency_p99_ms: percentile(0.99),
        failures_by_type,
    }
}

/// 5 min, 1 h and 24 h.
pub async fn windows(
    redis: &RedisConn,
    names: &Names,
    subscription: Option<&str>,
) -> redis::RedisResult<Windows> {
    Ok(Windows {
        last_5m: window(redis, names, subscription, 5).await?,
        last_1h: window(redis, names, subscription, 60).await?,
        last_24h: window(redis, names, subscription, 1440).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_computes_rate_percentiles_and_failure_types() {
        let mut sum = BTreeMap::new();
        sum.insert("succeeded".to_string(), 8);
        sum.insert("failed".to_string(), 2);
        sum.insert("kind:timeout".to_string(), 2);
        sum.insert("lat:1".to_string(), 9); // <= 10 ms
        sum.insert("lat:6".to_string(), 1); // <= 500 ms
        let s = summarize(&sum);
        assert_eq!(s.success_rate, Some(0.8));
        assert_eq!(
            (s.latency_p50_ms, s.latency_p95_ms, s.latency_p99_ms),
            (Some(10.0), Some(500.0), Some(500.0))
        );
        assert_eq!(s.failures_by_type.get("timeout"), Some(&2));
        assert_eq!(summarize(&BTreeMap::new()).success_rate, None);
    }

    #[test]
    fn a_batch_is_counted_per_bucket_and_field_not_per_record() {
        let names = Names::new("t");
        let at = time::macros::datetime!(2026-01-01 10:00:30 UTC);
        let record = |sub: &str, status, http: Option<u16>, kind, ms| AttemptRecord {
            attempt_id: "att".into(),
            subscription_id: sub.into(),
            event_id: "evt".into(),
            event_type: "t".into(),
            tenant_id: None,
            attempt: 1,
            status,
            http_status: http,
            duration_ms: ms,
            error: None,
            error_kind: kind,
            response_body: None,
            next_retry_at: None,
            at,
            test: false,
        };
        let mut tally = Tally::default();
        for _ in 0..3 {
            tally.add(&names, &record("sub_a", AttemptStatus::Succeeded, Some(204), None, 2));
        }
        tally.add(
            &names,
            &record("sub_b", AttemptStatus::Failed, Some(500), Some(FailureKind::Server5xx), 2),
        );
        tally.add(&names, &record("sub_b", AttemptStatus::SkippedDuplicate, None, None, 0));
        let minute = minute_of(at);
        let a = &tally.buckets[&key(&names, "sub_a", minute)];
        assert_eq!((a["succeeded"], a["lat:0"], a.len()), (3, 3, 2));
        let all = &tally.buckets[&key(&names, ALL, minute)];
        assert_eq!((all["succeeded"], all["failed"], all["kind:5xx"], all["lat:0"]), (3, 1, 1, 4));
        let mut pipe = redis::pipe();
        tally.write(&mut pipe);
        // 3 buckets: sub_a (2 fields), sub_b (3), all (4), each with one EXPIRE.
        assert_eq!(pipe.cmd_iter().count(), 2 + 3 + 4 + 3);
    }
}
