//! A real `nats-server` with JetStream, spawned per test on a free port with a temp store dir.
//!
//! Owns the NATS side of the harness: finding the binary (env `HOOKLINE_TEST_NATS_SERVER`, else
//! the pinned `.deps/nats-server-2.15.1` that `scripts/ensure-deps.sh` installs — never Debian's
//! 2.9), spawning it, waiting until it accepts clients, killing and restarting it on the same
//! port and store so tests can check what survives a broker crash.
//! Invariants: the child is SIGKILLed when the handle drops; the store outlives restarts and is
//! removed with the handle; server output goes to `nats.log` in the store dir.
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::{eventually, free_port, init, log_tail};

/// Env var naming the nats-server binary to test against (set per version by `scripts/test.sh`).
pub const NATS_SERVER_ENV: &str = "HOOKLINE_TEST_NATS_SERVER";
/// Version used when the env var is unset.
pub const DEFAULT_NATS_VERSION: &str = "2.15.1";
/// How long a starting server may take to accept a client.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running (or killed, awaiting restart) nats-server process.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

/// A nats-server version as reported by `--version`; compares numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NatsVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl NatsVersion {
    /// A version from its three parts, for comparisons in tests.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self { major, minor, patch }
    }

    /// Parses `nats-server: v2.15.1` (or a bare `2.15.1`); pre-release suffixes are ignored.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let word = text
            .split_whitespace()
            .last()
            .with_context(|| format!("empty nats-server version output {text:?}"))?;
        let word = word.trim_start_matches('v');
        let core = word.split(['-', '+']).next().unwrap_or(word);
        let mut parts = core.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) => {
                Ok(Self::new(major, minor, patch))
            }
            _ => bail!("cannot parse nats-server version from {text:?}"),
        }
    }
}

impl fmt::Display for NatsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The nats-server binary the tests use; panics with an install hint when there is none.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{NATS_SERVER_ENV}={} does not exist; run scripts/ensure-deps.sh or fix the variable",
            path.display()
        );
        return path;
    }
    let pinned = crate::workspace_root()
        .join(".deps")
        .join(format!("nats-server-{DEFAULT_NATS_VERSION}"))
        .join("bin")
        .join("nats-server");
    assert!(
        pinned.is_file(),
        "no nats-server for the tests: {} is missing and {NATS_SERVER_ENV} is unset; \
         run scripts/ensure-deps.sh (Debian's /usr/sbin/nats-server is too old)",
        pinned.display()
    );
    pinned
}

impl NatsServer {
    /// Spawns nats-server with JetStream on a free port and waits until a client can connect.
    pub async fn start() -> NatsServer {
        Self::start_binary(nats_server_binary()).await
    }

    /// [`start`](Self::start) with this nats-server binary (>= 2.12) instead of the tests' one.
    pub async fn start_binary(binary: PathBuf) -> NatsServer {
        init();
        assert!(
            binary.is_file(),
            "{} is missing: run scripts/ensure-deps.sh or name another nats-server",
            binary.display()
        );
        let store = tempfile::Builder::new()
            .prefix("hookline-nats-")
            .tempdir()
            .expect("creating a temp dir for the nats-server store");
        let mut server = NatsServer { binary, port: free_port(), store, child: None };
        server.spawn_and_wait().await;
        server
    }

    /// `nats://127.0.0.1:<port>`; stable across [`restart`](Self::restart).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (`-sd`), which survives restarts.
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// A new client connected to this server.
    pub async fn client(&self) -> async_nats::Client {
        let url = self.url();
        async_nats::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to nats-server at {url}: {e}"))
    }

    /// A JetStream context on a new client.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client().await)
    }

    /// SIGKILLs the server (no graceful shutdown) and reaps it; a no-op if already killed.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            child.wait().await.unwrap_or_else(|e| {
                panic!("waiting for killed nats-server on port {}: {e}", self.port)
            });
        }
    }

    /// Kills the server if running, then starts it again on the same port and store dir.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn_and_wait().await;
    }

    /// The version reported by the binary's `--version`.
    pub async fn version(&self) -> NatsVersion {
        version_of(&self.binary).await.unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The binary this server runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The process id, while the server runs (for resource accounting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// An error with the log's tail if the server has exited by itself (a kill is no exit).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
            bail!(
                "nats-server at {} exited with {status}; log:\n{}",
                self.url(),
                log_tail(&self.log_path(), 3000)
            );
        }
        Ok(())
    }

    /// Leaves the store dir and `nats.log` on disk when the handle drops; returns the dir.
    pub fn keep_files(&mut self) -> &Path {
        self.store.disable_cleanup(true);
        self.store.path()
    }

    fn log_path(&self) -> PathBuf {
        self.store.path().join("nats.log")
    }

    async fn spawn_and_wait(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening nats.log in the store dir");
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the nats.log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.binary.display()));
        self.child = Some(child);

        let url = self.url();
        let log_path = self.log_path();
        let what = format!("nats-server at {url} to accept clients");
        let child = &mut self.child;
        eventually(READY_TIMEOUT, &what, || {
            if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                panic!(
                    "nats-server at {url} exited during startup with {status}; log:\n{}",
                    log_tail(&log_path, 4000)
                );
            }
            let url = url.clone();
            async move {
                let addr = url.trim_start_matches("nats://").to_owned();
                tokio::net::TcpStream::connect(&addr).await.ok()?;
                async_nats::connect(&url).await.ok().map(|_client| ())
            }
        })
        .await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = child.try_wait();
        }
    }
}

/// Runs `<binary> --version` and parses its output.
pub async fn version_of(binary: &Path) -> anyhow::Result<NatsVersion> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("running {} --version", binary.display()))?;
    if !output.status.success() {
        bail!("{} --version exited with {}", binary.display(), output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    NatsVersion::parse(text.trim())
        .with_context(|| format!("reading the version of {}", binary.display()))
}
