//! What a scenario reports: its numbers (one JSON object with `--json`), a one-line human
//! summary for the table, and the targets with pass/fail.

use serde_json::{Map, Value, json};

/// One target of the issue, evaluated.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// Human form of the goal, e.g. `>= 0.3`.
    pub goal: String,
    pub value: f64,
    pub pass: bool,
}

/// A scenario's result.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub summary: String,
    pub metrics: Map<String, Value>,
    pub targets: Vec<Target>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.into(),
            summary: String::new(),
            metrics: Map::new(),
            targets: Vec::new(),
        }
    }

    /// Records a metric (numbers rounded to 3 decimals for readability).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let value = match value.into() {
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(0.0);
                json!((f * 1000.0).round() / 1000.0)
            }
            other => other,
        };
        self.metrics.insert(key.into(), value);
        self
    }

    /// A metric as f64, if recorded.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).and_then(Value::as_f64)
    }

    /// Adds a target `value >= goal`.
    pub fn at_least(&mut self, name: &str, value: f64, goal: f64) {
        self.targets.push(Target {
            name: name.into(),
            goal: format!(">= {goal}"),
            value,
            pass: value >= goal,
        });
    }

    /// Adds a target `value <= goal`.
    pub fn at_most(&mut self, name: &str, value: f64, goal: f64) {
        self.targets.push(Target {
            name: name.into(),
            goal: format!("<= {goal}"),
            value,
            pass: value <= goal,
        });
    }

    /// Adds the "no delivery lost" target: `missing` must be 0.
    pub fn nothing_lost(&mut self, missing: u64) {
        self.set("missing", missing);
        self.at_most("lost deliveries", missing as f64, 0.0);
    }

    pub fn passed(&self) -> bool {
        self.targets.iter().all(|t| t.pass)
    }

    /// The JSON object printed with `--json`.
    pub fn to_json(&self) -> Value {
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| json!({"name": t.name, "goal": t.goal, "value": round(t.value), "pass": t.pass}))
            .collect();
        json!({
            "scenario": self.scenario,
            "metrics": self.metrics,
            "targets": targets,
            "pass": self.passed(),
        })
    }

    /// One row of the human table.
    pub fn row(&self) -> String {
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} ({})",
                    if t.pass { "PASS" } else { "FAIL" },
                    t.name,
                    t.goal,
                    round(t.value)
                )
            })
            .collect();
        format!("{:<14} {}\n{:<14} {}", self.scenario, self.summary, "", targets.join("; "))
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Medians over repeated runs of one scenario: every numeric metric (nested ones as
/// `outer.inner`) and every target's value, with pass/fail judged on the median.
pub fn median_of(runs: &[&Report]) -> Report {
    let first = runs[0];
    let mut out = Report::new(&first.scenario);
    let mut keys = Vec::new();
    flatten("", &Value::Object(first.metrics.clone()), &mut keys);
    for (key, _) in keys {
        let mut values: Vec<f64> = runs
            .iter()
            .filter_map(|r| {
                let mut flat = Vec::new();
                flatten("", &Value::Object(r.metrics.clone()), &mut flat);
                flat.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
            })
            .collect();
        out.set(&key, median(&mut values));
    }
    for (i, t) in first.targets.iter().enumerate() {
        let mut values: Vec<f64> =
            runs.iter().filter_map(|r| r.targets.get(i)).map(|t| t.value).collect();
        let value = median(&mut values);
        let lower_is_better = t.goal.starts_with("<=");
        let goal: f64 = t.goal.trim_start_matches(['<', '>', '=', ' ']).parse().unwrap_or(0.0);
        let pass = if lower_is_better { value <= goal } else { value >= goal };
        out.targets.push(Target { name: t.name.clone(), goal: t.goal.clone(), value, pass });
    }
    let fmt: Vec<String> = out
        .metrics
        .iter()
        .filter(|(k, _)| SUMMARY_KEYS.iter().any(|s| k.ends_with(s)))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.summary = format!("median of {}: {}", runs.len(), fmt.join(" "));
    out
}

/// Metrics shown in the median table (the JSON has them all).
const SUMMARY_KEYS: &[&str] = &[
    "requests_per_s",
    "deliveries_per_s",
    "events_per_s",
    "p50_ms",
    "p99_ms",
    "hookline_peak_rss_mib",
    "steady_peak_rss_mib",
    "ratio_to_baseline",
    "ratio_to_fanout",
    "peak_ratio",
    "hookline_cpu_us_per_delivery",
    "all_cpu_us_per_delivery",
];

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::Number(n) => out.push((prefix.to_string(), n.as_f64().unwrap_or(0.0))),
        _ => {}
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// Header of the human table.
pub fn header() -> String {
    format!("{:<14} {}\n{}", "scenario", "result / targets", "-".repeat(100))
}
