//! A real 6-node Redis Cluster on loopback (3 masters, 3 replicas), for the Cluster tests, the
//! chaos profile and the benchmark.
//!
//! Each node runs on two free ports (client and `cluster-port`, so the fixed +10000 bus port
//! never collides) in its own dir under one temp dir; the cluster is formed with
//! `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes` (env
//! `HOOKLINE_TEST_REDIS_CLI` overrides the `redis-cli` on PATH) and is ready once every node says
//! `cluster_state:ok`. `cluster-node-timeout` is 1 s so a killed master's replica takes over
//! within a few seconds. Invariants: every node is SIGKILLed when the handle drops, and the dir
//! goes with it; nothing is persisted.
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use super::redis_node::{Node, info_field, query};
use super::{eventually, free_port, init};

/// Env var naming the redis-cli binary; `redis-cli` from PATH when unset.
pub const REDIS_CLI_ENV: &str = "HOOKLINE_TEST_REDIS_CLI";
/// How long forming the cluster or a failover may take.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Redis Cluster of 3 masters and 3 replicas.
pub struct RedisCluster {
    nodes: Vec<Node>,
    _dir: TempDir,
}

/// The redis-cli binary: [`REDIS_CLI_ENV`], else `redis-cli` from PATH.
pub fn redis_cli_binary() -> PathBuf {
    std::env::var_os(REDIS_CLI_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-cli"))
}

impl RedisCluster {
    /// Spawns 6 nodes, creates the cluster (3 masters + 3 replicas) and waits until it is ok.
    pub async fn start() -> RedisCluster {
        init();
        let dir = tempfile::Builder::new()
            .prefix("hookline-redis-cluster-")
            .tempdir()
            .expect("creating a temp dir for the redis cluster");
        let mut nodes = Vec::new();
        for i in 0..6 {
            let (port, bus) = (free_port(), free_port());
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--cluster-port",
                &bus.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                "--cluster-replica-validity-factor",
                "0",
                "--cluster-require-full-coverage",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",
                "--dir",
                ".",
            ]
            .iter()
            .map(ToString::to_string)
            .collect();
            nodes.push(Node::spawn(port, dir.path().join(format!("node{i}")), &args).await);
        }
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.create().await;
        cluster
    }

    async fn create(&self) {
        let addrs: Vec<String> =
            self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let cli = redis_cli_binary();
        let output = tokio::process::Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .await
            .unwrap_or_else(|e| {
                panic!("running {}: {e}; install redis-tools or set {REDIS_CLI_ENV}", cli.display())
            });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        self.wait_ok(None).await;
    }

    /// Waits until every running node says `cluster_state:ok` and sees 3 live masters covering
    /// all slots, none of them on port `gone` (a killed master: right after the kill the others
    /// still count it live until `cluster-node-timeout` has passed).
    async fn wait_ok(&self, gone: Option<u16>) {
        let ports: Vec<u16> =
            self.nodes.iter().filter(|n| n.is_running()).map(|n| n.port).collect();
        eventually(CLUSTER_TIMEOUT, "the redis cluster to be ok on every node", || {
            let ports = ports.clone();
            async move {
                for port in ports {
                    let info: String = query(port, &["CLUSTER", "INFO"]).await?;
                    if info_field(&info, "cluster_state")? != "ok"
                        || info_field(&info, "cluster_slots_ok")? != "16384"
                    {
                        return None;
                    }
                    let live = live_masters(&query::<String>(port, &["CLUSTER", "NODES"]).await?);
                    if live.len() != 3 || gone.is_some_and(|port| live.contains(&port)) {
                        return None;
                    }
                }
                Some(())
            }
        })
        .await;
    }

    /// The client ports of all 6 nodes (killed ones included).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis://127.0.0.1:<port>/` of every running node, comma-separated: `redis.url` in
    /// cluster mode.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client ports of the masters serving slots now, as a running node sees them.
    pub async fn masters(&self) -> Vec<u16> {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            if let Some(nodes) = query::<String>(node.port, &["CLUSTER", "NODES"]).await {
                return live_masters(&nodes);
            }
        }
        panic!("no running redis cluster node answers CLUSTER NODES");
    }

    /// The client port of the live master serving `key`'s hash slot, as a running node sees it.
    pub async fn master_of(&self, key: &str) -> u16 {
        let ports: Vec<u16> =
            self.nodes.iter().filter(|n| n.is_running()).map(|n| n.port).collect();
        eventually(CLUSTER_TIMEOUT, &format!("the master serving {key}"), || {
            let ports = ports.clone();
            async move {
                for port in ports {
                    let Some(slot) = query::<u16>(port, &["CLUSTER", "KEYSLOT", key]).await else {
                        continue;
                    };
                    if let Some(nodes) = query::<String>(port, &["CLUSTER", "NODES"]).await {
                        return master_serving(&nodes, slot);
                    }
                }
                None
            }
        })
        .await
    }

    /// SIGKILLs the master on `port` and waits until its replica has taken over (all slots
    /// served by 3 live masters, every running node ok).
    pub async fn kill_master(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no redis cluster node on port {port}"));
        node.kill().await;
        self.wait_ok(Some(port)).await;
    }

    /// Restarts the killed node on `port` (same ports and dir, so it rejoins from its
    /// `nodes.conf`, as a replica of the master that replaced it) and waits until every node is
    /// ok again.
    pub async fn restart_node(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no redis cluster node on port {port}"));
        node.restart().await;
        eventually(CLUSTER_TIMEOUT, "the restarted node to rejoin as a replica", || async move {
            let info: String = query(port, &["INFO", "replication"]).await?;
            (info_field(&info, "role")? == "slave"
                && info_field(&info, "master_link_status")? == "up")
                .then_some(())
        })
        .await;
        self.wait_ok(None).await;
    }

    /// The process ids of the running nodes (for resource accounting: the benchmark sums them).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    /// An error naming the node and its log's tail if a node has exited by itself (a kill is
    /// no exit).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.nodes.iter_mut().try_for_each(Node::check_alive)
    }

    /// The data dirs (each holds the node's `redis.log`), for a failing test to print.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.nodes.iter().map(|n| n.dir().to_path_buf()).collect()
    }
}

/// The client port of the live master whose slot ranges in `CLUSTER NODES` hold `slot`.
fn master_serving(nodes: &str, slot: u16) -> Option<u16> {
    nodes.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?;
        if !flags.contains("master") || flags.contains("fail") {
            return None;
        }
        let serves = fields.iter().skip(8).any(|range| {
            let (from, to) = range.split_once('-').unwrap_or((range, range));
            matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
        });
        serves.then(|| fields[1].split(['@', ',']).next()?.rsplit(':').next()?.parse().ok()).flatten()
    })
}

/// Client ports of the masters that own slots and are not marked failed in `CLUSTER NODES`.
fn live_masters(nodes: &str) -> Vec<u16> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            let serves_slots = fields.len() > 8;
            (flags.contains("master") && !flags.contains("fail") && serves_slots)
                .then(|| fields[1].split(['@', ',']).next()?.rsplit(':').next()?.parse().ok())
                .flatten()
        })
        .collect()
}
