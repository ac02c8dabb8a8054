//! `hookline-bench`: measures hookline against the physical limit of HTTP on this machine
//! (issue 7; results and method in BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p hookline-bench -- [--quick] [--json] [--scenario NAME]...
//! ```
//!
//! Self-contained: starts nats-server (the pinned `.deps/` one) and redis-server on free ports
//! with temp dirs through the test kit (`hookline_testkit`, as the tests do), or uses
//! `--nats-url` / `--redis-url`; with `--redis-mode cluster`, a 6-node Redis Cluster instead of
//! the one redis-server (hookline then runs with `redis.mode = "cluster"`); runs the receiver as
//! a separate process (`hookline-bench receiver --port P`, see `receiver.rs`) and, per
//! scenario, a fresh `target/release/hookline serve` process with its own prefix, so hookline's
//! memory and CPU are measured on their own. Scenarios (issue 7's numbering): baseline,
//! throughput, fanout, latency, isolation, backlog, many-subs. Each prints a table row (and with
//! `--json` one JSON object on stdout, the table going to stderr), checks that no delivery was
//! lost and evaluates the issue's targets.

mod env;
mod faults;
mod load;
mod otlp_sink;
mod pairs;
mod procs;
mod receiver;
mod report;
mod steady;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::env::{Env, Options};
use crate::report::{Report, Verdict};

#[derive(Debug, Parser)]
#[command(name = "hookline-bench", about = "Benchmarks hookline (issue 7); see BENCHMARKS.md")]
#[command(args_conflicts_with_subcommands = true, after_help = report::EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Small sizes: the whole run takes about a minute.
    #[arg(long)]
    quick: bool,
    /// One JSON object per scenario on stdout (the human table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Scenarios to run (default: all, in order); repeatable.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Use this NATS server (>= 2.12, JetStream on) instead of starting one.
    #[arg(long)]
    nats_url: Option<String>,
    /// Use this Redis instead of starting one (keys are left behind under the bench prefixes);
    /// with `--redis-mode cluster`, the cluster's seed nodes, comma-separated.
    #[arg(long)]
    redis_url: Option<String>,
    /// hookline's `redis.mode`: one redis-server, or a Redis Cluster of 6 nodes (3 masters + 3
    /// replicas on loopback, started by the test kit unless `--redis-url` names one).
    #[arg(long, value_enum, default_value_t = RedisTopology::Standalone)]
    redis_mode: RedisTopology,
    /// nats-server binary to start [default: $HOOKLINE_TEST_NATS_SERVER, else the pinned
    /// .deps/nats-server-2.15.1, as for the tests].
    #[arg(long)]
    nats_server: Option<PathBuf>,
    /// One nats-server, or a 3-node cluster on loopback with every stream at 3 replicas
    /// (`streams.replicas = 3`): what R3 costs nats-server per delivery, summed over the nodes.
    #[arg(long, value_enum, default_value_t = NatsTopology::Single)]
    nats_mode: NatsTopology,
    /// hookline binary (default: the `hookline` next to this one, rebuilt first when run by cargo).
    #[arg(long)]
    hookline: Option<PathBuf>,
    /// hookline configuration for every scenario, `section.key=value` (as HOOKLINE_SECTION__KEY).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Other environment variables for hookline, `NAME=VALUE` (e.g. LD_PRELOAD=...); repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Run the scenarios this many times and finish with a table of medians.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// RUST_LOG of the hookline processes (hookline's default is info).
    #[arg(long, default_value = "info")]
    rust_log: String,
    /// Events/s taken as the maximum for the latency scenario when throughput does not run.
    #[arg(long, default_value_t = 2000.0)]
    max_rate: f64,
    /// Keep the temp dir (server and hookline logs) and print its path.
    #[arg(long)]
    keep: bool,
    /// Turn OpenTelemetry span export on, to an OTLP/HTTP sink in this process (it counts the
    /// export requests and bytes, reported at the end).
    #[arg(long)]
    otlp_sink: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The benchmark's receiver (started by the benchmark itself).
    Receiver {
        #[arg(long)]
        port: u16,
    },
}

/// The NATS topologies the benchmark runs hookline on (`--nats-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NatsTopology {
    Single,
    Cluster,
}

/// The Redis topologies the benchmark runs hookline on (`--redis-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RedisTopology {
    Standalone,
    Cluster,
}

