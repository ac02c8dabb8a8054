//! The verdict of a chaos run: for every (event, subscription) pair, was it delivered (the
//! endpoint answered 2xx at least once) or dead-lettered with a reason — or lost? And every
//! duplicate 2xx, with when it happened and the fault that explains it.
//!
//! A duplicate is explained by a crash:
//! - the hookline instance that got the first 2xx was SIGKILLed (or Redis went down) within
//!   [`EXPLAIN_WINDOW`] of it: the crash fell between the endpoint's answer and the
//!   inbox-dedupe write (or the ack);
//! - NATS went down between the event's publication and the repeated 2xx: JetStream rebuilds
//!   its duplicate window from the messages it still stores, so a step repeated across the
//!   restart (a fan-out or retry whose ack was lost) can make a second copy of a delivery.
//! Anything else is a duplicate in normal operation, which hookline promises never happens.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use hookline::pipeline::dlq::DlqEntry;

use crate::flaky::{Answer, Hit};
use crate::fleet::{Fault, Kind};

/// How close to a 2xx a fault must be to explain a duplicate of it.
pub const EXPLAIN_WINDOW: Duration = Duration::from_secs(2);

/// One subscription of the run.
pub struct Sub {
    pub name: String,
    pub id: String,
}

/// A second (or later) 2xx for one pair.
#[derive(Debug)]
pub struct Duplicate {
    pub name: String,
    pub event_id: String,
    pub first_at: Duration,
    pub again_at: Duration,
    pub cause: Option<String>,
}

/// What the run came to.
#[derive(Debug, Default)]
pub struct Report {
    pub events: usize,
    pub pairs: usize,
    pub delivered: usize,
    /// In the DLQ and never delivered.
    pub dead_lettered: usize,
    /// Delivered, and also in the DLQ (a 2xx lost in a crash, then the retries ran out).
    pub delivered_and_dead_lettered: usize,
    pub lost: Vec<(String, String)>,
    pub duplicates: Vec<Duplicate>,
    pub dlq_reasons: BTreeMap<String, usize>,
    pub dlq_without_reason: usize,
    /// Pairs with more than one DLQ entry: (name, event, times since the run started).
    pub dlq_repeats: Vec<(String, String, Vec<f64>)>,
    pub requests: usize,
}

impl Report {
    pub fn unexplained(&self) -> Vec<&Duplicate> {
        self.duplicates.iter().filter(|d| d.cause.is_none()).collect()
    }

    /// `events=N pairs=N delivered=N dead_lettered=N lost=N duplicates=N`.
    pub fn summary(&self) -> String {
        format!(
            "events={} pairs={} delivered={} dead_lettered={} lost={} duplicates={}",
            self.events,
            self.pairs,
            self.delivered,
            self.dead_lettered,
            self.lost.len(),
            self.duplicates.len()
        )
    }

    /// The summary plus the details a reader needs: reasons, duplicates and their causes, losses.
    pub fn details(&self, faults: &[Fault]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "requests={} delivered_and_dead_lettered={} dlq_reasons={:?}",
            self.requests, self.delivered_and_dead_lettered, self.dlq_reasons
        );
        let _ = writeln!(out, "faults ({}):", faults.len());
        for f in faults {
            let _ = writeln!(out, "  t={:>7.2}s  {}", f.at.as_secs_f64(), f.what);
        }
        let _ = writeln!(
            out,
            "duplicates ({}, unexplained {}):",
            self.duplicates.len(),
            self.unexplained().len()
        );
        for d in &self.duplicates {
            let cause = d.cause.as_deref().unwrap_or("UNEXPLAINED: no crash near the first 2xx");
            let _ = writeln!(
                out,
                "  {} {}: 2xx at t={:.2}s and again at t={:.2}s — {cause}",
                d.name,
                d.event_id,
                d.first_at.as_secs_f64(),
                d.again_at.as_secs_f64()
            );
        }
        let _ = writeln!(out, "pairs dead-lettered more than once ({}):", self.dlq_repeats.len());
        for (name, event, times) in &self.dlq_repeats {
            let _ = writeln!(out, "  {name} {event}: dlq entries at t={times:.2?}");
        }
        for (name, event) in self.lost.iter().take(20) {
            let _ = writeln!(out, "  LOST {name} {event}");
        }
        out
    }
}

