//! Process metrics in Prometheus text format: counters and a latency histogram updated on the
//! delivery path (atomics for the per-delivery ones, a short locked list for the rest, whose
//! known series are exposed at 0 from the start), plus gauges read at scrape time from
//! JetStream and Redis (backlog per subscription, DLQ size, fan-out lag, breaker states,
//! disabled subscriptions). Hand-rolled: a few dozen lines beat a registry dependency here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the attempt latency histogram.
pub const LATENCY_BUCKETS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Outcomes of [`attempt`] counted without a lock (any other goes through the labelled map).
const OUTCOMES: [&str; 5] = ["succeeded", "failed", "deferred", "aborted", "dead_lettered"];
/// Status classes: `2xx`, `4xx`, ..., and `none` when no response came.
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// What is updated once or more per delivery: atomics, no lock and no allocation.
struct Hot {
    deliveries: [[AtomicU64; CLASSES.len()]; OUTCOMES.len()],
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
    in_flight: AtomicI64,
}

static HOT: Hot = Hot {
    deliveries: [const { [const { AtomicU64::new(0) }; CLASSES.len()] }; OUTCOMES.len()],
    buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
    count: AtomicU64::new(0),
    sum_ns: AtomicU64::new(0),
    in_flight: AtomicI64::new(0),
};

/// Labelled counters: few distinct series, so a short list scanned with borrowed labels (no
/// allocation once a series exists).
type Labels = Vec<(&'static str, String)>;
type Series = (&'static str, Labels, u64);

static COUNTERS: LazyLock<Mutex<Vec<Series>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// The labels of one known series.
type KnownLabels = &'static [(&'static str, &'static str)];

/// Labelled counters exposed at 0 before their first increment, with every label set they are
/// incremented with (by the fan-out, the delivery step and the consume loop), so `rate()` and
/// alerts see each series from the start of a process instead of from its first event.
const KNOWN: &[(&str, &[KnownLabels])] = &[
    ("hookline_breaker_opened_total", &[&[]]),
    (
        "hookline_dead_letters_total",
        &[
            &[("reason", "endpoint_gone")],
            &[("reason", "max_age_exceeded")],
            &[("reason", "retries_exhausted")],
            &[("reason", "ssrf_blocked")],
            &[("reason", "subscription_disabled")],
            &[("reason", "subscription_inactive")],
            &[("reason", "subscription_mismatch")],
            &[("reason", "unknown_subscription")],
        ],
    ),
    (
        "hookline_deferrals_total",
        &[
            &[("reason", "breaker_open")],
            &[("reason", "http_429")],
            &[("reason", "in_flight_limit")],
            &[("reason", "rate_limited")],
        ],
    ),
    ("hookline_first_attempts_total", &[&[("path", "fanout")], &[("path", "handed_over")]]),
    ("hookline_subscription_index_rebuilds_total", &[&[]]),
    ("hookline_subscriptions_disabled_total", &[&[("reason", "failing")], &[("reason", "gone")]]),
    (
        "hookline_transient_errors_total",
        &[
            &[("role", "deliver"), ("backend", "nats")],
            &[("role", "deliver"), ("backend", "redis")],
            &[("role", "fanout"), ("backend", "nats")],
            &[("role", "fanout"), ("backend", "redis")],
        ],
    ),
];

/// Adds 1 to a labelled counter.
pub fn inc(name: &'static str, labels: &[(&'static str, &str)]) {
    let mut counters = COUNTERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let same = |(n, l, _): &&mut Series| {
        *n == name
            && l.len() == labels.len()
            && l.iter().zip(labels).all(|((k, v), (k2, v2))| k == k2 && v == v2)
    };
    match counters.iter_mut().find(|s| same(s)) {
        Some(series) => series.2 += 1,
        None => counters.push((name, labels.iter().map(|(k, v)| (*k, v.to_string())).collect(), 1)),
    }
}

/// The index in [`CLASSES`] of a response's status.
fn class_index(status: Option<u16>) -> usize {
    match status.map(|s| s / 100) {
        Some(c @ 1..=5) => c as usize - 1,
        _ => CLASSES.len() - 1,
    }
}