impl RedisTopology {
    fn mode(self) -> hookline::config::RedisMode {
        match self {
            RedisTopology::Standalone => hookline::config::RedisMode::Standalone,
            RedisTopology::Cluster => hookline::config::RedisMode::Cluster,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Baseline,
    Throughput,
    Fanout,
    Latency,
    Isolation,
    Backlog,
    ManySubs,
}

/// The sizes of one run (`--quick` or full, as issue 7 states them).
#[derive(Debug, Clone)]
pub struct Sizes {
    pub baseline: Duration,
    pub throughput_events: u64,
    pub fanout_subs: usize,
    pub fanout_events: u64,
    pub latency: Duration,
    pub isolation_cap: Duration,
    pub backlog_steady: u64,
    pub backlog_events: u64,
    pub backlog_hold: Duration,
    pub many_subs: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        let s = Duration::from_secs;
        if quick {
            Sizes {
                baseline: s(3),
                throughput_events: 10_000,
                fanout_subs: 10,
                fanout_events: 2_000,
                latency: s(5),
                isolation_cap: s(15),
                backlog_steady: 2_000,
                backlog_events: 20_000,
                backlog_hold: s(2),
                many_subs: 10_000,
            }
        } else {
            Sizes {
                baseline: s(10),
                throughput_events: 100_000,
                fanout_subs: 10,
                fanout_events: 20_000,
                latency: s(30),
                isolation_cap: s(120),
                backlog_steady: 20_000,
                backlog_events: 200_000,
                backlog_hold: s(5),
                many_subs: 10_000,
            }
        }
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    hookline::tls::install_provider();
    // Before the kit starts any server: its log lines go to stderr, stdout is the result.
    hookline_testkit::init_with(hookline_testkit::Logs::Stderr);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Some(Command::Receiver { port }) => {
            runtime.block_on(receiver::run(port)).map(|()| ExitCode::SUCCESS)
        }
        None => runtime.block_on(run(cli)),
    }
}

/// `section.key=value` -> (`HOOKLINE_SECTION__KEY`, value).
fn env_override(set: &str) -> anyhow::Result<(String, String)> {
    let (key, value) =
        set.split_once('=').with_context(|| format!("--set {set}: expected section.key=value"))?;
    let (section, field) =
        key.split_once('.').with_context(|| format!("--set {set}: expected section.key"))?;
    Ok((
        format!("HOOKLINE_{}__{}", section.to_uppercase(), field.to_uppercase()),
        value.to_string(),
    ))
}

/// The hookline binary: given, or the sibling of this one, rebuilt when cargo runs us.
fn hookline_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        // A bare name would be looked up in PATH, not in the working directory.
        return std::path::absolute(&path)
            .with_context(|| format!("--hookline {}", path.display()));
    }
    let exe = std::env::current_exe()?;
    let sibling = exe.with_file_name("hookline");
    if let Ok(cargo) = std::env::var("CARGO") {
        let release = exe.parent().is_some_and(|d| d.ends_with("release"));
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "hookline", "--bin", "hookline", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"));
        if release {
            cmd.arg("--release");
        }
        eprintln!(
            "building hookline ({})",
            if release { "release" } else { "debug: numbers are meaningless" }
        );
        if !cmd.status()?.success() {
            bail!("cargo build --bin hookline failed");
        }
    }
    Ok(sibling)
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Baseline => "baseline",
        Scenario::Throughput => "throughput",
        Scenario::Fanout => "fanout",
        Scenario::Latency => "latency",
        Scenario::Isolation => "isolation",
        Scenario::Backlog => "backlog",
        Scenario::ManySubs => "many-subs",
    }
}

