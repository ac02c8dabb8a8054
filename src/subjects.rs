//! Every stream, subject, consumer and Redis key name, built by functions from the prefix.
//!
//! Nothing else in the crate formats a subject by hand, so the layout documented in the README
//! (`<p>.events.<type>`, `<p>.deliver.<sub>`, `<p>.retry.<sub>.<event>.<attempt>`, `<p>.dlq.<sub>`)
//! lives in exactly one place.
//!
//! Partitioned delivery (`streams.partitions = N > 1`, see `docs/scaling.md`): a subscription's
//! deliveries, retries and FIFO messages live in partition `k =` [`partition`]`(sub, N)`, on
//! subjects that carry `k` as the token after the kind (`<p>.deliver.<k>.<sub>`,
//! `<p>.retry.<k>.<sub>.<event>.<attempt>`, `<p>.fifo.<k>.<sub>`), captured by the stream
//! `<P>_DELIVERIES_<k>` and consumed by `<p>_deliver_<k>`. With N = 1 every name is exactly the
//! unpartitioned one. Invariant: all of one subscription's work is in one stream, so a retry
//! schedule targets a subject of its own stream and FIFO order is the order of one stream.

/// The subject used for dead-lettered events that never reached a subscription (bad JSON, ...).
pub const INVALID_EVENTS_TOKEN: &str = "_invalid";

/// The partition of `token` among `partitions`: FNV-1a (32-bit) of the token's bytes modulo
/// the count, which is what nats-server's subject-mapping function `{{partition(N,i)}}`
/// computes for one wildcard token (`server/subject_transform.go`), so a server mapping
/// `<p>.deliver.*` -> `<p>.deliver.{{partition(N,1)}}.{{wildcard(1)}}` agrees with hookline.
pub fn partition(token: &str, partitions: u32) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let hash = token.bytes().fold(OFFSET_BASIS, |h, b| (h ^ u32::from(b)).wrapping_mul(PRIME));
    hash % partitions.max(1)
}

/// Names derived from the configured prefix (and partition count).
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
    stream_prefix: String,
    partitions: u32,
}

impl Names {
    /// `prefix` must already be validated (letters, digits, '_' and '-'); one partition.
    pub fn new(prefix: &str) -> Names {
        let stream_prefix = prefix.to_ascii_uppercase().replace('-', "_");
        Names { prefix: prefix.to_string(), stream_prefix, partitions: 1 }
    }

    /// The same names with `partitions` delivery partitions (validated: 1 or more).
    pub fn with_partitions(mut self, partitions: u32) -> Names {
        self.partitions = partitions.max(1);
        self
    }

    /// The configured prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How many delivery partitions there are (`streams.partitions`).
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Whether the deliveries are partitioned (N > 1: names carry the partition).
    pub fn partitioned(&self) -> bool {
        self.partitions > 1
    }

    /// The partition holding every delivery, retry and FIFO message of a subscription.
    pub fn partition_of(&self, subscription_id: &str) -> u32 {
        partition(subscription_id, self.partitions)
    }

    /// `<p>.<kind>.` and, when partitioned, the partition `k` and a dot.
    fn kind_at(&self, kind: &str, k: u32) -> String {
        if self.partitioned() {
            format!("{}.{kind}.{k}.", self.prefix)
        } else {
            format!("{}.{kind}.", self.prefix)
        }
    }

    /// `<p>.<kind>.[<k>.]<subscription_id>` in the subscription's partition.
    fn of_subscription(&self, kind: &str, subscription_id: &str) -> String {
        let mut s = self.kind_at(kind, self.partition_of(subscription_id));
        s.push_str(subscription_id);
        s
    }

