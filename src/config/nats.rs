//! `[nats]`: where and how to connect to NATS (used by [`crate::topology::connect`]).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Redacted, invalid};

/// `[nats]`: where and how to connect to NATS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// Path of a `.creds` file; empty when unused.
    pub credentials_file: String,
    /// Auth token; empty when unused.
    pub token: Redacted,
    /// User name; empty when unused.
    pub user: String,
    /// Password; empty when unused.
    pub password: Redacted,
    /// Connection name shown by the server.
    pub connection_name: String,
    /// Timeout of JetStream API requests and publish acks.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl NatsConfig {
    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return Err(invalid("nats.url", "must not be empty"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("nats.request_timeout", "must be greater than zero"));
        }
        Ok(())
    }
}
