//! The chaos driver: servers, subscriptions, a fleet of hookline processes, and a plan of faults
//! injected while events flow; then the drain and the ledger.
//!
//! Pacing is by progress, never by the clock: before each fault the driver publishes a batch and
//! waits (via `eventually`) until the endpoint has seen a random number of new requests, so every
//! fault lands while deliveries are in flight, at a moment that depends on the seed and the
//! machine. Outages last until hookline has noticed them (log lines counted), then the server
//! comes back with its data (Redis AOF, the NATS store dir). In a cluster, a killed node comes
//! back once the others have taken over its work (a new stream leader, a promoted replica), and
//! the step ends when it has rejoined.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use hookline::subjects::Names;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::cluster::Cluster;
use crate::flaky::{FlakyReceiver, Mix};
use crate::fleet::{Fleet, Kind};
use crate::harness::nats::NatsServer;
use crate::harness::redis::RedisServer;
use crate::harness::redis_cluster::RedisCluster;
use crate::harness::{eventually, eventually_true, unique_prefix};
use crate::ledger::{self, Report};

mod drain;
mod setup;

use drain::{Orphan, drain};
use setup::{
    create_subscriptions, new_leader, publish_batch, stream_leader, wait_all_running,
    wait_caught_up, wait_for_consumers,
};
/// Longest any single wait of the driver may take.
const STEP_WAIT: Duration = Duration::from_secs(60);
/// Longest the final drain may take.
const DRAIN_WAIT: Duration = Duration::from_secs(120);
/// Event type of every chaos event.
const EVENT_TYPE: &str = "chaos.tick";

/// One fault of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// SIGKILL one hookline process (chosen at random) and start it again at once.
    KillHookline,
    /// SIGKILL redis-server; restart it (same data) once hookline has hit the outage.
    RestartRedis,
    /// SIGKILL nats-server; restart it (same store) once every hookline has seen the disconnect.
    RestartNats,
    /// SIGKILL the cluster node leading the deliveries stream; it stays down.
    KillNatsNode,
    /// SIGKILL the cluster node leading the deliveries stream; restart it (same store) once
    /// another node leads, and wait until it has caught up.
    RestartNatsNode,
    /// SIGKILL the Redis Cluster master serving the subscription index; its replica takes over;
    /// the killed node restarts (empty) and rejoins as a replica.
    KillRedisMaster,
}

/// One server or a cluster (NATS: 3 nodes, R3 streams; Redis: 3 masters + 3 replicas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    Single,
    Cluster,
}

/// What a run does.
pub struct Plan {
    pub name: &'static str,
    pub processes: usize,
    pub flaky_subs: usize,
    pub dead_subs: usize,
    /// Subscriptions whose endpoint always answers 200: none of their pairs may be dead-lettered.
    pub healthy_subs: usize,
    /// Events published before each step (and once more at the end).
    pub batch: usize,
    pub steps: Vec<Step>,
    pub nats: Topology,
    pub redis: Topology,
    pub seed: u64,
}

/// The broker(s) of a run.
enum Nats {
    Single(NatsServer),
    Cluster(Cluster),
}

impl Nats {
    fn url(&self) -> String {
        match self {
            Nats::Single(s) => s.url(),
            Nats::Cluster(c) => c.url(),
        }
    }

    async fn client(&self) -> async_nats::Client {
        match self {
            Nats::Single(s) => async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect(s.url())
                .await
                .expect("nats client"),
            Nats::Cluster(c) => c.client().await,
        }
    }
}

/// The Redis of a run.
enum Redis {
    /// With AOF, so a restart keeps the data.
    Single(RedisServer),
    /// Without persistence: a killed master's replica has the data.
    Cluster(RedisCluster),
}

impl Redis {
    /// The `[redis]` keys naming it.
    fn config(&self) -> String {
        match self {
            Redis::Single(s) => format!("url = \"{}\"", s.url()),
            Redis::Cluster(c) => format!("mode = \"cluster\"\nurl = \"{}\"", c.url()),
        }
    }
}

/// When each event was stored, since the run started.
pub type Published = Vec<(String, Duration)>;

/// The outcome: the report and the faults, already printed.
pub struct Outcome {
    pub report: Report,
    /// Messages left in the deliveries stream after the drain, that no consumer delivers.
    pub orphans: Vec<Orphan>,
}