    /// `<P>_EVENTS`: the event log.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_prefix)
    }

    /// `<P>_DELIVERIES`: due deliveries and scheduled retries (work queue); partitioned, this is
    /// partition 0's stream (use [`Names::deliveries_streams`] for all of them).
    pub fn deliveries_stream(&self) -> String {
        self.deliveries_stream_at(0)
    }

    /// `<P>_DELIVERIES` (one partition) or `<P>_DELIVERIES_<k>`: partition `k`'s deliveries.
    pub fn deliveries_stream_at(&self, k: u32) -> String {
        if self.partitioned() {
            format!("{}_DELIVERIES_{k}", self.stream_prefix)
        } else {
            format!("{}_DELIVERIES", self.stream_prefix)
        }
    }

    /// Every deliveries stream, partition 0 first.
    pub fn deliveries_streams(&self) -> Vec<String> {
        (0..self.partitions).map(|k| self.deliveries_stream_at(k)).collect()
    }

    /// The deliveries stream holding a subscription's work.
    pub fn deliveries_stream_of(&self, subscription_id: &str) -> String {
        self.deliveries_stream_at(self.partition_of(subscription_id))
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

    /// `<p>.deliver.>`: every partition's due deliveries.
    pub fn deliver_wildcard(&self) -> String {
        format!("{}.deliver.>", self.prefix)
    }

    /// `<p>.deliver.>` (one partition) or `<p>.deliver.<k>.>`: partition `k`'s due deliveries.
    pub fn deliver_wildcard_at(&self, k: u32) -> String {
        format!("{}>", self.kind_at("deliver", k))
    }

    /// `<p>.deliver.<subscription_id>` (partitioned: `<p>.deliver.<k>.<subscription_id>`): due
    /// deliveries of one subscription.
    pub fn deliver(&self, subscription_id: &str) -> String {
        self.of_subscription("deliver", subscription_id)
    }

    /// The subscription of a due-delivery subject of partition `k`, if it is one.
    pub fn subscription_of_deliver_at<'a>(&self, subject: &'a str, k: u32) -> Option<&'a str> {
        let kind = self.kind_at("deliver", k);
        subject.strip_prefix(kind.as_str()).filter(|s| !s.is_empty())
    }

    /// `<p>.retry.>`: every partition's scheduled retries.
    pub fn retry_wildcard(&self) -> String {
        format!("{}.retry.>", self.prefix)
    }

    /// `<p>.retry.>` (one partition) or `<p>.retry.<k>.>`: partition `k`'s scheduled retries.
    pub fn retry_wildcard_at(&self, k: u32) -> String {
        format!("{}>", self.kind_at("retry", k))
    }

    /// `<p>.retry.<subscription_id>.>`: the pending retries of one subscription.
    pub fn retry_of_subscription(&self, subscription_id: &str) -> String {
        format!("{}.>", self.of_subscription("retry", subscription_id))
    }

    /// `<p>.retry.<subscription_id>.<event_id>.<attempt>`: one scheduled attempt (unique, since a
    /// second schedule on the same subject would replace the first).
    pub fn retry(&self, subscription_id: &str, event_id: &str, attempt: u32) -> String {
        format!("{}.{event_id}.{attempt}", self.of_subscription("retry", subscription_id))
    }

    /// `<p>.fifo.>`: every partition's FIFO deliveries.
    pub fn fifo_wildcard(&self) -> String {
        format!("{}.fifo.>", self.prefix)
    }

    /// `<p>.fifo.>` (one partition) or `<p>.fifo.<k>.>`: partition `k`'s FIFO deliveries.
    pub fn fifo_wildcard_at(&self, k: u32) -> String {
        format!("{}>", self.kind_at("fifo", k))
    }

    /// `<p>.fifo.<subscription_id>`: deliveries of a FIFO subscription, one at a time in order.
    pub fn fifo(&self, subscription_id: &str) -> String {
        self.of_subscription("fifo", subscription_id)
    }

    /// Whether `subject` is `<p>.<kind>.<subscription_id>` (partitioned:
    /// `<p>.<kind>.<k>.<subscription_id>` with `k` the subscription's partition).
    pub fn is_subject_of(&self, subject: &str, kind: &str, subscription_id: &str) -> bool {
        let rest = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|s| s.strip_prefix('.'))
            .and_then(|s| s.strip_prefix(kind))
            .and_then(|s| s.strip_prefix('.'));
        let rest = if self.partitioned() {
            rest.and_then(|s| s.split_once('.'))
                .filter(|(k, _)| k.parse::<u32>().ok() == Some(self.partition_of(subscription_id)))
                .map(|(_, sub)| sub)
        } else {
            rest
        };
        rest == Some(subscription_id)
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

    /// `<p>:attempts:<by>:<value>`: the attempt log's query index by subscription (`sub`),
    /// event, tenant or status: a sorted set of record positions (see
    /// [`crate::attempt_record::position`]).
    pub fn attempt_index(&self, by: &str, value: &str) -> String {
        self.key(&format!("attempts:{by}:{value}"))
    }

    /// `<p>.lifecycle.<kind>`: subscription lifecycle events (plain NATS).
    pub fn lifecycle(&self, kind: &str) -> String {
        format!("{}.lifecycle.{kind}", self.prefix)
    }

    /// Durable consumer of the fan-out role.
    pub fn fanout_consumer(&self) -> String {
        format!("{}_fanout", self.prefix)
    }

    /// Durable consumer of the delivery role (partitioned: partition 0's).
    pub fn deliver_consumer(&self) -> String {
        self.deliver_consumer_at(0)
    }

    /// `<p>_deliver` (one partition) or `<p>_deliver_<k>`: the delivery role's durable consumer
    /// on partition `k`'s stream.
    pub fn deliver_consumer_at(&self, k: u32) -> String {
        if self.partitioned() {
            format!("{}_deliver_{k}", self.prefix)
        } else {
            format!("{}_deliver", self.prefix)
        }
    }

    /// Redis key prefix `<p>:`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// `<p>:fifo_failures:<seq>` (partitioned: `<p>:fifo_failures:<k>:<seq>`): the failed
    /// attempts of the FIFO head at stream sequence `seq` of the subscription's deliveries
    /// stream (sequences repeat across partitions, so the partition is part of the key).
    pub fn fifo_failures_key(&self, subscription_id: &str, seq: u64) -> String {
        if self.partitioned() {
            let k = self.partition_of(subscription_id);
            self.key(&format!("fifo_failures:{k}:{seq}"))
        } else {
            self.key(&format!("fifo_failures:{seq}"))
        }
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

    #[test]
    fn partition_is_fnv1a_32_modulo_the_count() {
        // FNV-1a 32-bit reference vectors: "" -> 0x811c9dc5, "a" -> 0xe40c292c,
        // "foobar" -> 0xbf9cf968.
        assert_eq!(partition("", u32::MAX), 0x811c_9dc5);
        assert_eq!(partition("a", u32::MAX), 0xe40c_292c);
        assert_eq!(partition("foobar", u32::MAX), 0xbf9c_f968);
        assert_eq!(partition("foobar", 3), 0xbf9c_f968 % 3);
        assert_eq!(partition("anything", 1), 0);
        assert_eq!(partition("anything", 0), 0, "a zero count is read as one");
    }

    #[test]
    fn one_partition_keeps_the_unpartitioned_names() {
        let n = Names::new("webhooks").with_partitions(1);
        assert!(!n.partitioned());
        assert_eq!(n.deliveries_streams(), vec!["WEBHOOKS_DELIVERIES".to_string()]);
        assert_eq!(n.deliveries_stream_of("sub_1"), "WEBHOOKS_DELIVERIES");
        assert_eq!(n.deliver_consumer_at(0), "webhooks_deliver");
        assert_eq!(n.deliver_wildcard_at(0), "webhooks.deliver.>");
        assert_eq!(n.retry_wildcard_at(0), "webhooks.retry.>");
        assert_eq!(n.fifo_wildcard_at(0), "webhooks.fifo.>");
        assert_eq!(n.deliver("sub_1"), "webhooks.deliver.sub_1");
        assert_eq!(n.retry("sub_1", "e", 2), "webhooks.retry.sub_1.e.2");
        assert_eq!(n.retry_of_subscription("sub_1"), "webhooks.retry.sub_1.>");
        assert_eq!(n.fifo("sub_1"), "webhooks.fifo.sub_1");
        assert_eq!(n.subscription_of_deliver_at("webhooks.deliver.sub_1", 0), Some("sub_1"));
        assert_eq!(n.fifo_failures_key("sub_1", 7), "webhooks:fifo_failures:7");
    }

    #[test]
    fn partitioned_names_keep_a_subscription_in_one_partition() {
        let n = Names::new("webhooks").with_partitions(3);
        assert_eq!(
            n.deliveries_streams(),
            ["WEBHOOKS_DELIVERIES_0", "WEBHOOKS_DELIVERIES_1", "WEBHOOKS_DELIVERIES_2"]
        );
        assert_eq!(n.deliver_consumer_at(2), "webhooks_deliver_2");
        assert_eq!(n.deliver_wildcard_at(1), "webhooks.deliver.1.>");
        assert_eq!(n.retry_wildcard_at(1), "webhooks.retry.1.>");
        assert_eq!(n.fifo_wildcard_at(1), "webhooks.fifo.1.>");
        let mut seen = [false; 3];
        for i in 0..100 {
            let sub = format!("sub_{i}");
            let k = n.partition_of(&sub);
            seen[k as usize] = true;
            assert_eq!(k, partition(&sub, 3));
            assert_eq!(n.deliveries_stream_of(&sub), format!("WEBHOOKS_DELIVERIES_{k}"));
            assert_eq!(n.deliver(&sub), format!("webhooks.deliver.{k}.{sub}"));
            assert_eq!(n.retry(&sub, "e", 2), format!("webhooks.retry.{k}.{sub}.e.2"));
            assert_eq!(n.retry_of_subscription(&sub), format!("webhooks.retry.{k}.{sub}.>"));
            assert_eq!(n.fifo(&sub), format!("webhooks.fifo.{k}.{sub}"));
            assert!(n.is_subject_of(&n.deliver(&sub), "deliver", &sub));
            assert!(n.is_subject_of(&n.fifo(&sub), "fifo", &sub));
            assert!(!n.is_subject_of(&n.deliver(&sub), "fifo", &sub));
            let other = format!("webhooks.deliver.{}.{sub}", (k + 1) % 3);
            assert!(!n.is_subject_of(&other, "deliver", &sub), "another partition");
            assert!(!n.is_subject_of(&format!("webhooks.deliver.{sub}"), "deliver", &sub));
            assert_eq!(n.subscription_of_deliver_at(&n.deliver(&sub), k), Some(sub.as_str()));
            assert_eq!(n.fifo_failures_key(&sub, 7), format!("webhooks:fifo_failures:{k}:7"));
        }
        assert_eq!(seen, [true; 3], "100 subscriptions use every partition");
    }
}
