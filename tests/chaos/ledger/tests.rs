//! Unit tests of the ledger: accounting pairs, and which faults explain which repeats.

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn hit(answer: Answer, agent: &str, at: f64) -> Hit {
    Hit {
        name: "f0".into(),
        event_id: "ev000001".into(),
        agent: agent.into(),
        answer,
        at: secs(at),
    }
}

fn fault(kind: Kind, agent: Option<&str>, at: f64) -> Fault {
    Fault { kind, what: format!("{kind:?} at {at}"), agent: agent.map(String::from), at: secs(at) }
}

fn dlq_at(start: time::OffsetDateTime, at: f64) -> DlqEntry {
    DlqEntry {
        sequence: 1,
        subscription_id: "sub_f0".into(),
        event_id: "ev000001".into(),
        event_type: "chaos.tick".into(),
        reason: "retries_exhausted".into(),
        detail: "http status 500".into(),
        attempts: 6,
        last_status: Some(500),
        dead_lettered_at: start + secs(at),
    }
}

/// The ledger of one event and one subscription; `dead_lettered` in seconds since the start.
fn report(hits: &[Hit], dead_lettered: &[f64], faults: &[Fault]) -> Report {
    let start = time::OffsetDateTime::UNIX_EPOCH + secs(1_000_000.0);
    let dlq: Vec<DlqEntry> = dead_lettered.iter().map(|at| dlq_at(start, *at)).collect();
    let subs = [Sub { name: "f0".into(), id: "sub_f0".into(), endpoint: Endpoint::Flaky }];
    account(&[("ev000001".into(), secs(1.0))], &subs, hits, &dlq, faults, start)
}

fn causes(r: &Report) -> Vec<(Repeat, bool)> {
    r.duplicates.iter().map(|d| (d.repeat, d.cause.is_some())).collect()
}

#[test]
fn a_second_2xx_is_explained_only_by_a_crash_after_the_first_and_before_the_second() {
    let oks = [hit(Answer::Ok, "chaos-p0g0", 14.16), hit(Answer::Ok, "chaos-p1g0", 14.19)];
    // The 2.12.8 report: a Redis kill after both 2xx explains nothing.
    let late = report(&oks, &[], &[fault(Kind::Redis, None, 15.37)]);
    assert_eq!(causes(&late), [(Repeat::Delivered, false)]);
    // Neither does a NATS restart near them, nor a kill of another instance.
    let nats = report(&oks, &[], &[fault(Kind::Nats, None, 14.17)]);
    assert_eq!(causes(&nats), [(Repeat::Delivered, false)]);
    let other = report(&oks, &[], &[fault(Kind::Kill, Some("chaos-p2g0"), 14.17)]);
    assert_eq!(causes(&other), [(Repeat::Delivered, false)]);
    // The instance that got the first 2xx killed right after it: explained.
    let kill = report(&oks, &[], &[fault(Kind::Kill, Some("chaos-p0g0"), 14.17)]);
    assert_eq!(causes(&kill), [(Repeat::Delivered, true)]);
    // ... but not when the kill came long after the 2xx.
    let far = [hit(Answer::Ok, "chaos-p0g0", 4.0), hit(Answer::Ok, "chaos-p1g0", 20.0)];
    let long_after = report(&far, &[], &[fault(Kind::Kill, Some("chaos-p0g0"), 10.0)]);
    assert_eq!(causes(&long_after), [(Repeat::Delivered, false)]);
}

#[test]
fn a_second_dlq_entry_is_explained_only_by_a_nats_outage_near_the_pairs_requests_and_late() {
    let fails = [hit(Answer::Error, "chaos-p0g0", 2.0), hit(Answer::Error, "chaos-p0g0", 9.0)];
    let dlq = [10.0, 12.0];
    let none = report(&fails, &dlq, &[]);
    assert_eq!(causes(&none), [(Repeat::DeadLetteredTwice, false)]);
    assert_eq!(none.dlq_repeats.len(), 1);
    let crash = report(&fails, &dlq, &[fault(Kind::Kill, Some("chaos-p0g0"), 2.1)]);
    assert_eq!(causes(&crash), [(Repeat::DeadLetteredTwice, false)]);
    let outage_far = report(&fails, &dlq, &[fault(Kind::Nats, None, 5.5)]);
    assert_eq!(causes(&outage_far), [(Repeat::DeadLetteredTwice, false)]);
    // Within the duplicate window the DLQ stream drops the second entry: nothing explains it.
    let outage_near = report(&fails, &dlq, &[fault(Kind::Nats, None, 2.5)]);
    assert_eq!(causes(&outage_near), [(Repeat::DeadLetteredTwice, false)]);
    let late = [10.0, 10.0 + DUPLICATE_WINDOW.as_secs_f64() + 1.0];
    let outage_then_late = report(&fails, &late, &[fault(Kind::Nats, None, 2.5)]);
    assert_eq!(causes(&outage_then_late), [(Repeat::DeadLetteredTwice, true)]);
    let late_far = report(&fails, &late, &[fault(Kind::Nats, None, 5.5)]);
    assert_eq!(causes(&late_far), [(Repeat::DeadLetteredTwice, false)]);
}

#[test]
fn a_dlq_entry_besides_a_2xx_needs_a_crash_after_the_2xx_or_a_second_copy() {
    let hits = [hit(Answer::Ok, "chaos-p0g0", 2.0), hit(Answer::Error, "chaos-p1g0", 6.0)];
    let dlq = [8.0];
    let none = report(&hits, &dlq, &[]);
    assert_eq!((none.delivered, none.delivered_and_dead_lettered), (1, 1));
    assert_eq!(causes(&none), [(Repeat::DeadLetteredAfterDelivery, false)]);
    let crash = report(&hits, &dlq, &[fault(Kind::Kill, Some("chaos-p0g0"), 2.05)]);
    assert_eq!(causes(&crash), [(Repeat::DeadLetteredAfterDelivery, true)]);
}

#[test]
fn kills_count_as_working_only_when_the_instance_had_sent_requests() {
    let hits = [hit(Answer::Ok, "chaos-p0g0", 2.0)];
    let faults = [
        fault(Kind::Kill, Some("chaos-p0g0"), 3.0),
        fault(Kind::Kill, Some("chaos-p1g0"), 3.5),
        fault(Kind::Kill, Some("chaos-p0g1"), 4.0),
    ];
    let r = report(&hits, &[], &faults);
    assert_eq!((r.kills, r.kills_of_working_instances), (3, 1));
    assert!(r.lost.is_empty() && r.delivered == 1);
}

#[test]
fn the_longest_pause_after_a_fault_counts_from_the_fault_until_the_next() {
    let oks = [secs(1.0), secs(10.5), secs(11.0), secs(14.0), secs(15.0)];
    assert_eq!(longest_pause(&oks, secs(10.0), secs(15.0)), secs(3.0));
    assert_eq!(longest_pause(&oks, secs(5.0), secs(10.6)), secs(5.5), "from the fault");
    assert_eq!(longest_pause(&oks, secs(11.5), secs(13.0)), secs(1.5), "no 2xx before the next");
    assert_eq!(longest_pause(&oks, secs(16.0), secs(46.0)), secs(0.0), "no work left");
}
