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

/// Longest delay before one attempt (a due time must stay far inside what a timestamp holds).
pub const MAX_DELAY: Duration = Duration::from_secs(30 * 86_400);

/// Most attempts a schedule may list.
pub const MAX_ATTEMPTS: usize = 100;

/// Parses a retry schedule (`["0s", "5s", "5m"]`): one delay per attempt, 1 to
/// [`MAX_ATTEMPTS`] of them, each at most [`MAX_DELAY`]; the error says what is wrong (the caller names the key). Shared by
/// `retry.schedule` and a subscription's `retry_schedule`.
pub fn parse_schedule(texts: &[String]) -> Result<Vec<Duration>, String> {
    if texts.is_empty() {
        return Err("must list at least one delay (the first attempt)".into());
    }
    if texts.len() > MAX_ATTEMPTS {
        return Err(format!("must not list more than {MAX_ATTEMPTS} attempts"));
    }
    texts
        .iter()
        .map(|s| {
            let d = humantime::parse_duration(s)
                .map_err(|e| format!("{s:?} is not a duration: {e}"))?;
            if d > MAX_DELAY {
                return Err(format!("{s:?} is longer than 30 days"));
            }
            Ok(d)
        })
        .collect()
}

pub(super) fn validate_retry(raw: RawRetry) -> Result<RetryConfig, ConfigError> {
    let schedule = parse_schedule(&raw.schedule).map_err(|e| invalid("retry.schedule", e))?;
    if !(0.0..1.0).contains(&raw.jitter) {
        return Err(invalid("retry.jitter", format!("{} must be in [0, 1)", raw.jitter)));
    }
    Ok(RetryConfig { schedule, jitter: raw.jitter, max_retry_after: raw.max_retry_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_one_to_a_hundred_delays_of_at_most_thirty_days() {
        let texts = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_schedule(&texts(&["0s", "1m", "30days"])).unwrap(),
            [0, 60, 30 * 86_400].map(Duration::from_secs)
        );
        assert!(parse_schedule(&texts(&[])).is_err());
        assert!(parse_schedule(&texts(&["31days"])).unwrap_err().contains("30 days"));
        assert!(parse_schedule(&texts(&["soon"])).unwrap_err().contains("\"soon\""));
        assert!(parse_schedule(&vec!["1s".to_string(); 101]).is_err());
    }
}