/// Runs one scenario, feeding it the results it is compared with (`done`: this run's earlier
/// scenarios).
async fn run_one(
    env: &mut Env,
    sizes: &Sizes,
    scenario: Scenario,
    done: &[Report],
) -> anyhow::Result<Report> {
    let metric =
        |name: &str, key: &str| done.iter().find(|r| r.scenario == name).and_then(|r| r.get(key));
    let baseline_rps = metric("baseline", "requests_per_s");
    let fanout_rate = metric("fanout", "deliveries_per_s");
    let fanout_eps = metric("fanout", "events_per_s");
    let max_rate = metric("throughput", "deliveries_per_s").unwrap_or(env.opts.max_rate);
    match scenario {
        Scenario::Baseline => steady::baseline(env, sizes).await,
        Scenario::Throughput => steady::throughput(env, sizes, baseline_rps).await,
        Scenario::Fanout => steady::fanout(env, sizes, baseline_rps).await,
        Scenario::Latency => faults::latency(env, sizes, max_rate).await,
        Scenario::Isolation => faults::isolation(env, sizes, fanout_rate).await,
        Scenario::Backlog => faults::backlog(env, sizes).await,
        Scenario::ManySubs => steady::many(env, sizes, fanout_eps).await,
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut hookline_env: Vec<(String, String)> =
        cli.set.iter().map(|s| env_override(s)).collect::<anyhow::Result<_>>()?;
    for raw in &cli.env {
        let (k, v) =
            raw.split_once('=').with_context(|| format!("--env {raw}: expected NAME=VALUE"))?;
        hookline_env.push((k.to_string(), v.to_string()));
    }
    let sink = match cli.otlp_sink {
        true => Some(otlp_sink::start().await?),
        false => None,
    };
    if let Some((url, _)) = &sink {
        hookline_env.push(("HOOKLINE_TELEMETRY__OTLP_ENDPOINT".into(), url.clone()));
    }
    let concurrency = match hookline_env.iter().find(|(k, _)| k == "HOOKLINE_DELIVERY__CONCURRENCY")
    {
        Some((_, v)) => v.parse().context("--set delivery.concurrency: not a number")?,
        None => hookline::config::Config::with_overrides("")?.delivery.concurrency,
    };
    if cli.nats_mode == NatsTopology::Cluster && cli.nats_url.is_some() {
        bail!("--nats-mode cluster starts its own cluster: leave out --nats-url");
    }
    let hookline = hookline_binary(cli.hookline)?;
    let hookline_has_egress = std::fs::read(&hookline)
        .map(|bytes| bytes.windows(11).any(|w| w == b"allow_cidrs"))
        .unwrap_or(true);
    let opts = Options {
        quick: cli.quick,
        nats_url: cli.nats_url,
        redis_url: cli.redis_url,
        redis_mode: cli.redis_mode.mode(),
        nats_server: cli.nats_server.unwrap_or_else(hookline_testkit::nats::nats_server_binary),
        nats_cluster: cli.nats_mode == NatsTopology::Cluster,
        hookline,
        hookline_env,
        hookline_has_egress,
        rust_log: cli.rust_log,
        concurrency,
        max_rate: cli.max_rate,
        keep: cli.keep,
    };
    let scenarios = if cli.scenarios.is_empty() {
        vec![
            Scenario::Baseline,
            Scenario::Throughput,
            Scenario::Fanout,
            Scenario::Latency,
            Scenario::Isolation,
            Scenario::Backlog,
            Scenario::ManySubs,
        ]
    } else {
        cli.scenarios
    };
    let sizes = Sizes::new(opts.quick);
    let mut env = Env::start(opts).await?;
    if env.opts.keep {
        eprintln!("logs in {}", env.dir.path().display());
    }
    let table = |line: String| if cli.json { eprintln!("{line}") } else { println!("{line}") };
    let redis_mode = match cli.redis_mode {
        RedisTopology::Standalone => "standalone",
        RedisTopology::Cluster => "cluster",
    };
    let nats_mode = match cli.nats_mode {
        NatsTopology::Single => "single",
        NatsTopology::Cluster => "cluster (3 nodes, R3)",
    };
    table(format!("redis: {redis_mode}, nats: {nats_mode}"));
    table(report::header());
    let started = Instant::now();
    let mut runs: Vec<Vec<Report>> = Vec::new();
    for run in 1..=cli.runs.max(1) {
        if cli.runs > 1 {
            table(format!("run {run} of {}", cli.runs));
        }
        let mut done: Vec<Report> = Vec::new();
        for &scenario in &scenarios {
            env.check_alive()?;
            let r = run_one(&mut env, &sizes, scenario, &done)
                .await
                .with_context(|| format!("scenario {scenario:?}"))?;
            let mut r = r;
            r.set("redis_mode", redis_mode);
            r.set("nats_mode", nats_mode);
            table(r.row());
            if cli.json {
                println!("{}", r.to_json());
            }
            done.push(r);
        }
        runs.push(done);
    }
    let mut medians = Vec::new();
    if cli.runs > 1 {
        table(format!("medians over {} runs", cli.runs));
        for &scenario in &scenarios {
            let name = scenario_name(scenario);
            let of: Vec<&Report> = runs.iter().flatten().filter(|r| r.scenario == name).collect();
            let m = report::median_of(&of);
            table(m.row());
            if cli.json {
                let mut json = m.to_json();
                json["median_of"] = of.len().into();
                println!("{json}");
            }
            medians.push(m);
        }
    }
    let verdict = Verdict::of(&runs, (cli.runs > 1).then_some(medians.as_slice()));
    table(format!("total {:.0} s", started.elapsed().as_secs_f64()));
    if let Some((url, received)) = &sink {
        use std::sync::atomic::Ordering::Relaxed;
        let (requests, bytes) = (received.requests.load(Relaxed), received.bytes.load(Relaxed));
        table(format!("otlp sink {url}: {requests} export requests, {bytes} bytes"));
    }
    for line in verdict.lines() {
        table(line);
    }
    Ok(ExitCode::from(verdict.exit_code()))
}
