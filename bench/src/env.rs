//! The benchmark environment: the servers, the receiver and one hookline process per scenario,
//! with the helpers every scenario uses (subscriptions, warm-up, waiting for deliveries,
//! resource snapshots, clean-up).
//!
//! Each scenario gets a fresh hookline process with its own prefix (streams, consumers and
//! Redis keys apart from every other scenario), so its peak RSS and CPU are its own.
//!
//! Redis is one standalone server, or with `--redis-mode cluster` a 6-node Redis Cluster (3
//! masters + 3 replicas, the test kit's) that hookline reaches with `redis.mode = "cluster"`;
//! the CPU reported for Redis is then that of all six nodes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use hookline::config::RedisMode;
use hookline::store::subscriptions::{SubscriptionInput, SubscriptionStore};
use hookline::subjects::Names;
use hookline_testkit::cluster::Cluster;
use hookline_testkit::nats::NatsServer;
use hookline_testkit::redis::RedisServer;
use hookline_testkit::redis_cluster::RedisCluster;

use crate::load::{EVENT_TYPE, Publisher};
use crate::pairs::{Expected, Loss};
use crate::procs::{self, HooklineSetup, Proc, TempDir, Usage};
use crate::receiver::Stats;

/// Command-line options that shape the environment.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub nats_url: Option<String>,
    pub redis_url: Option<String>,
    /// Standalone or cluster (`--redis-mode`; sentinel is not benchmarked).
    pub redis_mode: RedisMode,
    pub nats_server: PathBuf,
    /// Start a 3-node NATS cluster (streams R3) instead of one server (`--nats-mode cluster`).
    pub nats_cluster: bool,
    pub hookline: PathBuf,
    /// `HOOKLINE_<SECTION>__<KEY>` overrides for every hookline process.
    pub hookline_env: Vec<(String, String)>,
    /// Whether the hookline binary knows `egress.allow_cidrs` (older builds reject the key).
    pub hookline_has_egress: bool,
    pub rust_log: String,
    /// delivery.concurrency in effect (the baseline uses the same).
    pub concurrency: usize,
    /// Events/s assumed as max when the throughput scenario did not run.
    pub max_rate: f64,
    pub keep: bool,
}

/// The running servers and receiver.
pub struct Env {
    pub opts: Options,
    pub dir: TempDir,
    nats: Option<Nats>,
    redis: Option<Redis>,
    pub nats_url: String,
    pub redis_url: String,
    pub receiver: Proc,
    pub receiver_port: u16,
    control: reqwest::Client,
    js: async_nats::jetstream::Context,
    run_id: String,
}

/// The NATS the benchmark started (none when `--nats-url` names one).
enum Nats {
    Single(NatsServer),
    /// Three nodes; hookline runs with `streams.replicas = 3`.
    Cluster(Cluster),
}

impl Nats {
    async fn start(binary: PathBuf, cluster: bool) -> Nats {
        match cluster {
            false => Nats::Single(NatsServer::start_binary(binary).await),
            true => Nats::Cluster(Cluster::start_binary(binary).await),
        }
    }

    /// `nats.url` for hookline: the server's URL, or every node's, comma-separated.
    fn url(&self) -> String {
        match self {
            Nats::Single(server) => server.url(),
            Nats::Cluster(cluster) => cluster.url(),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Nats::Single(server) => server.pid().into_iter().collect(),
            Nats::Cluster(cluster) => cluster.pids(),
        }
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self {
            Nats::Single(server) => server.check_alive(),
            Nats::Cluster(cluster) => cluster.check_alive(),
        }
    }
}

/// The Redis the benchmark started (none when `--redis-url` names one).
enum Redis {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    async fn start(mode: RedisMode) -> anyhow::Result<Redis> {
        match mode {
            RedisMode::Standalone => Ok(Redis::Standalone(RedisServer::start().await)),
            RedisMode::Cluster => Ok(Redis::Cluster(RedisCluster::start().await)),
            RedisMode::Sentinel => bail!("--redis-mode: sentinel is not benchmarked"),
        }
    }

