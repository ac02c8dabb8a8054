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
        Report { scenario: scenario.into(), summary: String::new(), metrics: Map::new(), targets: Vec::new() }
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
        self.targets.push(Target { name: name.into(), goal: format!(">= {goal}"), value, pass: value >= goal });
    }

    /// Adds a target `value <= goal`.
    pub fn at_most(&mut self, name: &str, value: f64, goal: f64) {
        self.targets.push(Target { name: name.into(), goal: format!("<= {goal}"), value, pass: value <= goal });
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
            .map(|t| format!("{} {} {} ({})", if t.pass { "PASS" } else { "FAIL" }, t.name, t.goal, round(t.value)))
            .collect();
        format!("{:<14} {}\n{:<14} {}", self.scenario, self.summary, "", targets.join("; "))
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Header of the human table.
pub fn header() -> String {
    format!("{:<14} {}\n{}", "scenario", "result / targets", "-".repeat(100))
}
