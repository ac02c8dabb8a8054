//! The verdict of a chaos run: for every (event, subscription) pair, was it delivered (the
//! endpoint answered 2xx at least once) or dead-lettered with a reason — or lost? And every pair
//! that ended more than once (a second 2xx, a DLQ entry besides a 2xx, a second DLQ entry), with
//! when it happened and the fault that explains it.
//!
//! What can explain a repeat, each rule bounded in time like a crash must be:
//! - a second 2xx, or a DLQ entry after a 2xx: the hookline instance that got the 2xx was
//!   SIGKILLed, or Redis went down, within [`EXPLAIN_WINDOW`] of that 2xx and before the repeat
//!   (the crash fell between the endpoint's answer and the inbox-dedupe write, or Redis lost
//!   that write). Nothing else: two copies of a delivery never POST at once (the pair is
//!   claimed in Redis before its POST), and a later copy finds the pair in the inbox;
//! - a DLQ entry besides a 2xx (two copies of the delivery, each with its own attempts), or a
//!   second DLQ entry more than [`DUPLICATE_WINDOW`] after the first (closer, the DLQ stream
//!   drops it: the entry's id is the pair's): NATS went down after the event was published and
//!   within [`EXPLAIN_WINDOW`] of one of the pair's requests — when the fan-out or a retry
//!   publish whose ack the outage lost was made — and before the repeat. JetStream rebuilds its
//!   duplicate window from the messages it still stores, so that step, repeated after the
//!   restart, makes a second copy.
//!
//! Anything else is a repeat in normal operation, which hookline promises never happens.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use hookline::pipeline::dlq::DlqEntry;

use crate::flaky::{Answer, Endpoint, Hit};
use crate::fleet::{Fault, Kind};

/// How close to a 2xx a fault must be to explain a duplicate of it.
pub const EXPLAIN_WINDOW: Duration = Duration::from_secs(2);

/// The streams' duplicate window (`streams.duplicate_window`, not set by the chaos config).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long after a server fault the endpoint's 2xx answers are watched for a pause.
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(30);

/// One subscription of the run.
pub struct Sub {
    pub name: String,
    pub id: String,
    pub endpoint: Endpoint,
}

/// What a pair got more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// A second (or later) 2xx.
    Delivered,
    /// A DLQ entry besides a 2xx.
    DeadLetteredAfterDelivery,
    /// A second (or later) DLQ entry.
    DeadLetteredTwice,
}

/// A pair that got an outcome again: `first_at` the earlier outcome, `again_at` the repeat.
#[derive(Debug)]
pub struct Duplicate {
    pub repeat: Repeat,
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
    /// Every repeated outcome: second 2xx, DLQ entries besides a 2xx, second DLQ entries.
    pub duplicates: Vec<Duplicate>,
    pub dlq_reasons: BTreeMap<String, usize>,
    pub dlq_without_reason: usize,
    /// Pairs with more than one DLQ entry: (name, event, times since the run started).
    pub dlq_repeats: Vec<(String, String, Vec<f64>)>,
    /// DLQ entries of subscriptions or events the run does not know.
    pub dlq_strangers: usize,
    /// DLQ entries of pairs whose endpoint always answers 2xx ([`Endpoint::Healthy`]).
    pub dlq_of_healthy: usize,
    pub requests: usize,
    /// Requests to endpoints of no subscription of the ledger (one whose filter matches none of
    /// the run's events).
    pub requests_unmatched: usize,
    /// hookline SIGKILLs in all.
    pub kills: usize,
    /// Kills of an instance that had already sent requests (not one still starting).
    pub kills_of_working_instances: usize,
    /// For each server fault (NATS or Redis), the longest pause in 2xx answers after it, until
    /// the next fault or [`RECOVERY_WINDOW`]: how long delivery stalled, the time to recover.
    pub pauses: Vec<(String, Duration)>,
}

impl Report {
    /// Repeats no fault explains.
    pub fn unexplained(&self) -> Vec<&Duplicate> {
        self.duplicates.iter().filter(|d| d.cause.is_none()).collect()
    }

    /// Repeats of one kind.
    pub fn repeats(&self, repeat: Repeat) -> impl Iterator<Item = &Duplicate> {
        self.duplicates.iter().filter(move |d| d.repeat == repeat)
    }

    /// `events=N pairs=N delivered=N dead_lettered=N lost=N duplicates=N` and the repeats by
    /// kind.
    pub fn summary(&self) -> String {
        format!(
            "events={} pairs={} delivered={} dead_lettered={} lost={} duplicates={} \
             dlq_after_2xx={} dlq_twice={}",
            self.events,
            self.pairs,
            self.delivered,
            self.dead_lettered,
            self.lost.len(),
            self.repeats(Repeat::Delivered).count(),
            self.repeats(Repeat::DeadLetteredAfterDelivery).count(),
            self.repeats(Repeat::DeadLetteredTwice).count()
        )
    }

