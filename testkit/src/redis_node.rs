//! One redis-server (or sentinel) process of a multi-node test topology ([`super::redis_cluster`],
//! [`super::redis_sentinel`]): spawned with given arguments in its own dir, output to
//! `redis.log` there, SIGKILLed on [`Node::kill`] and on drop.
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::redis::{redis_server_binary, spawn_logged};
use super::{eventually, log_tail};

/// How long a starting node may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Node {
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Node {
    /// Spawns `redis-server <args>` in `dir` (created) and waits until it answers PING.
    pub(crate) async fn spawn(port: u16, dir: PathBuf, args: &[String]) -> Node {
        std::fs::create_dir_all(&dir).expect("creating a redis node dir");
        let mut node = Node { port, dir, args: args.to_vec(), child: None };
        node.start().await;
        node
    }

    /// Starts the (killed) node again with the same arguments and dir; waits for PING.
    pub(crate) async fn restart(&mut self) {
        self.kill().await;
        self.start().await;
    }

    async fn start(&mut self) {
        let binary = redis_server_binary();
        let mut command = Command::new(&binary);
        command.args(&self.args).current_dir(&self.dir);
        let child = spawn_logged(&mut command, &binary, &self.dir.join("redis.log"));
        self.child = Some(child);
        let port = self.port;
        let what = format!("redis node on port {port} to answer PING");
        let log_path = self.dir.join("redis.log");
        let child = &mut self.child;
        eventually(READY_TIMEOUT, &what, || {
            if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                panic!(
                    "redis node on port {port} exited with {status}; log:\n{}",
                    log_tail(&log_path, 4000)
                );
            }
            async move { (query::<String>(port, &["PING"]).await? == "PONG").then_some(()) }
        })
        .await;
    }

    /// Whether the process runs (not killed).
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILLs the node and reaps it; a no-op if already killed.
    pub(crate) async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// The process id, while the node runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// An error with the log's tail if the node has exited by itself (a kill is no exit).
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
            anyhow::bail!(
                "redis node on port {} exited with {status}; log:\n{}",
                self.port,
                log_tail(&self.dir.join("redis.log"), 3000)
            );
        }
        Ok(())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = child.try_wait();
        }
    }
}

/// One command on 127.0.0.1:`port` over a fresh connection; `None` on any failure.
pub(crate) async fn query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.ok()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await.ok()
}

/// `field:value` lines of an `INFO` reply.
pub(crate) fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(|v| v.trim().to_string()))
}
