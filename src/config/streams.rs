//! `[streams]`: the prefix of every name, and the JetStream streams' retention, replicas and
//! storage (used by [`crate::topology`]).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// Storage backend of the JetStream streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    File,
    Memory,
}

/// `[streams]`: names and retention of the JetStream streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// Prefix of subjects, streams, consumers and Redis keys.
    pub prefix: String,
    /// Retention of the events log.
    #[serde(with = "humantime_serde")]
    pub events_max_age: Duration,
    /// JetStream duplicate window (Nats-Msg-Id dedupe).
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Retention of the dead-letter stream.
    #[serde(with = "humantime_serde")]
    pub dlq_max_age: Duration,
    /// Retention of the attempt log, days.
    pub delivery_log_retention_days: u64,
    /// Stream replicas.
    pub replicas: usize,
    /// File or memory storage.
    pub storage: StorageKind,
    /// Delivery partitions: deliveries streams (and delivery consumers) the work is spread over,
    /// a subscription's work always in one of them (1 = the single `<P>_DELIVERIES`).
    pub partitions: u32,
}

/// Largest `streams.partitions`: each partition is a stream (a raft group when replicated) and
/// a consumer per process; past a few per nats-server core they only add overhead.
pub const MAX_PARTITIONS: u32 = 64;

impl StreamsConfig {
    /// Every stream, subject, consumer and key name for this section.
    pub fn names(&self) -> crate::subjects::Names {
        crate::subjects::Names::new(&self.prefix).with_partitions(self.partitions)
    }

    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !prefix_ok {
            return Err(invalid(
                "streams.prefix",
                format!("{prefix:?} must be 1-32 characters of letters, digits, '_' or '-'"),
            ));
        }
        if self.replicas == 0 || self.replicas > 5 {
            return Err(invalid("streams.replicas", "must be between 1 and 5"));
        }
        if self.duplicate_window.is_zero() {
            return Err(invalid("streams.duplicate_window", "must be greater than zero"));
        }
        if self.duplicate_window > self.events_max_age {
            return Err(invalid(
                "streams.duplicate_window",
                "must not exceed streams.events_max_age",
            ));
        }
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(invalid(
                "streams.partitions",
                format!("{} must be between 1 and {MAX_PARTITIONS}", self.partitions),
            ));
        }
        if self.delivery_log_retention_days == 0 {
            return Err(invalid("streams.delivery_log_retention_days", "must be at least 1"));
        }
        Ok(())
    }
}