/// Records one attempt's outcome and latency.
pub fn attempt(outcome: &str, status: Option<u16>, duration: Duration) {
    match OUTCOMES.iter().position(|o| *o == outcome) {
        Some(i) => {
            HOT.deliveries[i][class_index(status)].fetch_add(1, Ordering::Relaxed);
        }
        None => inc(
            "hookline_deliveries_total",
            &[("outcome", outcome), ("status_class", CLASSES[class_index(status)])],
        ),
    }
    let secs = duration.as_secs_f64();
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        if secs <= *bound {
            HOT.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    HOT.count.fetch_add(1, Ordering::Relaxed);
    HOT.sum_ns.fetch_add(duration.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// Tracks requests in flight (the guard decrements on drop).
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        HOT.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        HOT.in_flight.fetch_sub(1, Ordering::Relaxed);
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
    /// Whether this process's Redis subscription index is complete (`None`: no process context).
    pub subscription_index_ready: Option<bool>,
}

/// Every counter series by name and labels: the known ones (at 0 until counted), the labelled
/// list, and the lock-free delivery counts that are not 0.
fn counters() -> BTreeMap<(&'static str, Labels), u64> {
    let mut counters: BTreeMap<(&str, Labels), u64> = BTreeMap::new();
    for (name, label_sets) in KNOWN {
        for set in *label_sets {
            let labels = set.iter().map(|(k, v)| (*k, v.to_string())).collect();
            counters.insert((*name, labels), 0);
        }
    }
    for (name, labels, value) in
        COUNTERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter()
    {
        *counters.entry((*name, labels.clone())).or_default() += value;
    }
    for (i, outcome) in OUTCOMES.iter().enumerate() {
        for (j, class) in CLASSES.iter().enumerate() {
            let n = HOT.deliveries[i][j].load(Ordering::Relaxed);
            if n > 0 {
                let labels =
                    vec![("outcome", outcome.to_string()), ("status_class", class.to_string())];
                *counters.entry(("hookline_deliveries_total", labels)).or_default() += n;
            }
        }
    }
    counters
}

/// The whole exposition.
pub fn render(g: &Gauges) -> String {
    let mut out = String::new();
    let mut last = "";
    for ((name, pairs), value) in &counters() {
        if *name != last {
            let _ = writeln!(out, "# TYPE {name} counter");
            last = name;
        }
        let _ = writeln!(out, "{name}{} {value}", labels(pairs));
    }
    out.push_str(
        "# HELP hookline_attempt_duration_seconds Duration of delivery attempts (HTTP).\n",
    );
    out.push_str("# TYPE hookline_attempt_duration_seconds histogram\n");
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        let _ = writeln!(
            out,
            "hookline_attempt_duration_seconds_bucket{{le=\"{bound}\"}} {}",
            HOT.buckets[i].load(Ordering::Relaxed)
        );
    }
    let count = HOT.count.load(Ordering::Relaxed);
    let _ = writeln!(out, "hookline_attempt_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "hookline_attempt_duration_seconds_sum {}",
        HOT.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
    );
    let _ = writeln!(out, "hookline_attempt_duration_seconds_count {count}");
    let _ = writeln!(
        out,
        "# TYPE hookline_in_flight gauge\nhookline_in_flight {}",
        HOT.in_flight.load(Ordering::Relaxed)
    );
    out.push_str("# HELP hookline_backlog Due deliveries waiting per subscription.\n# TYPE hookline_backlog gauge\n");
    for (sub, n) in &g.backlog {
        let _ = writeln!(out, "hookline_backlog{{subscription=\"{}\"}} {n}", escape(sub));
    }
    let _ = writeln!(
        out,
        "# TYPE hookline_dlq_messages gauge\nhookline_dlq_messages {}",
        g.dlq_messages
    );
    let _ = writeln!(out, "# TYPE hookline_fanout_lag gauge\nhookline_fanout_lag {}", g.fanout_lag);
    let _ = writeln!(
        out,
        "# TYPE hookline_deliver_pending gauge\nhookline_deliver_pending {}",
        g.deliver_pending
    );
    out.push_str("# HELP hookline_breaker_open 1 for each subscription whose circuit breaker is open.\n# TYPE hookline_breaker_open gauge\n");
    for sub in &g.breakers_open {
        let _ = writeln!(out, "hookline_breaker_open{{subscription=\"{}\"}} 1", escape(sub));
    }
    let _ = writeln!(
        out,
        "# TYPE hookline_subscriptions_disabled gauge\nhookline_subscriptions_disabled {}",
        g.subscriptions_disabled
    );
    let _ = writeln!(
        out,
        "# TYPE hookline_subscriptions gauge\nhookline_subscriptions {}",
        g.subscriptions_total
    );
    if let Some(ready) = g.subscription_index_ready {
        let _ = writeln!(
            out,
            "# HELP hookline_subscription_index_ready 1 when the Redis subscription index is complete, 0 while it is rebuilt from the bucket.\n# TYPE hookline_subscription_index_ready gauge\nhookline_subscription_index_ready {}",
            u8::from(ready)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_histogram_and_gauges() {
        attempt("test_outcome", Some(503), Duration::from_millis(30));
        inc("hookline_test_total", &[("reason", "a\"b")]);
        let g =
            Gauges { backlog: vec![("sub_1".into(), 3)], dlq_messages: 2, ..Default::default() };
        let text = render(&g);
        assert!(
            text.contains(
                "hookline_deliveries_total{outcome=\"test_outcome\",status_class=\"5xx\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("hookline_test_total{reason=\"a\\\"b\"} 1"));
        assert!(text.contains("hookline_attempt_duration_seconds_bucket{le=\"0.05\"}"));
        assert!(text.contains("hookline_backlog{subscription=\"sub_1\"} 3"));
        assert!(text.contains("hookline_dlq_messages 2"));
    }

    #[test]
    fn every_known_counter_is_exposed_before_its_first_increment() {
        let text = render(&Gauges::default());
        for line in [
            "hookline_breaker_opened_total ",
            "hookline_deferrals_total{reason=\"breaker_open\"} ",
            "hookline_deferrals_total{reason=\"http_429\"} ",
            "hookline_subscriptions_disabled_total{reason=\"failing\"} ",
            "hookline_transient_errors_total{role=\"fanout\",backend=\"redis\"} ",
            "hookline_transient_errors_total{role=\"deliver\",backend=\"nats\"} ",
            "hookline_dead_letters_total{reason=\"retries_exhausted\"} ",
        ] {
            assert_eq!(text.lines().filter(|l| l.starts_with(line)).count(), 1, "{line}\n{text}");
        }
        assert_eq!(text.matches("# TYPE hookline_deferrals_total counter").count(), 1, "{text}");
    }
}