fn config_toml(nats: &str, redis: &str, prefix: &str, replicas: usize) -> String {
    format!(
        "[nats]\nurl = \"{nats}\"\nrequest_timeout = \"10s\"\n\
         [redis]\n{redis}\nresponse_timeout = \"2s\"\nconnection_timeout = \"2s\"\n\
         [streams]\nprefix = \"{prefix}\"\nreplicas = {replicas}\n\
         [delivery]\nrequest_timeout = \"1s\"\nack_wait = \"3s\"\nconcurrency = 64\nfanout_concurrency = 16\n\
         [retry]\nschedule = [\"0s\", \"200ms\", \"500ms\", \"1s\", \"1s\", \"2s\"]\njitter = 0.2\nmax_retry_after = \"2s\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n[shutdown]\ngrace_period = \"2s\"\n\
         [egress]\nallow_cidrs = [\"127.0.0.0/8\"]\n\
         [health]\nbreaker_failure_threshold = 0\ndisable_after_failures = 0\n"
    )
}

/// Writes one line to the real stderr, past the test harness's output capture.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs `plan` and returns the verdict (the caller asserts on it).
pub async fn run(plan: Plan) -> Outcome {
    crate::harness::init();
    let started = Instant::now();
    let started_at = time::OffsetDateTime::now_utc();
    let mut rng = StdRng::seed_from_u64(plan.seed);
    say(&format!(
        "chaos[{}]: seed={} processes={} steps={}",
        plan.name,
        plan.seed,
        plan.processes,
        plan.steps.len()
    ));
    let mut redis = match plan.redis {
        Topology::Single => Redis::Single(RedisServer::start_persistent().await),
        Topology::Cluster => Redis::Cluster(RedisCluster::start().await),
    };
    let mut nats = match plan.nats {
        Topology::Single => Nats::Single(NatsServer::start().await),
        Topology::Cluster => Nats::Cluster(Cluster::start().await),
    };
    say(&format!(
        "chaos[{}]: servers ready at t={:.1}s",
        plan.name,
        started.elapsed().as_secs_f64()
    ));
    let receiver = FlakyReceiver::start(rng.random(), Mix { ok: 0.6, error: 0.25 }, started).await;
    let prefix = unique_prefix();
    let names = Names::new(&prefix);
    let dir = tempfile::Builder::new().prefix("hookline-chaos-").tempdir().expect("run dir");
    let _keeper = LogKeeper { dirs: vec![dir.path().to_path_buf()], name: plan.name };
    let _cluster_keeper = match &nats {
        Nats::Cluster(c) => {
            Some(LogKeeper { dirs: vec![c.log_dir().to_path_buf()], name: plan.name })
        }
        Nats::Single(_) => None,
    };
    let config_path = dir.path().join("hookline.toml");
    let replicas = if plan.nats == Topology::Cluster { 3 } else { 1 };
    let toml = config_toml(&nats.url(), &redis.config(), &prefix, replicas);
    std::fs::write(&config_path, &toml).expect("config written");
    let subs = create_subscriptions(&toml, &receiver, &plan).await;

    // One process creates the streams, then the others join (a rolling start: processes that
    // create the same replicated stream at once wait out a request timeout, see topology.rs).
    let mut fleet = Fleet::start(&config_path, dir.path(), started);
    let js = async_nats::jetstream::new(nats.client().await);
    wait_for_consumers(&js, &names, &mut fleet).await;
    for _ in 1..plan.processes {
        fleet.add();
    }
    wait_all_running(&mut fleet).await;
    say(&format!(
        "chaos[{}]: {} hookline processes running at t={:.1}s",
        plan.name,
        fleet.len(),
        started.elapsed().as_secs_f64()
    ));

    let mut events = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        publish_batch(&js, &names, &mut events, plan.batch, started).await;
        let seen = receiver.count();
        // At most what the batch must cause (one request per matched pair; retries add more),
        // so the gate never waits for requests the batch cannot produce.
        let matched = plan.flaky_subs + plan.dead_subs + plan.healthy_subs;
        let progress = rng.random_range(20..=120).min(plan.batch * matched);
        eventually_true(
            STEP_WAIT,
            &format!("{progress} new requests before step {i} ({step:?})"),
            || async { receiver.count() >= seen + progress },
        )
        .await;
        if let Err(crash) = fleet.supervise() {
            panic!("{crash}");
        }
        // A fault while an instance is still starting would only test start-up (a kill of an
        // instance restarted a moment ago, or a server outage under it).
        wait_all_running(&mut fleet).await;
        match step {
            Step::KillHookline => {
                // A random instance among those at work (it has sent requests), so the kill
                // lands on deliveries in flight rather than on an idle newcomer.
                let working = eventually(STEP_WAIT, "an instance at work", || {
                    let agents: std::collections::HashSet<String> =
                        receiver.hits().into_iter().map(|h| h.agent).collect();
                    let working: Vec<usize> =
                        (0..fleet.len()).filter(|i| agents.contains(&fleet.agent_of(*i))).collect();
                    async move { (!working.is_empty()).then_some(working) }
                })
                .await;
                let index = working[rng.random_range(0..working.len())];
                fleet.kill_and_restart(index).await;
            }
            Step::RestartRedis => {
                let Redis::Single(redis) = &mut redis else {
                    panic!("RestartRedis needs a single server")
                };
                let before = fleet.log_count("transient failure");
                redis.kill().await;
                fleet.note(Kind::Redis, "redis-server killed (SIGKILL, AOF kept)");
                publish_batch(&js, &names, &mut events, plan.batch, started).await;
                // Down until failed messages have come back (NAK'd, redelivered) and failed again.
                let enough = before + 3 * plan.batch;
                eventually_true(
                    STEP_WAIT,
                    "hookline retrying through the Redis outage",
                    || async { fleet.log_count("transient failure") >= enough },
                )
                .await;
                redis.restart().await;
                fleet.note(Kind::Redis, "redis-server restarted");
            }
            Step::RestartNats => {
                let Nats::Single(server) = &mut nats else {
                    panic!("RestartNats needs a single server")
                };
                let before = fleet.log_count("disconnected from NATS");
                let unacked = |fleet: &Fleet| {
                    fleet.log_count("ack failed") + fleet.log_count("transient failure")
                };
                let unacked_before = unacked(&fleet);
                server.kill().await;
                fleet.note(Kind::Nats, "nats-server killed (SIGKILL, store kept)");
                let n = fleet.len();
                // Down until every process noticed, and in-flight POSTs finished without being
                // able to ack or schedule their outcome.
                eventually_true(STEP_WAIT, "every hookline seeing the NATS outage", || async {
                    fleet.log_count("disconnected from NATS") >= before + n
                })
                .await;
                eventually_true(
                    STEP_WAIT,
                    "an outcome that could not be acked during the outage",
                    || async { unacked(&fleet) > unacked_before },
                )
                .await;
                server.restart().await;
                fleet.note(Kind::Nats, "nats-server restarted");
            }
            Step::KillNatsNode => {
                let Nats::Cluster(cluster) = &mut nats else {
                    panic!("KillNatsNode needs a cluster")
                };
                let leader = stream_leader(&js, &names.deliveries_stream()).await;
                cluster.kill(&leader).await;
                fleet.note(
                    Kind::Nats,
                    format!(
                        "nats node {leader} (leader of {}) killed, stays down",
                        names.deliveries_stream()
                    ),
                );
            }
            Step::RestartNatsNode => {
                let Nats::Cluster(cluster) = &mut nats else {
                    panic!("RestartNatsNode needs a cluster")
                };
                let stream = names.deliveries_stream();
                let leader = stream_leader(&js, &stream).await;
                cluster.kill(&leader).await;
                fleet.note(Kind::Nats, format!("nats node {leader} (leader of {stream}) killed"));
                publish_batch(&js, &names, &mut events, plan.batch, started).await;
                let next = new_leader(&js, &stream, &leader).await;
                cluster.restart(&leader).await;
                fleet.note(
                    Kind::Nats,
                    format!("nats node {leader} restarted (same store; {next} leads {stream})"),
                );
                wait_caught_up(&js, &names, &leader).await;
            }
            Step::KillRedisMaster => {
                let Redis::Cluster(cluster) = &mut redis else {
                    panic!("KillRedisMaster needs a Redis Cluster")
                };
                let index_key = hookline::store::subscriptions::marker_key(&names);
                let master = cluster.master_of(&index_key).await;
                let at = started.elapsed();
                // Events keep coming while the replica is promoted.
                tokio::join!(
                    cluster.kill_master(master),
                    publish_batch(&js, &names, &mut events, plan.batch, started)
                );
                fleet.note_at(
                    Kind::Redis,
                    format!(
                        "redis cluster master :{master} (serving the subscription index) killed"
                    ),
                    at,
                );
                let promoted = cluster.master_of(&index_key).await;
                fleet.note(Kind::Redis, format!("redis replica :{promoted} took over"));
                cluster.restart_node(master).await;
                fleet.note(Kind::Redis, format!("redis node :{master} restarted as a replica"));
            }
        }
    }
    publish_batch(&js, &names, &mut events, plan.batch, started).await;
    say(&format!(
        "chaos[{}]: {} events published, {} faults injected at t={:.1}s; draining",
        plan.name,
        events.len(),
        fleet.faults.len(),
        started.elapsed().as_secs_f64()
    ));
    let drained = drain(&js, &names, &mut fleet).await;
    if let Err(crash) = fleet.supervise() {
        panic!("{crash}");
    }
    let dlq = hookline::pipeline::dlq::list(&js, &names, None, 1_000_000).await.expect("dlq lists");
    let report = ledger::account(&events, &subs, &receiver.hits(), &dlq, &fleet.faults, started_at);
    say(&format!(
        "chaos[{}]: {} kills={} elapsed={:.1}s",
        plan.name,
        report.summary(),
        report.kills,
        started.elapsed().as_secs_f64()
    ));
    say(&format!(
        "chaos[{}]: redeliveries caught by the inbox dedupe (no POST)={} copies held while \
         another was being sent={} acks lost={}",
        plan.name,
        fleet.log_count("already delivered; acking the duplicate without a request"),
        fleet.log_count("another copy of this delivery is being sent"),
        fleet.log_count("ack failed")
    ));
    say(&report.details(&fleet.faults));
    let orphaned = drained.as_ref().is_ok_and(|left| !left.is_empty());
    if !report.lost.is_empty() || drained.is_err() || orphaned || !report.unexplained().is_empty() {
        say(&format!("chaos[{}]: hookline logs mention: {:?}", plan.name, fleet.grep("ERROR", 20)));
        keep_logs(dir.path(), plan.name);
        if let Nats::Cluster(cluster) = &nats {
            keep_logs(cluster.log_dir(), plan.name);
        }
    }
    let mut leftovers = match drained {
        Ok(leftovers) => leftovers,
        Err(left) => panic!(
            "chaos[{}]: not drained after {DRAIN_WAIT:?}: {left}; {}",
            plan.name,
            report.summary()
        ),
    };
    if !leftovers.is_empty() {
        say(&format!(
            "chaos[{}]: orphaned messages left in the deliveries stream (no consumer delivers them):",
            plan.name
        ));
        for l in &mut leftovers {
            let name = l.pair.as_ref().and_then(|(sub, _)| subs.iter().find(|s| &s.id == sub));
            l.resolved = match (name, &l.pair) {
                (Some(sub), Some((_, event))) => {
                    events.iter().any(|(e, _)| e == event)
                        && !report.lost.contains(&(sub.name.clone(), event.clone()))
                }
                _ => false,
            };
            say(&format!("  {} (pair resolved: {})", l.describe, l.resolved));
        }
    }
    drop(fleet);
    Outcome { report, orphans: leftovers }
}
/// Keeps the logs of a run that panics (dropped while unwinding).
struct LogKeeper {
    dirs: Vec<std::path::PathBuf>,
    name: &'static str,
}

impl Drop for LogKeeper {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for dir in &self.dirs {
                keep_logs(dir, self.name);
            }
        }
    }
}

/// Copies the run's logs next to the target dir when something went wrong.
fn keep_logs(dir: &Path, name: &str) {
    let dest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(format!("chaos-logs-{name}"));
    let _ = std::fs::create_dir_all(&dest);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::copy(entry.path(), dest.join(entry.file_name()));
        }
    }
    say(&format!("chaos[{name}]: logs kept in {}", dest.display()));
}
