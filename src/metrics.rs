//! Process metrics in Prometheus text format: counters and a latency histogram updated on the
//! delivery path (lock held for a map update only), plus gauges read at scrape time from
//! JetStream and Redis (backlog per subscription, DLQ size, fan-out lag, breaker states,
//! disabled subscriptions). Hand-rolled: a few dozen lines beat a registry dependency here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the attempt latency histogram.
pub const LATENCY_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Vec<(&'static str, String)>), u64>,
    latency: Histogram,
    in_flight: i64,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut guard)
}

/// Adds 1 to a labelled counter.
pub fn inc(name: &'static str, labels: &[(&'static str, &str)]) {
    let labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
    with(|r| *r.counters.entry((name, labels)).or_default() += 1);
}

/// `2xx`, `4xx`, ... or `none` when no response came.
pub fn status_class(status: Option<u16>) -> String {
    status.map(|s| format!("{}xx", s / 100)).unwrap_or_else(|| "none".into())
}

/// Records one attempt's outcome and latency.
pub fn attempt(outcome: &str, status: Option<u16>, duration: Duration) {
    inc("hookline_deliveries_total", &[("outcome", outcome), ("status_class", &status_class(status))]);
    let secs = duration.as_secs_f64();
    with(|r| {
        let h = &mut r.latency;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    });
}

/// Tracks requests in flight (the guard decrements on drop).
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        with(|r| r.in_flight += 1);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        with(|r| r.in_flight -= 1);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", inner.join(","))
}

/// Gauges computed at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    pub backlog: Vec<(String, u64)>,
    pub dlq_messages: u64,
    pub fanout_lag: u64,
    pub deliver_pending: u64,
    pub breakers_open: Vec<String>,
    pub subscriptions_disabled: u64,
    pub subscriptions_total: u64,
}

/// The whole exposition.
pub fn render(g: &Gauges) -> String {
    let mut out = String::new();
    with(|r| {
        let mut last = "";
        for ((name, pairs), value) in &r.counters {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{} {value}", labels(pairs));
        }
        let h = &r.latency;
        out.push_str("# HELP hookline_attempt_duration_seconds Duration of delivery attempts (HTTP).\n");
        out.push_str("# TYPE hookline_attempt_duration_seconds histogram\n");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "hookline_attempt_duration_seconds_bucket{{le=\"{bound}\"}} {}", h.buckets[i]);
        }
        let _ = writeln!(out, "hookline_attempt_duration_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "hookline_attempt_duration_seconds_sum {}", h.sum);
        let _ = writeln!(out, "hookline_attempt_duration_seconds_count {}", h.count);
        let _ = writeln!(out, "# TYPE hookline_in_flight gauge\nhookline_in_flight {}", r.in_flight);
    });
    out.push_str("# HELP hookline_backlog Due deliveries waiting per subscription.\n# TYPE hookline_backlog gauge\n");
    for (sub, n) in &g.backlog {
        let _ = writeln!(out, "hookline_backlog{{subscription=\"{}\"}} {n}", escape(sub));
    }
    let _ = writeln!(out, "# TYPE hookline_dlq_messages gauge\nhookline_dlq_messages {}", g.dlq_messages);
    let _ = writeln!(out, "# TYPE hookline_fanout_lag gauge\nhookline_fanout_lag {}", g.fanout_lag);
    let _ = writeln!(out, "# TYPE hookline_deliver_pending gauge\nhookline_deliver_pending {}", g.deliver_pending);
    out.push_str("# HELP hookline_breaker_open 1 for each subscription whose circuit breaker is open.\n# TYPE hookline_breaker_open gauge\n");
    for sub in &g.breakers_open {
        let _ = writeln!(out, "hookline_breaker_open{{subscription=\"{}\"}} 1", escape(sub));
    }
    let _ = writeln!(out, "# TYPE hookline_subscriptions_disabled gauge\nhookline_subscriptions_disabled {}", g.subscriptions_disabled);
    let _ = writeln!(out, "# TYPE hookline_subscriptions gauge\nhookline_subscriptions {}", g.subscriptions_total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_histogram_and_gauges() {
        attempt("test_outcome", Some(503), Duration::from_millis(30));
        inc("hookline_test_total", &[("reason", "a\"b")]);
        let g = Gauges { backlog: vec![("sub_1".into(), 3)], dlq_messages: 2, ..Default::default() };
        let text = render(&g);
        assert!(text.contains("hookline_deliveries_total{outcome=\"test_outcome\",status_class=\"5xx\"} 1"), "{text}");
        assert!(text.contains("hookline_test_total{reason=\"a\\\"b\"} 1"));
        assert!(text.contains("hookline_attempt_duration_seconds_bucket{le=\"0.05\"}"));
        assert!(text.contains("hookline_backlog{subscription=\"sub_1\"} 3"));
        assert!(text.contains("hookline_dlq_messages 2"));
    }
}
