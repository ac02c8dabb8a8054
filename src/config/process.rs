//! How the process runs: `[runtime]` (Tokio worker threads), `[shutdown]` (grace period) and
//! `[log]` (format).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight work may take to finish after a signal.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
}

/// `[runtime]`: the process's Tokio runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads; 0: automatic (see [`RuntimeConfig::threads`]).
    pub worker_threads: usize,
}

impl RuntimeConfig {
    /// The worker threads to start: `worker_threads`, or when 0, one per CPU except on a
    /// machine of 2 CPUs or fewer, where one thread leaves the rest to nats-server and Redis and
    /// costs less CPU per delivery (each delivery's steps run in one task anyway; a second
    /// thread mostly adds wake-ups across threads: BENCHMARKS.md).
    pub fn threads(&self) -> usize {
        match self.worker_threads {
            0 => match std::thread::available_parallelism().map_or(1, |n| n.get()) {
                n if n <= 2 => 1,
                n => n,
            },
            n => n,
        }
    }

    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.worker_threads > 1024 {
            return Err(invalid("runtime.worker_threads", "must be at most 1024 (0: automatic)"));
        }
        Ok(())
    }
}
