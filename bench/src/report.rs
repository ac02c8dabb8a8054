//! What a scenario reports: its numbers (one JSON object with `--json`), a one-line human
//! summary for the table, and the targets with pass/fail; and the verdict of a whole
//! run, which sets the exit code.
//!
//! Invariant: a lost (event, subscription) pair fails the run, whatever the other runs did:
//! under `--runs N` targets are judged on the medians, but losses on every single run.

use serde_json::{Map, Value, json};

use crate::pairs::Loss;

/// Exit code when the benchmark ran but missed a target or lost a pair (1 is an error that
/// stopped it, 2 a usage error).
pub const EXIT_TARGET_MISSED: u8 = 3;

/// The exit statuses, for `--help`.
pub const EXIT_STATUS_HELP: &str = "Exit status: 0 every target met and no pair lost; 1 the \
    benchmark could not run (an error); 2 usage error; 3 it ran, and missed a target or lost an \
    (event, subscription) pair (one run losing a pair is enough, even under --runs N).";

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
    /// Expected (event, subscription) pairs this scenario never saw delivered.
    pub lost_pairs: u64,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.into(),
            summary: String::new(),
            metrics: Map::new(),
            targets: Vec::new(),
            lost_pairs: 0,
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

    /// Adds a "no pair lost" target named `name` for `loss`, counts its pairs toward the run's
    /// verdict, and lists a sample of them (and any unexpected receipts) in the metrics.
    pub fn no_loss(&mut self, name: &str, loss: &Loss) {
        self.lost_pairs += loss.lost;
        if !loss.sample.is_empty() {
            let sample = loss.sample.iter().map(|(path, id)| format!("{id} -> {path}"));
            let listed = self.metrics.entry("lost_sample").or_insert_with(|| json!([]));
            if let Value::Array(list) = listed {
                list.extend(sample.map(Value::from));
            }
        }
        if loss.unexpected > 0 {
            let before = self.get("unexpected_receipts").unwrap_or(0.0) as u64;
            self.set("unexpected_receipts", before + loss.unexpected);
        }
        self.at_most(name, loss.lost as f64, 0.0);
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
    "_cpu_us_per_delivery",
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

/// What a whole benchmark run came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Targets missed, as `scenario: target goal (value)`.
    pub missed: Vec<String>,
    /// Scenarios of single runs that lost pairs, as `run R scenario: N pair(s) lost`.
    pub lost: Vec<String>,
}

impl Verdict {
    /// Targets judged on `medians` when given (`--runs N`), else on every report of `runs`;
    /// lost pairs judged on every report of every run.
    pub fn of(runs: &[Vec<Report>], medians: Option<&[Report]>) -> Verdict {
        let judged: Vec<&Report> = match medians {
            Some(medians) => medians.iter().collect(),
            None => runs.iter().flatten().collect(),
        };
        let missed = judged
            .iter()
            .flat_map(|r| r.targets.iter().filter(|t| !t.pass).map(move |t| (r, t)))
            .map(|(r, t)| format!("{}: {} {} ({})", r.scenario, t.name, t.goal, round(t.value)))
            .collect();
        let lost = runs
            .iter()
            .enumerate()
            .flat_map(|(i, run)| run.iter().map(move |r| (i + 1, r)))
            .filter(|(_, r)| r.lost_pairs > 0)
            .map(|(run, r)| format!("run {run} {}: {} pair(s) lost", r.scenario, r.lost_pairs))
            .collect();
        Verdict { missed, lost }
    }

    pub fn passed(&self) -> bool {
        self.missed.is_empty() && self.lost.is_empty()
    }

    /// 0 when every target was met and nothing was lost, else [`EXIT_TARGET_MISSED`].
    pub fn exit_code(&self) -> u8 {
        if self.passed() { 0 } else { EXIT_TARGET_MISSED }
    }

    /// The closing lines of the human table.
    pub fn lines(&self) -> Vec<String> {
        if self.passed() {
            return vec!["all targets met, no pair lost".to_string()];
        }
        let missed = self.missed.iter().map(|m| format!("missed: {m}"));
        missed.chain(self.lost.iter().map(|l| format!("lost: {l}"))).collect()
    }
}

/// Header of the human table.
pub fn header() -> String {
    format!("{:<14} {}\n{}", "scenario", "result / targets", "-".repeat(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: &str, value: f64, lost: u64) -> Report {
        let mut r = Report::new(scenario);
        r.at_least("deliveries/s vs baseline", value, 0.3);
        r.no_loss(
            "lost deliveries",
            &Loss {
                lost,
                sample: vec![("/s/x-0".into(), "ev-1".into())][..lost.min(1) as usize].to_vec(),
                unexpected: 0,
            },
        );
        r
    }

    #[test]
    fn the_help_names_the_exit_status_of_a_missed_target() {
        assert!(EXIT_STATUS_HELP.contains(&format!("; {EXIT_TARGET_MISSED} it ran, and missed")));
    }

    #[test]
    fn all_targets_met_and_nothing_lost_exits_zero() {
        let verdict = Verdict::of(&[vec![report("fanout", 0.5, 0)]], None);
        assert!(verdict.passed());
        assert_eq!(verdict.exit_code(), 0);
    }

    #[test]
    fn a_missed_target_exits_non_zero() {
        let verdict = Verdict::of(&[vec![report("fanout", 0.2, 0)]], None);
        assert_eq!(verdict.missed, ["fanout: deliveries/s vs baseline >= 0.3 (0.2)"]);
        assert_eq!(verdict.exit_code(), EXIT_TARGET_MISSED);
    }

    #[test]
    fn one_run_losing_a_pair_fails_even_when_the_medians_pass() {
        let runs = vec![
            vec![report("fanout", 0.5, 0)],
            vec![report("fanout", 0.5, 2)],
            vec![report("fanout", 0.5, 0)],
        ];
        let refs: Vec<&Report> = runs.iter().flatten().collect();
        let medians = vec![median_of(&refs)];
        assert!(medians[0].passed(), "the median of 0, 2, 0 lost is 0");
        let verdict = Verdict::of(&runs, Some(&medians));
        assert!(verdict.missed.is_empty());
        assert_eq!(verdict.lost, ["run 2 fanout: 2 pair(s) lost"]);
        assert_eq!(verdict.exit_code(), EXIT_TARGET_MISSED);
    }

    #[test]
    fn medians_judge_the_targets_under_several_runs() {
        let runs = vec![
            vec![report("fanout", 0.2, 0)],
            vec![report("fanout", 0.5, 0)],
            vec![report("fanout", 0.6, 0)],
        ];
        let refs: Vec<&Report> = runs.iter().flatten().collect();
        let medians = vec![median_of(&refs)];
        assert_eq!(Verdict::of(&runs, Some(&medians)).exit_code(), 0);
    }

    #[test]
    fn lost_pairs_are_listed_in_the_metrics() {
        let r = report("fanout", 0.5, 3);
        assert_eq!(r.lost_pairs, 3);
        assert_eq!(r.metrics["lost_sample"], json!(["ev-1 -> /s/x-0"]));
        assert!(!r.passed());
    }
}