    /// The summary plus the details a reader needs: reasons, duplicates and their causes, losses.
    pub fn details(&self, faults: &[Fault]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "requests={} requests_unmatched={} delivered_and_dead_lettered={} dlq_reasons={:?} dlq_strangers={} \
             dlq_of_healthy={} kills={} of working instances={}",
            self.requests,
            self.requests_unmatched,
            self.delivered_and_dead_lettered,
            self.dlq_reasons,
            self.dlq_strangers,
            self.dlq_of_healthy,
            self.kills,
            self.kills_of_working_instances
        );
        let _ = writeln!(out, "faults ({}):", faults.len());
        for f in faults {
            let _ = writeln!(out, "  t={:>7.2}s  {}", f.at.as_secs_f64(), f.what);
        }
        for (what, pause) in &self.pauses {
            let _ = writeln!(
                out,
                "  longest pause in 2xx answers after {what} (until the next fault): {:.1}s",
                pause.as_secs_f64()
            );
        }
        let _ = writeln!(
            out,
            "duplicates ({}, unexplained {}):",
            self.duplicates.len(),
            self.unexplained().len()
        );
        for d in &self.duplicates {
            let cause = d.cause.as_deref().unwrap_or("UNEXPLAINED: no fault near it");
            let what = match d.repeat {
                Repeat::Delivered => "2xx at t={first} and again at t={again}",
                Repeat::DeadLetteredAfterDelivery => "2xx at t={first}, dead-lettered at t={again}",
                Repeat::DeadLetteredTwice => "dead-lettered at t={first} and again at t={again}",
            }
            .replace("{first}", &format!("{:.2}s", d.first_at.as_secs_f64()))
            .replace("{again}", &format!("{:.2}s", d.again_at.as_secs_f64()));
            let _ = writeln!(out, "  {} {}: {what} — {cause}", d.name, d.event_id);
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
    let healthy: Vec<&str> =
        subs.iter().filter(|s| s.endpoint == Endpoint::Healthy).map(|s| s.id.as_str()).collect();
    let published: HashMap<&str, Duration> =
        events.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    let mut all: HashMap<(&str, &str), Vec<&Hit>> = HashMap::new();
    for hit in hits {
        all.entry((hit.name.as_str(), hit.event_id.as_str())).or_default().push(hit);
    }
    let mut report = Report {
        events: events.len(),
        pairs: events.len() * subs.len(),
        requests: hits.len(),
        requests_unmatched: hits.iter().filter(|h| !subs.iter().any(|s| s.name == h.name)).count(),
        ..Default::default()
    };
    let mut dlq_times: HashMap<(&str, &str), Vec<Duration>> = HashMap::new();
    for entry in dlq {
        match name_of.get(entry.subscription_id.as_str()) {
            Some(name) if published.contains_key(entry.event_id.as_str()) => {
                let at = (entry.dead_lettered_at - run_started_at).as_seconds_f64().max(0.0);
                dlq_times
                    .entry((name, entry.event_id.as_str()))
                    .or_default()
                    .push(Duration::from_secs_f64(at));
            }
            _ => report.dlq_strangers += 1,
        }
        if entry.reason.is_empty() {
            report.dlq_without_reason += 1;
        }
        report.dlq_of_healthy += usize::from(healthy.contains(&entry.subscription_id.as_str()));
        *report.dlq_reasons.entry(entry.reason.clone()).or_default() += 1;
    }
    for sub in subs {
        for (event, published) in events {
            let key = (sub.name.as_str(), event.as_str());
            let mut requests = all.get(&key).cloned().unwrap_or_default();
            requests.sort_by_key(|h| h.at);
            let oks: Vec<&Hit> =
                requests.iter().copied().filter(|h| h.answer == Answer::Ok).collect();
            let mut dead = dlq_times.get(&key).cloned().unwrap_or_default();
            dead.sort();
            let pair = Pair { name: &sub.name, event, published: *published, requests: &requests };
            match (oks.is_empty(), dead.is_empty()) {
                (false, _) => {
                    report.delivered += 1;
                    report.delivered_and_dead_lettered += usize::from(!dead.is_empty());
                }
                (true, false) => report.dead_lettered += 1,
                (true, true) => report.lost.push((sub.name.clone(), event.clone())),
            }
            report.duplicates.extend(pair.repeats(&oks, &dead, faults));
        }
    }
    report.duplicates.sort_by_key(|d| d.again_at);
    report.dlq_repeats = dlq_times
        .into_iter()
        .filter(|(_, times)| times.len() > 1)
        .map(|((name, event), times)| {
            (name.to_string(), event.to_string(), times.iter().map(Duration::as_secs_f64).collect())
        })
        .collect();
    report.dlq_repeats.sort_by(|a, b| a.2[0].total_cmp(&b.2[0]));
    let kills: Vec<&Fault> = faults.iter().filter(|f| f.kind == Kind::Kill).collect();
    report.kills = kills.len();
    report.kills_of_working_instances = kills
        .iter()
        .filter(|f| {
            hits.iter().any(|h| Some(h.agent.as_str()) == f.agent.as_deref() && h.at <= f.at)
        })
        .count();
    let mut oks: Vec<Duration> =
        hits.iter().filter(|h| h.answer == Answer::Ok).map(|h| h.at).collect();
    oks.sort();
    report.pauses = faults
        .iter()
        .filter(|f| matches!(f.kind, Kind::Nats | Kind::Redis))
        .map(|f| {
            let next = faults.iter().map(|g| g.at).filter(|at| *at > f.at).min();
            let until = next.unwrap_or(Duration::MAX).min(f.at + RECOVERY_WINDOW);
            (f.what.clone(), longest_pause(&oks, f.at, until))
        })
        .collect();
    report
}

/// The longest gap between 2xx answers (`oks`, sorted) from `from` to `until`, the first gap
/// starting at `from`; the last one ends at `until`, or at the run's last 2xx if that is earlier
/// (after it the run had no more work, not a stall).
fn longest_pause(oks: &[Duration], from: Duration, until: Duration) -> Duration {
    let end = until.min(oks.last().copied().unwrap_or(from));
    let mut last = from;
    let mut longest = Duration::ZERO;
    for &at in oks.iter().filter(|at| **at >= from && **at <= until) {
        longest = longest.max(at - last);
        last = at;
    }
    longest.max(end.saturating_sub(last))
}

/// One pair's record at the endpoint, for explaining its repeats.
struct Pair<'a> {
    name: &'a str,
    event: &'a str,
    published: Duration,
    /// Every request of the pair, oldest first.
    requests: &'a [&'a Hit],
}

