//! The data path: consume events -> [`fanout`] -> deliveries -> [`deliver`] (one signed
//! [`http_post`]) -> ack, or [`retry`] (a JetStream message schedule), or [`dlq`].
//!
//! Invariant shared by every step: a message is acked only after whatever replaces it (the
//! fanned-out deliveries, the scheduled retry, the DLQ entry) has been acknowledged by
//! JetStream. A crash at any instant therefore leaves the message or its replacement stored.

pub mod deliver;
pub mod dlq;
pub mod fanout;
pub mod fifo;
pub mod headers;
pub mod http_post;
pub mod limiter;
pub mod retry;
pub mod worker;

/// The message stays in JetStream and is tried again later: after a NATS or Redis failure
/// (which says nothing about the message; retried after a short delay), or deliberately, when a
/// FIFO subscription's head must wait (`hold`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Transient {
    pub message: String,
    /// A deliberate wait (FIFO head) rather than a failure.
    pub hold: Option<std::time::Duration>,
}

impl Transient {
    pub fn new(what: impl std::fmt::Display) -> Transient {
        Transient { message: what.to_string(), hold: None }
    }

    /// Keep the message and offer it again after `delay` (not an error).
    pub fn hold(delay: std::time::Duration, why: impl std::fmt::Display) -> Transient {
        Transient { message: why.to_string(), hold: Some(delay) }
    }
}
