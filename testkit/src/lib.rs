//! The test kit (`hookline-testkit`): real servers, a scriptable webhook receiver, and the one
//! way to wait.
//!
//! The one implementation of what the integration tests (`tests/it`, which name this crate
//! `harness`), the chaos suite (`tests/chaos`) and the benchmark (`bench/`) need besides
//! hookline itself:
//! - [`nats::NatsServer`], [`cluster::Cluster`] (3 nodes), [`redis::RedisServer`],
//!   [`redis_cluster::RedisCluster`] (3 masters + 3 replicas) and
//!   [`redis_sentinel::RedisSentinel`] (master, replica, 3 sentinels) spawn the real binaries
//!   on free ports with temp dirs, poll until ready, and are killed on drop;
//! - [`receiver::Receiver`] is the far end of the data path (`deliver -> endpoint`): it records
//!   requests and answers with whatever statuses a test scripts;
//! - [`eventually`] / [`eventually_true`] are the only waiting primitives: a test never sleeps,
//!   it polls a condition under a deadline and fails with a message naming what it waited for;
//! - [`unique_prefix`] isolates tests that share a server (streams, subjects, Redis keys);
//! - [`fuzz_checks`] holds the properties the fuzz targets (`fuzz/`) check, which tests/it
//!   replays on every saved input.
//!
//! Invariant: every wait is deadline-bound, and every spawned process dies with its handle.

pub mod cluster;
pub mod fuzz_checks;
pub mod nats;
pub mod receiver;
pub mod redis;
pub mod redis_cluster;
mod redis_node;
pub mod redis_sentinel;

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Interval between two polls of an [`eventually`] condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Where the kit's process setup sends log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// Through the test harness's capture, `info` unless `RUST_LOG` says otherwise.
    TestCapture,
    /// To stderr, `warn` unless `RUST_LOG` says otherwise (a program such as the benchmark,
    /// whose stdout is its result).
    Stderr,
}

/// One-time process setup for tests: [`init_with`] [`Logs::TestCapture`]. Idempotent; the
/// server and receiver constructors call it, tests may too.
pub fn init() {
    init_with(Logs::TestCapture);
}

/// One-time process setup: the rustls crypto provider (reqwest is built with
/// `rustls-no-provider`) and a tracing subscriber writing to `logs`. The first call decides;
/// later ones do nothing.
pub fn init_with(logs: Logs) {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let default = if logs == Logs::TestCapture { "info" } else { "warn" };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        let _ = match logs {
            Logs::TestCapture => builder.with_test_writer().try_init(),
            Logs::Stderr => builder.with_writer(std::io::stderr).try_init(),
        };
    });
}

/// An HTTP client for tests (after [`init`], so the TLS provider is installed).
pub fn http_client() -> reqwest::Client {
    init();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the test http client")
}

/// Polls `f` every [`POLL_INTERVAL`] until it yields `Some`, and returns that value.
///
/// Panics naming `what` once `timeout` has passed; an attempt still running at the deadline is
/// abandoned, so a hanging condition cannot stretch the wait.
pub async fn eventually<F, Fut, T>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match tokio::time::timeout_at(deadline, f()).await {
            Ok(Some(value)) => return value,
            Ok(None) => {}
            Err(_elapsed) => break,
        }
        if tokio::time::Instant::now() + POLL_INTERVAL > deadline {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!(
        "timed out after {timeout:?} waiting for {what} ({attempts} attempts over {:?})",
        started.elapsed()
    );
}

/// [`eventually`] for a condition that is simply true or false.
pub async fn eventually_true<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(timeout, what, || {
        let fut = f();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("reading the address of a freshly bound listener").port()
}

/// A fresh prefix such as `tk3v9x0qa`: `t` then 8 random lowercase alphanumerics, safe in NATS
/// subjects, stream names and Redis keys. Unique within the process, random across processes.
pub fn unique_prefix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    let mut bits = hasher.finish();
    let mut prefix = String::from("t");
    for _ in 0..8 {
        prefix.push(ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char);
        bits /= ALPHABET.len() as u64;
    }
    prefix
}

/// The last `max_bytes` of a log file, for failure messages; a note if it cannot be read.
pub(crate) fn log_tail(path: &std::path::Path, max_bytes: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max_bytes);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// The workspace root (the `hookline` package), where `.deps/` and `fuzz/` live.
pub fn workspace_root() -> &'static std::path::Path {
    let kit = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    kit.parent().unwrap_or(kit)
}
