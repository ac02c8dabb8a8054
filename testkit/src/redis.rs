//! A real `redis-server`, spawned per test on a free port with a temp data dir.
//!
//! Owns the Redis side of the harness: spawning `redis-server` (env `HOOKLINE_TEST_REDIS_SERVER`
//! overrides the one on PATH), waiting until PING answers, killing and restarting it on the same
//! port and dir. [`RedisServer::start`] keeps nothing on disk; [`RedisServer::start_persistent`]
//! turns on the append-only file with an fsync per write, so data acknowledged before a SIGKILL
//! is there after [`RedisServer::restart`].
//! Invariants: the child is SIGKILLed when the handle drops; output goes to `redis.log` in the
//! data dir, which is removed with the handle.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::bail;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::{eventually, free_port, init, log_tail};

/// Env var naming the redis-server binary; `redis-server` from PATH when unset.
pub const REDIS_SERVER_ENV: &str = "HOOKLINE_TEST_REDIS_SERVER";
/// The redis-server binary: [`REDIS_SERVER_ENV`], else `redis-server` from PATH.
pub fn redis_server_binary() -> PathBuf {
    std::env::var_os(REDIS_SERVER_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// How long a starting server may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the server keeps its data across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// No RDB snapshots, no AOF: a restart starts empty.
    Ephemeral,
    /// AOF with `appendfsync always`: every acknowledged write survives a SIGKILL.
    AppendOnly,
}

/// A running (or killed, awaiting restart) redis-server process.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: TempDir,
    persistence: Persistence,
    child: Option<Child>,
}

impl RedisServer {
    /// Spawns an ephemeral redis-server (nothing saved) and waits until it answers PING.
    pub async fn start() -> RedisServer {
        Self::start_with(Persistence::Ephemeral).await
    }

    /// Spawns a redis-server whose data survives [`restart`](Self::restart), even after a kill.
    pub async fn start_persistent() -> RedisServer {
        Self::start_with(Persistence::AppendOnly).await
    }

    /// Spawns a redis-server with the given persistence and waits until it answers PING.
    pub async fn start_with(persistence: Persistence) -> RedisServer {
        init();
        let binary = redis_server_binary();
        let dir = tempfile::Builder::new()
            .prefix("hookline-redis-")
            .tempdir()
            .expect("creating a temp dir for redis-server");
        let mut server = RedisServer { binary, port: free_port(), dir, persistence, child: None };
        server.spawn_and_wait().await;
        server
    }

    /// `redis://127.0.0.1:<port>/`; stable across [`restart`](Self::restart).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data dir (`--dir`), which survives restarts.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client for this server.
    pub fn client(&self) -> redis::Client {
        let url = self.url();
        redis::Client::open(url.as_str()).unwrap_or_else(|e| panic!("redis url {url}: {e}"))
    }

    /// A new multiplexed connection to this server.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let url = self.url();
        self.client()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connecting to redis-server at {url}: {e}"))
    }

    /// SIGKILLs the server and reaps it; a no-op if already killed.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            child.wait().await.unwrap_or_else(|e| {
                panic!("waiting for killed redis-server on port {}: {e}", self.port)
            });
        }
    }

    /// Kills the server if running, then starts it again on the same port and data dir.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn_and_wait().await;
    }

    /// The process id, while the server runs (for resource accounting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// An error with the log's tail if the server has exited by itself (a kill is no exit).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
            bail!(
                "redis-server at {} exited with {status}; log:\n{}",
                self.url(),
                log_tail(&self.log_path(), 3000)
            );
        }
        Ok(())
    }

    /// Leaves the data dir and `redis.log` on disk when the handle drops; returns the dir.
    pub fn keep_files(&mut self) -> &Path {
        self.dir.disable_cleanup(true);
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    async fn spawn_and_wait(&mut self) {
        let mut command = Command::new(&self.binary);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(self.dir.path());
        match self.persistence {
            Persistence::Ephemeral => command.args(["--appendonly", "no"]),
            Persistence::AppendOnly => {
                command.args(["--appendonly", "yes", "--appendfsync", "always"])
            }
        };
        let child = spawn_logged(&mut command, &self.binary, &self.log_path());
        self.child = Some(child);

        let client = self.client();
        let log_path = self.log_path();
        let what = format!("redis-server at {} to answer PING", self.url());
        let child = &mut self.child;
        eventually(READY_TIMEOUT, &what, || {
            if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                panic!(
                    "redis-server exited during startup with {status}; log:\n{}",
                    log_tail(&log_path, 4000)
                );
            }
            let client = client.clone();
            async move {
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                let pong: String = redis::cmd("PING").query_async(&mut conn).await.ok()?;
                (pong == "PONG").then_some(())
            }
        })
        .await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = child.try_wait();
        }
    }
}

/// Spawns a redis-server `command` (of `binary`) with stdout and stderr appended to `log`, killed
/// when dropped; a missing binary panics with how to install it.
pub(crate) fn spawn_logged(command: &mut Command, binary: &Path, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("cloning the redis.log handle"))
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "spawning {}: {e}; install redis-server (scripts/ensure-deps.sh) or set {REDIS_SERVER_ENV}",
                binary.display()
            )
        })
}
