//! `[redis]`: where and how to connect to Redis (used by [`crate::store::connect`]). The URL
//! may carry a password, so `Debug` prints it redacted.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid, redacted_url};

/// `[redis]`: where and how to connect to Redis.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Redis URL (may carry a password, so it is redacted in `Debug`).
    pub url: String,
    /// Timeout of one command.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Timeout of establishing a connection.
    #[serde(with = "humantime_serde")]
    pub connection_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = redacted_url(&self.url);
        f.debug_struct("RedisConfig")
            .field("url", &url)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if url::Url::parse(&self.url).is_err() {
            return Err(invalid("redis.url", format!("{:?} is not a URL", self.url)));
        }
        if self.response_timeout.is_zero() {
            return Err(invalid("redis.response_timeout", "must be greater than zero"));
        }
        Ok(())
    }
}
