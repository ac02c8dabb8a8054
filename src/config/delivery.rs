//! `[delivery]`: limits and behaviour of fan-out and HTTP delivery.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

/// `[delivery]`: limits and behaviour of fan-out and HTTP delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Largest accepted event, bytes.
    pub max_payload_bytes: usize,
    /// Per-request HTTP timeout.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Deliveries in flight per process.
    pub concurrency: usize,
    /// Events fanned out at once per process.
    pub fanout_concurrency: usize,
    /// Redelivery delay of unacked messages (crash recovery).
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// How long a 2xx is remembered by the inbox dedupe.
    #[serde(with = "humantime_serde")]
    pub dedupe_ttl: Duration,
    /// Response body bytes kept.
    pub response_body_limit: usize,
    /// User-Agent header.
    pub user_agent: String,
    /// `WebHook-Request-Origin` of the CloudEvents validation handshake and of every delivery
    /// to a subscription with `validation: cloudevents`: a DNS name identifying this sender.
    pub webhook_origin: String,
    /// How long the validation handshake waits for the endpoint's answer.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// CloudEvents `source` of events that were not published as CloudEvents.
    pub cloudevents_source: String,
    /// The fan-out makes the first attempt of a delivery itself when the endpoint can take it
    /// now, instead of publishing a delivery message for the deliverer.
    pub first_attempt_in_fanout: bool,
    /// How long the fan-out waits for such a first attempt before it hands the delivery over to
    /// the deliverer (a delivery message) and goes on.
    #[serde(with = "humantime_serde")]
    pub first_attempt_deadline: Duration,
}

impl DeliveryConfig {
    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.cloudevents_source.is_empty() {
            return Err(invalid("delivery.cloudevents_source", "must not be empty"));
        }
        if self.concurrency == 0 {
            return Err(invalid("delivery.concurrency", "must be at least 1"));
        }
        if self.fanout_concurrency == 0 {
            return Err(invalid("delivery.fanout_concurrency", "must be at least 1"));
        }
        if self.max_payload_bytes < 64 || self.max_payload_bytes > 1024 * 1024 {
            return Err(invalid("delivery.max_payload_bytes", "must be between 64 and 1048576"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("delivery.request_timeout", "must be greater than zero"));
        }
        if !is_dns_name(&self.webhook_origin) {
            return Err(invalid(
                "delivery.webhook_origin",
                "must be a DNS name such as \"hooks.example.com\" (letters, digits, '-' and '.', at most 253 characters)",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(invalid("delivery.handshake_timeout", "must be greater than zero"));
        }
        if self.first_attempt_deadline.is_zero()
            || self.first_attempt_deadline + Duration::from_secs(1) > self.ack_wait
        {
            return Err(invalid(
                "delivery.first_attempt_deadline",
                "must be greater than zero and at least 1s below delivery.ack_wait",
            ));
        }
        if self.ack_wait < self.request_timeout + Duration::from_secs(1) {
            return Err(invalid(
                "delivery.ack_wait",
                "must exceed delivery.request_timeout by at least 1s",
            ));
        }
        Ok(())
    }
}

/// A DNS name: dot-separated labels of 1-63 letters, digits and inner hyphens, 253 at most.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn webhook_origins_are_dns_names() {
        for good in ["hookline", "hooks.example.com", "a-b.c1"] {
            assert!(super::is_dns_name(good), "{good}");
        }
        for bad in ["", "*", "a..b", "-a.b", "a b", "http://x", ".x", &"a".repeat(64)] {
            assert!(!super::is_dns_name(bad), "{bad}");
        }
    }
}
