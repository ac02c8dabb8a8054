//! The chaos suite: hookline as several child processes against real servers, a flapping
//! endpoint, and faults while events flow — then every (event, subscription) pair must be
//! delivered at least once or dead-lettered with a reason, never lost; duplicates are reported
//! with the crash that explains each, and an unexplained one fails the run.
//!
//! - `hookline_survives_kills_and_server_restarts`: 3 processes; >= 12 SIGKILLs of a random
//!   process (restarted at once), one redis-server restart (AOF kept) and one nats-server
//!   restart (same store dir), each mid-run.
//! - `hookline_survives_losing_a_node_of_a_3_node_cluster`: R3 streams (`streams.replicas = 3`)
//!   on a 3-node cluster; the leader of the deliveries stream is SIGKILLed mid-run and stays
//!   down, plus SIGKILLs of the 2 hookline processes.
//!
//! Each prints `events=N pairs=N delivered=N dead_lettered=N lost=0 duplicates=N` and the fault
//! timeline (to the real stderr, visible without `--nocapture`). Size: `HOOKLINE_CHAOS_SCALE`
//! (default 1, the CI size, about a minute; 10 for a soak run) multiplies events and faults;
//! `HOOKLINE_CHAOS_SEED` replays a run's random choices. Servers come from the test kit
//! (`testkit/`, named `harness` here), so `HOOKLINE_TEST_NATS_SERVER` picks the NATS version as
//! for `it`.

use hookline_testkit as harness;

use hookline_testkit::cluster;
mod flaky;
mod fleet;
mod ledger;
mod run;

use rand::RngExt;
use run::{Plan, Step};

fn scale() -> usize {
    std::env::var("HOOKLINE_CHAOS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

fn seed() -> u64 {
    std::env::var("HOOKLINE_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

/// `kills` hookline kills with each of `specials` placed evenly among them.
fn steps(kills: usize, specials: &[Step]) -> Vec<Step> {
    let mut steps = vec![Step::KillHookline; kills];
    for (i, special) in specials.iter().enumerate() {
        let at = (i + 1) * steps.len() / (specials.len() + 1);
        steps.insert(at, *special);
    }
    steps
}

fn check(outcome: &run::Outcome, min_kills: usize) {
    let report = &outcome.report;
    assert!(outcome.kills >= min_kills, "only {} hookline kills happened", outcome.kills);
    assert!(report.lost.is_empty(), "{} pairs lost: {}", report.lost.len(), report.summary());
    assert_eq!(report.dlq_without_reason, 0, "every DLQ entry has a reason");
    let unexplained = report.unexplained();
    assert!(
        unexplained.is_empty(),
        "duplicates in normal operation (no crash near them): {unexplained:?}"
    );
    assert!(
        report.delivered > 0 && report.dead_lettered > 0,
        "both outcomes exercised: {}",
        report.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookline_survives_kills_and_server_restarts() {
    let n = scale();
    let mut specials = Vec::new();
    for _ in 0..n {
        specials.extend([Step::RestartNats, Step::RestartRedis]);
    }
    let plan = Plan {
        name: "single",
        processes: 3,
        flaky_subs: 4,
        dead_subs: 1,
        batch: 20,
        steps: steps(12 * n, &specials),
        cluster: false,
        seed: seed(),
    };
    let outcome = run::run(plan).await;
    check(&outcome, 10 * n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookline_survives_losing_a_node_of_a_3_node_cluster() {
    let n = scale();
    let plan = Plan {
        name: "cluster",
        processes: 2,
        flaky_subs: 3,
        dead_subs: 1,
        batch: 15,
        steps: steps(4 * n, &[Step::KillNatsNode]),
        cluster: true,
        seed: seed(),
    };
    let outcome = run::run(plan).await;
    check(&outcome, 4 * n);
}