impl Pair<'_> {
    /// Every repeated outcome of the pair, each with its explanation if there is one.
    fn repeats(&self, oks: &[&Hit], dead: &[Duration], faults: &[Fault]) -> Vec<Duplicate> {
        let mut out = Vec::new();
        for pair in oks.windows(2) {
            let (first, again) = (pair[0], pair[1]);
            let cause = crash_after(first, again.at, faults);
            out.push(self.repeat(Repeat::Delivered, first.at, again.at, cause));
        }
        if let (Some(first), Some(&dead_at)) = (oks.first(), dead.first()) {
            let cause = oks
                .iter()
                .filter(|ok| ok.at <= dead_at)
                .find_map(|ok| crash_after(ok, dead_at, faults))
                .or_else(|| self.second_copy(dead_at.max(first.at), faults));
            let first_at = if first.at <= dead_at { first.at } else { dead_at };
            let again_at = if first.at <= dead_at { dead_at } else { first.at };
            out.push(self.repeat(Repeat::DeadLetteredAfterDelivery, first_at, again_at, cause));
        }
        for pair in dead.windows(2) {
            let cause = (pair[1] - pair[0] > DUPLICATE_WINDOW)
                .then(|| self.second_copy(pair[1], faults))
                .flatten();
            out.push(self.repeat(Repeat::DeadLetteredTwice, pair[0], pair[1], cause));
        }
        out
    }

    fn repeat(
        &self,
        repeat: Repeat,
        first_at: Duration,
        again_at: Duration,
        cause: Option<String>,
    ) -> Duplicate {
        Duplicate {
            repeat,
            name: self.name.to_string(),
            event_id: self.event.to_string(),
            first_at,
            again_at,
            cause,
        }
    }

    /// A NATS outage that can have made a second copy of this delivery before `again_at`:
    /// after the event was published, within [`EXPLAIN_WINDOW`] of one of the pair's requests
    /// (or before its first: the fan-out).
    fn second_copy(&self, again_at: Duration, faults: &[Fault]) -> Option<String> {
        let first_request = self.requests.first().map_or(again_at, |h| h.at);
        faults
            .iter()
            .filter(|f| f.kind == Kind::Nats && f.at >= self.published && f.at <= again_at)
            .find(|f| {
                f.at <= first_request + EXPLAIN_WINDOW
                    || self.requests.iter().any(|h| near(f.at, h.at) && h.at <= again_at)
            })
            .map(|f| {
                format!(
                    "a second copy across {} at t={:.2}s (event published at t={:.2}s)",
                    f.what,
                    f.at.as_secs_f64(),
                    self.published.as_secs_f64()
                )
            })
    }
}

/// Whether a fault at `fault_at` is close enough after something at `at` to have cut it short.
fn near(fault_at: Duration, at: Duration) -> bool {
    fault_at + Duration::from_millis(200) >= at && fault_at <= at + EXPLAIN_WINDOW
}

/// A crash that can have lost the inbox write of the 2xx `ok` before `again_at`: the instance
/// that got it SIGKILLed, or Redis killed, within [`EXPLAIN_WINDOW`] after it.
fn crash_after(ok: &Hit, again_at: Duration, faults: &[Fault]) -> Option<String> {
    faults
        .iter()
        .filter(|f| near(f.at, ok.at) && f.at <= again_at)
        .find(|f| f.kind == Kind::Redis || f.agent.as_deref() == Some(ok.agent.as_str()))
        .map(|f| {
            let delta = f.at.as_secs_f64() - ok.at.as_secs_f64();
            format!("across {} ({delta:+.2}s after the 2xx from {})", f.what, ok.agent)
        })
}

#[cfg(test)]
mod tests;