/// Accounts every pair of `events` x `subs` against the endpoint's record and the DLQ.
pub fn account(
    events: &[(String, Duration)],
    subs: &[Sub],
    hits: &[Hit],
    dlq: &[DlqEntry],
    faults: &[Fault],
    run_started_at: time::OffsetDateTime,
) -> Report {
    let name_of: HashMap<&str, &str> =
        subs.iter().map(|s| (s.id.as_str(), s.name.as_str())).collect();
    let mut oks: HashMap<(&str, &str), Vec<&Hit>> = HashMap::new();
    for hit in hits.iter().filter(|h| h.answer == Answer::Ok) {
        oks.entry((hit.name.as_str(), hit.event_id.as_str())).or_default().push(hit);
    }
    let mut report = Report {
        events: events.len(),
        pairs: events.len() * subs.len(),
        requests: hits.len(),
        ..Default::default()
    };
    let mut in_dlq: HashSet<(&str, &str)> = HashSet::new();
    let mut dlq_times: HashMap<(&str, &str), Vec<f64>> = HashMap::new();
    for entry in dlq {
        if let Some(name) = name_of.get(entry.subscription_id.as_str()) {
            in_dlq.insert((name, entry.event_id.as_str()));
            let at = (entry.dead_lettered_at - run_started_at).as_seconds_f64();
            dlq_times.entry((name, entry.event_id.as_str())).or_default().push(at);
        }
        if entry.reason.is_empty() {
            report.dlq_without_reason += 1;
        }
        *report.dlq_reasons.entry(entry.reason.clone()).or_default() += 1;
    }
    for sub in subs {
        for (event, published) in events {
            let key = (sub.name.as_str(), event.as_str());
            match (oks.get(&key), in_dlq.contains(&key)) {
                (Some(list), dead) => {
                    report.delivered += 1;
                    report.delivered_and_dead_lettered += usize::from(dead);
                    report.duplicates.extend(duplicates(list, *published, faults));
                }
                (None, true) => report.dead_lettered += 1,
                (None, false) => report.lost.push((sub.name.clone(), event.clone())),
            }
        }
    }
    report.duplicates.sort_by_key(|d| d.again_at);
    report.dlq_repeats = dlq_times
        .into_iter()
        .filter(|(_, times)| times.len() > 1)
        .map(|((name, event), times)| (name.to_string(), event.to_string(), times))
        .collect();
    report.dlq_repeats.sort_by(|a, b| a.2[0].total_cmp(&b.2[0]));
    report
}

fn duplicates(oks: &[&Hit], published: Duration, faults: &[Fault]) -> Vec<Duplicate> {
    let mut sorted = oks.to_vec();
    sorted.sort_by_key(|h| h.at);
    sorted
        .windows(2)
        .map(|pair| {
            let (first, again) = (pair[0], pair[1]);
            Duplicate {
                name: first.name.clone(),
                event_id: first.event_id.clone(),
                first_at: first.at,
                again_at: again.at,
                cause: explain(first, again, published, faults),
            }
        })
        .collect()
}

fn explain(first: &Hit, again: &Hit, published: Duration, faults: &[Fault]) -> Option<String> {
    let crash = faults
        .iter()
        .filter(|f| {
            f.at + Duration::from_millis(200) >= first.at && f.at <= first.at + EXPLAIN_WINDOW
        })
        .find(|f| f.kind == Kind::Redis || f.agent.as_deref() == Some(first.agent.as_str()))
        .map(|f| {
            let delta = f.at.as_secs_f64() - first.at.as_secs_f64();
            format!("across {} ({delta:+.2}s after the first 2xx from {})", f.what, first.agent)
        });
    crash.or_else(|| {
        faults.iter().find(|f| f.kind == Kind::Nats && f.at > published && f.at < again.at).map(
            |f| {
                format!(
                    "a second copy across {} at t={:.2}s (event published at t={:.2}s)",
                    f.what,
                    f.at.as_secs_f64(),
                    published.as_secs_f64()
                )
            },
        )
    })
}