    /// `redis.url` for hookline: the server's URL, or every node's, comma-separated.
    fn url(&self) -> String {
        match self {
            Redis::Standalone(server) => server.url(),
            Redis::Cluster(cluster) => cluster.url(),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Redis::Standalone(server) => server.pid().into_iter().collect(),
            Redis::Cluster(cluster) => cluster.pids(),
        }
    }

    /// The URLs holding data: the server, or the cluster's masters.
    async fn data_urls(&self) -> Vec<String> {
        match self {
            Redis::Standalone(server) => vec![server.url()],
            Redis::Cluster(cluster) => {
                let masters = cluster.masters().await;
                masters.into_iter().map(|port| format!("redis://127.0.0.1:{port}/")).collect()
            }
        }
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self {
            Redis::Standalone(server) => server.check_alive(),
            Redis::Cluster(cluster) => cluster.check_alive(),
        }
    }
}

/// A hookline process serving one scenario's prefix.
pub struct Hookline {
    pub proc: Proc,
    pub prefix: String,
    pub names: Names,
    pub subs: SubscriptionStore,
}

/// CPU seconds of every process, at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    pub at: Option<Instant>,
    pub hookline: f64,
    pub nats: f64,
    pub redis: f64,
    pub receiver: f64,
    pub bench: f64,
}

/// How waiting for deliveries ended.
#[derive(Debug, Clone, Default)]
pub struct Waited {
    pub delivered: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub timed_out: bool,
    pub stats: Stats,
}

impl Waited {
    /// Deliveries per second from the first to the last receipt.
    pub fn rate(&self) -> f64 {
        window_rate(self.delivered, self.first_ns, self.last_ns)
    }
}

/// Receipts per second from the first to the last receipt at the receiver: the one window every
/// rate of the benchmark (the baseline's and hookline's) is measured over.
pub fn window_rate(receipts: u64, first_ns: u64, last_ns: u64) -> f64 {
    let secs = last_ns.saturating_sub(first_ns) as f64 / 1e9;
    if secs <= 0.0 { 0.0 } else { receipts as f64 / secs }
}

/// How long [`Env::settle`] waits for a missing pair once none has arrived.
pub const SETTLE: Duration = Duration::from_secs(5);

