//! A real Redis Sentinel setup on loopback: a master, a replica and 3 sentinels (quorum 2), for
//! the Sentinel tests, the chaos profile and the benchmark.
//!
//! Sentinels run as `redis-server <conf> --sentinel` (the conf must be writable: they rewrite
//! it) with `down-after-milliseconds` 1000 and `failover-timeout` 5000, so a killed master is
//! replaced within a few seconds. Ready once every sentinel names the master, knows the replica
//! and the other two sentinels. Invariants: every process is SIGKILLed when the handle drops,
//! and the dir goes with it; nothing is persisted.
use std::time::Duration;

use tempfile::TempDir;

use super::redis_node::{Node, info_field, query};
use super::{eventually, free_port, init};

/// The master set's name the sentinels monitor.
pub const MASTER_NAME: &str = "hookline";
/// How long the set-up or a failover may take.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(30);

/// A running master + replica watched by 3 sentinels.
pub struct RedisSentinel {
    servers: Vec<Node>,
    sentinels: Vec<Node>,
    _dir: TempDir,
}

fn server_args(port: u16) -> Vec<String> {
    ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        .iter()
        .chain(&["--daemonize", "no", "--logfile", "", "--dir", "."])
        .map(ToString::to_string)
        .collect()
}

impl RedisSentinel {
    /// Spawns the master, its replica and 3 sentinels, and waits until all agree.
    pub async fn start() -> RedisSentinel {
        init();
        let dir = tempfile::Builder::new()
            .prefix("hookline-redis-sentinel-")
            .tempdir()
            .expect("creating a temp dir for redis sentinel");
        let master_port = free_port();
        let master =
            Node::spawn(master_port, dir.path().join("master"), &server_args(master_port)).await;
        let replica_port = free_port();
        let mut args = server_args(replica_port);
        args.extend(["--replicaof".into(), "127.0.0.1".into(), master_port.to_string()]);
        let replica = Node::spawn(replica_port, dir.path().join("replica"), &args).await;
        eventually(SENTINEL_TIMEOUT, "the replica to sync with the master", || async move {
            let info: String = query(replica_port, &["INFO", "replication"]).await?;
            (info_field(&info, "master_link_status")? == "up").then_some(())
        })
        .await;
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let sdir = dir.path().join(format!("sentinel{i}"));
            std::fs::create_dir_all(&sdir).expect("creating a sentinel dir");
            let conf = sdir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n"
                ),
            )
            .expect("writing sentinel.conf");
            let args = vec![conf.display().to_string(), "--sentinel".to_string()];
            sentinels.push(Node::spawn(port, sdir, &args).await);
        }
        let set = RedisSentinel { servers: vec![master, replica], sentinels, _dir: dir };
        set.wait_agreed(master_port).await;
        set
    }

    /// Waits until every running sentinel names `master` and knows a replica and the other
    /// two sentinels (so a failover can be voted).
    async fn wait_agreed(&self, master: u16) {
        let ports: Vec<u16> = self.sentinel_ports();
        eventually(SENTINEL_TIMEOUT, "every sentinel to agree on the master", || {
            let ports = ports.clone();
            async move {
                for port in ports {
                    let addr: Vec<String> =
                        query(port, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).await?;
                    let others: Vec<redis::Value> =
                        query(port, &["SENTINEL", "sentinels", MASTER_NAME]).await?;
                    let replicas: Vec<redis::Value> =
                        query(port, &["SENTINEL", "replicas", MASTER_NAME]).await?;
                    if addr.get(1)? != &master.to_string()
                        || others.len() < 2
                        || replicas.is_empty()
                    {
                        return None;
                    }
                }
                let role: String = query(master, &["INFO", "replication"]).await?;
                (info_field(&role, "role")? == "master").then_some(())
            }
        })
        .await;
    }

    /// `redis://127.0.0.1:<port>/` of the 3 sentinels, comma-separated: `redis.url` in sentinel
    /// mode (with `redis.sentinel_master` = [`MASTER_NAME`]).
    pub fn url(&self) -> String {
        self.sentinel_ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master set's name ([`MASTER_NAME`]).
    pub fn master_name(&self) -> &'static str {
        MASTER_NAME
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|n| n.port).collect()
    }

    /// The port of the master the sentinels name now.
    pub async fn master_port(&self) -> u16 {
        for port in self.sentinel_ports() {
            let addr: Option<Vec<String>> =
                query(port, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).await;
            if let Some(p) = addr.and_then(|a| a.get(1)?.parse().ok()) {
                return p;
            }
        }
        panic!("no sentinel names the master {MASTER_NAME}");
    }

    /// SIGKILLs the current master and waits until the sentinels have promoted the replica
    /// (every sentinel names it and it says `role:master`); returns the new master's port.
    pub async fn kill_master(&mut self) -> u16 {
        let old = self.master_port().await;
        let node =
            self.servers.iter_mut().find(|n| n.port == old).unwrap_or_else(|| {
                panic!("the master on port {old} is not one of this set's servers")
            });
        node.kill().await;
        let new = eventually(SENTINEL_TIMEOUT, "the sentinels to promote a new master", || {
            let ports = self.sentinel_ports();
            async move {
                let mut named = None;
                for port in ports {
                    let addr: Vec<String> =
                        query(port, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME]).await?;
                    let p: u16 = addr.get(1)?.parse().ok()?;
                    if p == old || named.is_some_and(|n| n != p) {
                        return None;
                    }
                    named = Some(p);
                }
                named
            }
        })
        .await;
        self.wait_agreed_master(new).await;
        new
    }

    /// Restarts every killed server (same port and dir) and waits until each is a replica of
    /// the current master, as the sentinels reconfigure it.
    pub async fn restart_killed(&mut self) {
        let master = self.master_port().await;
        for node in self.servers.iter_mut().filter(|n| !n.is_running()) {
            node.restart().await;
            let port = node.port;
            eventually(
                SENTINEL_TIMEOUT,
                "the restarted server to replicate the master",
                || async move {
                    let info: String = query(port, &["INFO", "replication"]).await?;
                    (info_field(&info, "role")? == "slave"
                        && info_field(&info, "master_port")? == master.to_string()
                        && info_field(&info, "master_link_status")? == "up")
                        .then_some(())
                },
            )
            .await;
        }
        self.wait_agreed(master).await;
    }

    async fn wait_agreed_master(&self, master: u16) {
        eventually(SENTINEL_TIMEOUT, "the promoted replica to say role:master", || async move {
            let info: String = query(master, &["INFO", "replication"]).await?;
            (info_field(&info, "role")? == "master").then_some(())
        })
        .await;
    }
}
