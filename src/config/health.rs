//! `[health]`: auto-disable, circuit breaker, backpressure bound, per-endpoint limits.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[health]`: auto-disable, circuit breaker, backpressure bound, per-endpoint limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Consecutive failures that deactivate a subscription (0: never).
    pub disable_after_failures: u64,
    /// Window of those failures.
    #[serde(with = "humantime_serde")]
    pub disable_window: Duration,
    /// Consecutive failures that open an endpoint's breaker (0: never).
    pub breaker_failure_threshold: u64,
    /// How long an open breaker defers before one probe (the first time).
    #[serde(with = "humantime_serde")]
    pub breaker_open_for: Duration,
    /// Longest an open breaker defers: each re-opening without a success in between doubles
    /// `breaker_open_for` up to this.
    #[serde(with = "humantime_serde")]
    pub breaker_max_open_for: Duration,
    /// Oldest a delivery may get through deferrals.
    #[serde(with = "humantime_serde")]
    pub max_delivery_age: Duration,
    /// Default in-flight requests per endpoint.
    pub max_in_flight_per_endpoint: u32,
    /// Default requests per second per endpoint (0: unlimited).
    pub max_rps_per_endpoint: u32,
}

impl HealthConfig {
    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_in_flight_per_endpoint == 0 {
            return Err(invalid("health.max_in_flight_per_endpoint", "must be at least 1"));
        }
        if self.breaker_open_for.is_zero() {
            return Err(invalid("health.breaker_open_for", "must be greater than zero"));
        }
        if self.breaker_max_open_for < self.breaker_open_for {
            return Err(invalid(
                "health.breaker_max_open_for",
                "must be at least health.breaker_open_for",
            ));
        }
        Ok(())
    }
}