impl Env {
    pub async fn start(opts: Options) -> anyhow::Result<Env> {
        let mut dir = TempDir::new("run")?;
        dir.keep = opts.keep;
        // The servers come from the test kit (free ports, temp dirs, ready when they answer);
        // Redis without persistence: the benchmark measures hookline, not fsync.
        let (mut nats, nats_url) = match &opts.nats_url {
            Some(url) => (None, url.clone()),
            None => {
                let server = Nats::start(opts.nats_server.clone(), opts.nats_cluster).await;
                let url = server.url();
                (Some(server), url)
            }
        };
        let (mut redis, redis_url) = match &opts.redis_url {
            Some(url) => (None, url.clone()),
            None => {
                let redis = Redis::start(opts.redis_mode).await?;
                let url = redis.url();
                (Some(redis), url)
            }
        };
        if opts.keep {
            let redis_files = match redis.as_mut() {
                Some(Redis::Standalone(server)) => Some(server.keep_files()),
                Some(Redis::Cluster(_)) => {
                    eprintln!("the redis cluster's files are not kept (the test kit removes them)");
                    None
                }
                None => None,
            };
            let nats_files = match nats.as_mut() {
                Some(Nats::Single(server)) => Some(server.keep_files()),
                Some(Nats::Cluster(_)) => {
                    eprintln!("the nats cluster's files are not kept (the test kit removes them)");
                    None
                }
                None => None,
            };
            for kept in [nats_files, redis_files].into_iter().flatten() {
                eprintln!("server files kept in {}", kept.display());
            }
        }
        let receiver_port = hookline_testkit::free_port();
        let receiver = procs::start_receiver(receiver_port, dir.path()).await?;
        let js = async_nats::jetstream::new(crate::load::nats_connect(&nats_url).await?);
        let run_id =
            format!("{:x}", std::process::id() ^ (Instant::now().elapsed().subsec_nanos()));
        let control = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Env {
            opts,
            dir,
            nats,
            redis,
            nats_url,
            redis_url,
            receiver,
            receiver_port,
            control,
            js,
            run_id,
        })
    }

    /// `http://127.0.0.1:<receiver>/s/<name>` (or `/hang/<name>` when `hang`).
    pub fn endpoint(&self, name: &str, hang: bool) -> String {
        format!(
            "http://127.0.0.1:{}/{}/{name}",
            self.receiver_port,
            if hang { "hang" } else { "s" }
        )
    }

    /// The receiver paths of [`subscribe_n`](Self::subscribe_n)'s `n` subscriptions.
    pub fn paths(scenario: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/s/{scenario}-{i}")).collect()
    }

    /// Which `expected` pairs the receiver has not seen (an exact set, not a count).
    pub async fn loss(&self, expected: &Expected) -> anyhow::Result<Loss> {
        let url = format!("http://127.0.0.1:{}/_bench/missing", self.receiver_port);
        let response = self.control.post(url).json(expected).send().await?;
        Ok(response.error_for_status()?.json().await?)
    }

    /// [`loss`](Self::loss) once nothing more arrives: polls while pairs are missing until none
    /// is, or none has arrived for [`SETTLE`]. A count that reached its goal may hide a missing
    /// pair behind an unexpected one; this is where such a pair gets its last chance.
    pub async fn settle(&self, expected: &Expected) -> anyhow::Result<Loss> {
        let mut loss = self.loss(expected).await?;
        let mut progress = Instant::now();
        while loss.lost > 0 && progress.elapsed() < SETTLE {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.loss(expected).await?;
            if now.lost != loss.lost {
                progress = Instant::now();
            }
            loss = now;
        }
        Ok(loss)
    }

    pub async fn stats(&self, with_latency: bool) -> anyhow::Result<Stats> {
        let query = if with_latency { "?latency" } else { "" };
        let url = format!("http://127.0.0.1:{}/_bench/stats{query}", self.receiver_port);
        Ok(self.control.get(url).send().await?.error_for_status()?.json().await?)
    }

    /// Messages a stream has ever stored (its last sequence).
    pub async fn stream_messages(&self, stream: &str) -> anyhow::Result<u64> {
        Ok(self.js.get_stream(stream).await?.info().await?.state.last_sequence)
    }

    /// Messages ever stored in the scenario's deliveries streams (every partition).
    pub async fn deliveries_stored(&self, hk: &Hookline) -> anyhow::Result<u64> {
        let mut stored = 0;
        for stream in hk.names.deliveries_streams() {
            stored += self.stream_messages(&stream).await?;
        }
        Ok(stored)
    }

    pub async fn reset_receiver(&self) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/_bench/reset", self.receiver_port);
        self.control.post(url).send().await?.error_for_status()?;
        Ok(())
    }

    /// Kills the receiver (its endpoint then refuses connections).
    pub async fn stop_receiver(&mut self) {
        self.receiver.kill().await;
    }

    /// Starts the receiver again on the same port (empty statistics).
    pub async fn restart_receiver(&mut self) -> anyhow::Result<()> {
        self.receiver = procs::start_receiver(self.receiver_port, self.dir.path()).await?;
        Ok(())
    }

    /// Starts `hookline serve` for `scenario` with `extra` config on top of the options' and
    /// waits until its consumers exist.
    pub async fn hookline(
        &self,
        scenario: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Hookline> {
        let prefix = format!("b{}_{}", self.run_id, scenario.replace('-', "_"));
        let mut env = vec![
            ("HOOKLINE_NATS__URL".to_string(), self.nats_url.clone()),
            ("HOOKLINE_REDIS__URL".to_string(), self.redis_url.clone()),
            ("HOOKLINE_STREAMS__PREFIX".to_string(), prefix.clone()),
        ];
        if self.opts.nats_cluster {
            env.push(("HOOKLINE_STREAMS__REPLICAS".to_string(), "3".to_string()));
        }
        if self.opts.redis_mode == RedisMode::Cluster {
            // Only then: a binary from before redis.mode existed rejects the key.
            env.push(("HOOKLINE_REDIS__MODE".to_string(), "cluster".to_string()));
        }
        if self.opts.hookline_has_egress {
            env.push((
                "HOOKLINE_EGRESS__ALLOW_CIDRS".to_string(),
                r#"["127.0.0.0/8"]"#.to_string(),
            ));
        }
        env.extend(self.opts.hookline_env.iter().cloned());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let setup = HooklineSetup {
            binary: &self.opts.hookline,
            env,
            rust_log: &self.opts.rust_log,
            log: self.dir.path().join(format!("hookline-{scenario}.log")),
        };
        // `--env HOOKLINE_STREAMS__PARTITIONS=N` runs hookline with N partitions.
        let partitions = setup
            .env
            .iter()
            .find(|(k, _)| k == "HOOKLINE_STREAMS__PARTITIONS")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        let mut proc = procs::spawn_hookline(setup)?;
        let names = Names::new(&prefix).with_partitions(partitions);
        let js = self.js.clone();
        // The last consumer `ensure` creates.
        let last = names.partitions() - 1;
        let (stream, consumer) =
            (names.deliveries_stream_at(last), names.deliver_consumer_at(last));
        procs::wait_ready(&mut proc, Duration::from_secs(20), || {
            let (js, stream, consumer) = (js.clone(), stream.clone(), consumer.clone());
            async move {
                match js.get_stream(&stream).await {
                    Ok(s) => s.consumer_info(&consumer).await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await?;
        let mut config = hookline::config::Config::with_overrides(crate::load::LOOPBACK_ALLOWED)?;
        config.redis.url = self.redis_url.clone();
        config.redis.mode = self.opts.redis_mode;
        config.nats.url = self.nats_url.clone();
        config.streams.prefix = prefix.clone();
        let subs = hookline::context::subscription_store(&config).await?;
        Ok(Hookline { proc, prefix, subs, names })
    }

    /// Creates subscriptions (url, event-type filters), 64 at a time; returns their ids.
    pub async fn subscribe(
        &self,
        hk: &Hookline,
        specs: Vec<(String, Vec<String>)>,
    ) -> anyhow::Result<Vec<String>> {
        let specs = specs.into_iter().map(|(url, types)| (url, types, None)).collect();
        self.subscribe_filtered(hk, specs).await
    }

    /// Creates subscriptions (url, event-type filters, payload filter), 64 at a time; returns
    /// their ids.
    pub async fn subscribe_filtered(
        &self,
        hk: &Hookline,
        specs: Vec<(String, Vec<String>, Option<serde_json::Value>)>,
    ) -> anyhow::Result<Vec<String>> {
        let created: Vec<anyhow::Result<String>> = futures::stream::iter(specs)
            .map(|(url, types, filter)| {
                let store = hk.subs.clone();
                async move {
                    let input = SubscriptionInput {
                        url: Some(url),
                        event_types: Some(types),
                        filter,
                        ..Default::default()
                    };
                    Ok(store.create(input).await.context("creating a subscription")?.id)
                }
            })
            .buffered(64)
            .collect()
            .await;
        created.into_iter().collect()
    }

    /// `n` subscriptions `/s/<scenario>-<i>` for the benchmark's event type.
    pub async fn subscribe_n(
        &self,
        hk: &Hookline,
        scenario: &str,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        self.subscribe_n_filtered(hk, scenario, n, None).await
    }

    /// Like [`Env::subscribe_n`], each with the payload filter `filter`.
    pub async fn subscribe_n_filtered(
        &self,
        hk: &Hookline,
        scenario: &str,
        n: usize,
        filter: Option<serde_json::Value>,
    ) -> anyhow::Result<Vec<String>> {
        let specs = (0..n).map(|i| {
            let url = self.endpoint(&format!("{scenario}-{i}"), false);
            (url, vec![EVENT_TYPE.to_string()], filter.clone())
        });
        self.subscribe_filtered(hk, specs.collect()).await
    }

    /// Publishes `events` warm-up events (connection pools, caches), waits for their
    /// `events * subs` deliveries, then clears the receiver's statistics.
    pub async fn warm_up(
        &self,
        publisher: &Publisher,
        events: u64,
        subs: u64,
    ) -> anyhow::Result<()> {
        // Cleared first too: counts left by an earlier scenario must not end the wait early.
        self.reset_receiver().await?;
        publisher.burst("warm", 0..events).await?;
        let waited = self.wait_for(events * subs, |_| true, Duration::from_secs(20), None).await?;
        if waited.timed_out {
            bail!("warm-up: only {} of {} deliveries arrived", waited.delivered, events * subs);
        }
        self.reset_receiver().await
    }

    /// Polls the receiver until `expected` unique deliveries on the paths `keep` selects have
    /// arrived, no progress was made for `stall`, or `cap` has passed.
    pub async fn wait_for(
        &self,
        expected: u64,
        keep: impl Fn(&str) -> bool,
        stall: Duration,
        cap: Option<Duration>,
    ) -> anyhow::Result<Waited> {
        let started = Instant::now();
        let (mut last_count, mut last_progress) = (u64::MAX, Instant::now());
        loop {
            let stats = self.stats(false).await?;
            let (delivered, first_ns, last_ns) = stats.over(&keep);
            let done = delivered >= expected;
            if delivered != last_count {
                (last_count, last_progress) = (delivered, Instant::now());
            }
            let timed_out = !done
                && (last_progress.elapsed() > stall || cap.is_some_and(|c| started.elapsed() > c));
            if done || timed_out {
                return Ok(Waited { delivered, first_ns, last_ns, timed_out, stats });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn cpu(&self, hk: &Hookline) -> CpuSnapshot {
        let cpu = |pid: Option<u32>| pid.map(|pid| Usage::of(pid).cpu_s).unwrap_or(0.0);
        let redis_pids = self.redis.as_ref().map(Redis::pids).unwrap_or_default();
        let nats_pids = self.nats.as_ref().map(Nats::pids).unwrap_or_default();
        CpuSnapshot {
            at: Some(Instant::now()),
            hookline: hk.proc.usage().cpu_s,
            nats: nats_pids.into_iter().map(|pid| cpu(Some(pid))).sum(),
            redis: redis_pids.into_iter().map(|pid| cpu(Some(pid))).sum(),
            receiver: self.receiver.usage().cpu_s,
            bench: Usage::of(std::process::id()).cpu_s,
        }
    }

    /// Entries in the scenario's dead-letter stream.
    pub async fn dlq_count(&self, hk: &Hookline) -> anyhow::Result<u64> {
        let mut stream = self.js.get_stream(hk.names.dlq_stream()).await?;
        Ok(stream.info().await?.state.messages)
    }

    /// Kills the scenario's hookline and deletes its streams (and, when Redis is ours, its keys).
    /// Clean-up failures are reported, never fatal: the scenario's numbers are already taken.
    pub async fn finish(&self, mut hk: Hookline) -> anyhow::Result<()> {
        hk.proc.kill().await;
        let mut streams = hk.names.deliveries_streams();
        streams.extend([hk.names.events_stream(), hk.names.dlq_stream()]);
        for stream in streams {
            let _ = self.js.delete_stream(&stream).await;
        }
        if let Some(redis) = &self.redis {
            // ASYNC: a large keyspace (a full-size backlog leaves ~1 M keys) is freed in the
            // background instead of blocking past the client's response timeout.
            for url in redis.data_urls().await {
                let flushed = async {
                    let client = redis::Client::open(url.as_str())?;
                    let mut conn = client.get_multiplexed_async_connection().await?;
                    redis::cmd("FLUSHDB").arg("ASYNC").query_async::<()>(&mut conn).await
                };
                if let Err(e) = flushed.await {
                    eprintln!("warning: clearing redis at {url} after {}: {e}", hk.prefix);
                }
            }
        }
        self.reset_receiver().await
    }

    /// Checks that the servers and the receiver are still alive.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(nats) = self.nats.as_mut() {
            nats.check_alive()?;
        }
        if let Some(redis) = self.redis.as_mut() {
            redis.check_alive()?;
        }
        self.receiver.check_alive()
    }
}

impl CpuSnapshot {
    /// CPU seconds per process between `self` and `later`, and the wall time, as report metrics.
    pub fn delta(&self, later: &CpuSnapshot) -> serde_json::Value {
        let wall = match (self.at, later.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let r = |v: f64| (v * 100.0).round() / 100.0;
        serde_json::json!({
            "wall_s": r(wall),
            "hookline": r(later.hookline - self.hookline),
            "nats": r(later.nats - self.nats),
            "redis": r(later.redis - self.redis),
            "receiver": r(later.receiver - self.receiver),
            "bench": r(later.bench - self.bench),
        })
    }
}
