//! Every stream, subject, consumer and Redis key name, built by functions from the prefix.
//!
//! Nothing else in the crate formats a subject by hand, so the layout documented in the README
//! (`<p>.events.<type>`, `<p>.deliver.<sub>`, `<p>.retry.<sub>.<event>.<attempt>`, `<p>.dlq.<sub>`)
//! lives in exactly one place.

/// The subject used for dead-lettered events that never reached a subscription (bad JSON, ...).
pub const INVALID_EVENTS_TOKEN: &str = "_invalid";

/// Names derived from the configured prefix.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
    stream_prefix: String,
}

impl Names {
    /// `prefix` must already be validated (letters, digits, '_' and '-').
    pub fn new(prefix: &str) -> Names {
        let stream_prefix = prefix.to_ascii_uppercase().replace('-', "_");
        Names { prefix: prefix.to_string(), stream_prefix }
    }

    /// The configured prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<P>_EVENTS`: the event log.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_prefix)
    }

    /// `<P>_DELIVERIES`: due deliveries and scheduled retries (work queue).
    pub fn deliveries_stream(&self) -> String {
        format!("{}_DELIVERIES", self.stream_prefix)
    }

    /// `<P>_DLQ`: dead letters.
    pub fn dlq_stream(&self) -> String {
        format!("{}_DLQ", self.stream_prefix)
    }

    /// `<p>.events.>`: everything published by applications.
    pub fn events_wildcard(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// `<p>.events.<event_type>`.
    pub fn event(&self, event_type: &str) -> String {
        format!("{}.events.{event_type}", self.prefix)
    }

    /// The event type carried by an events subject, if it is one.
    pub fn event_type_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".events.")
            .filter(|t| !t.is_empty())
    }

    /// `<p>.deliver.>`.
    pub fn deliver_wildcard(&self) -> String {
        format!("{}.deliver.>", self.prefix)
    }

    /// `<p>.deliver.<subscription_id>`: due deliveries of one subscription.
    pub fn deliver(&self, subscription_id: &str) -> String {
        format!("{}.deliver.{subscription_id}", self.prefix)
    }

    /// `<p>.retry.>`.
    pub fn retry_wildcard(&self) -> String {
        format!("{}.retry.>", self.prefix)
    }

    /// `<p>.retry.<subscription_id>.>`: the pending retries of one subscription.
    pub fn retry_of_subscription(&self, subscription_id: &str) -> String {
        format!("{}.retry.{subscription_id}.>", self.prefix)
    }

    /// `<p>.retry.<subscription_id>.<event_id>.<attempt>`: one scheduled attempt (unique, since a
    /// second schedule on the same subject would replace the first).
    pub fn retry(&self, subscription_id: &str, event_id: &str, attempt: u32) -> String {
        format!("{}.retry.{subscription_id}.{event_id}.{attempt}", self.prefix)
    }

    /// `<p>.fifo.>`.
    pub fn fifo_wildcard(&self) -> String {
        format!("{}.fifo.>", self.prefix)
    }

    /// `<p>.fifo.<subscription_id>`: deliveries of a FIFO subscription, one at a time in order.
    pub fn fifo(&self, subscription_id: &str) -> String {
        format!("{}.fifo.{subscription_id}", self.prefix)
    }

    /// Whether `subject` is `<p>.<kind>.<subscription_id>` (without building it).
    pub fn is_subject_of(&self, subject: &str, kind: &str, subscription_id: &str) -> bool {
        subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|s| s.strip_prefix('.'))
            .and_then(|s| s.strip_prefix(kind))
            .and_then(|s| s.strip_prefix('.'))
            == Some(subscription_id)
    }

    /// The durable consumer of one FIFO subscription.
    pub fn fifo_consumer(&self, subscription_id: &str) -> String {
        format!("{}_fifo_{subscription_id}", self.prefix)
    }

    /// `<p>.dlq.>`.
    pub fn dlq_wildcard(&self) -> String {
        format!("{}.dlq.>", self.prefix)
    }

    /// `<p>.dlq.<subscription_id>` (or `<p>.dlq._invalid` for events that never fanned out).
    pub fn dlq(&self, subscription_id: &str) -> String {
        format!("{}.dlq.{subscription_id}", self.prefix)
    }

    /// The subscription token of a `<p>.dlq.<token>` subject.
    pub fn subscription_of_dlq<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(self.prefix.as_str())?.strip_prefix(".dlq.")
    }

    /// `<P>_SUBSCRIPTIONS`: the KV bucket holding every subscription (the source of truth).
    pub fn subscriptions_bucket(&self) -> String {
        format!("{}_SUBSCRIPTIONS", self.stream_prefix)
    }

    /// `<P>_ATTEMPTS`: the attempt log (and outcome events).
    pub fn attempts_stream(&self) -> String {
        format!("{}_ATTEMPTS", self.stream_prefix)
    }

    /// `<p>.attempts.>`.
    pub fn attempts_wildcard(&self) -> String {
        format!("{}.attempts.>", self.prefix)
    }

    /// `<p>.attempts.<subscription_id>`: attempt records of one subscription.
    pub fn attempts(&self, subscription_id: &str) -> String {
        format!("{}.attempts.{subscription_id}", self.prefix)
    }

    /// `<p>.lifecycle.<kind>`: subscription lifecycle events (plain NATS).
    pub fn lifecycle(&self, kind: &str) -> String {
        format!("{}.lifecycle.{kind}", self.prefix)
    }

    /// Durable consumer of the fan-out role.
    pub fn fanout_consumer(&self) -> String {
        format!("{}_fanout", self.prefix)
    }

    /// Durable consumer of the delivery role.
    pub fn deliver_consumer(&self) -> String {
        format!("{}_deliver", self.prefix)
    }

    /// Redis key prefix `<p>:`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// `<p>:{<subscription>}:<rest>`: a key of one subscription, hash-tagged so that all of a
    /// subscription's keys share one Redis Cluster slot (a script may touch several of them).
    pub fn sub_key(&self, subscription: &str, rest: &str) -> String {
        format!("{}:{{{subscription}}}:{rest}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_layout() {
        let n = Names::new("web-hooks");
        assert_eq!(n.events_stream(), "WEB_HOOKS_EVENTS");
        assert_eq!(n.deliveries_stream(), "WEB_HOOKS_DELIVERIES");
        assert_eq!(n.dlq_stream(), "WEB_HOOKS_DLQ");
        assert_eq!(n.event("order.created"), "web-hooks.events.order.created");
        assert_eq!(n.deliver("sub_1"), "web-hooks.deliver.sub_1");
        assert_eq!(n.retry("sub_1", "evt_9", 3), "web-hooks.retry.sub_1.evt_9.3");
        assert_eq!(n.dlq("sub_1"), "web-hooks.dlq.sub_1");
        assert_eq!(n.key("sub:sub_1"), "web-hooks:sub:sub_1");
        assert_eq!(n.attempts_stream(), "WEB_HOOKS_ATTEMPTS");
        assert_eq!(n.attempts("sub_1"), "web-hooks.attempts.sub_1");
        assert!(n.is_subject_of(&n.deliver("sub_1"), "deliver", "sub_1"));
        assert!(n.is_subject_of(&n.fifo("sub_1"), "fifo", "sub_1"));
        assert!(!n.is_subject_of(&n.deliver("sub_1"), "fifo", "sub_1"));
        assert!(!n.is_subject_of(&n.deliver("sub_12"), "deliver", "sub_1"));
        assert!(!n.is_subject_of("other.deliver.sub_1", "deliver", "sub_1"));
        assert_eq!(n.lifecycle("created"), "web-hooks.lifecycle.created");
    }

    #[test]
    fn event_type_is_read_back_from_the_subject() {
        let n = Names::new("webhooks");
        assert_eq!(n.event_type_of("webhooks.events.order.created"), Some("order.created"));
        assert_eq!(n.event_type_of("webhooks.events."), None);
        assert_eq!(n.event_type_of("other.events.x"), None);
        assert_eq!(n.subscription_of_dlq("webhooks.dlq.sub_1"), Some("sub_1"));
    }
}
