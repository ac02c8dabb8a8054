//! `[retry]`: the attempt schedule, read as text and validated into durations (a non-empty
//! schedule, jitter in `[0, 1)`).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[retry]`: the attempt schedule.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Delay before each attempt; `schedule.len()` is the attempt budget.
    pub schedule: Vec<Duration>,
    /// Jitter fraction in `[0, 1)`.
    pub jitter: f64,
    /// Cap on an honoured Retry-After.
    pub max_retry_after: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    schedule: Vec<String>,
    jitter: f64,
    #[serde(with = "humantime_serde")]
    max_retry_after: Duration,
}

pub(super) fn validate_retry(raw: RawRetry) -> Result<RetryConfig, ConfigError> {
    if raw.schedule.is_empty() {
        return Err(invalid("retry.schedule", "must list at least one delay (the first attempt)"));
    }
    if raw.schedule.len() > 100 {
        return Err(invalid("retry.schedule", "must not list more than 100 attempts"));
    }
    let schedule = raw
        .schedule
        .iter()
        .map(|s| {
            humantime::parse_duration(s)
                .map_err(|e| invalid("retry.schedule", format!("{s:?} is not a duration: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.0..1.0).contains(&raw.jitter) {
        return Err(invalid("retry.jitter", format!("{} must be in [0, 1)", raw.jitter)));
    }
    Ok(RetryConfig { schedule, jitter: raw.jitter, max_retry_after: raw.max_retry_after })
}
