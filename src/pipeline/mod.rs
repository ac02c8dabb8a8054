//! The data path: consume events -> [`fanout`] -> deliveries -> [`deliver`] (one HTTP
//! [`attempt`]) -> ack, or [`retry`] (a JetStream message schedule), or [`dlq`].
//!
//! Invariant shared by every step: a message is acked only after whatever replaces it (the
//! fanned-out deliveries, the scheduled retry, the DLQ entry) has been acknowledged by
//! JetStream. A crash at any instant therefore leaves the message or its replacement stored.

pub mod attempt;
pub mod deliver;
pub mod dlq;
pub mod fanout;
pub mod headers;
pub mod retry;
pub mod worker;

/// A failure of NATS or Redis that says nothing about the message: it stays in JetStream and is
/// tried again after a short delay.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

impl Transient {
    pub fn new(what: impl std::fmt::Display) -> Transient {
        Transient(what.to_string())
    }
}
