//! The data path: consume events -> [`fanout`] -> deliveries -> [`deliver`] (one signed
//! [`http_post`]) -> ack, or [`retry`] (a JetStream message schedule), or [`dlq`]. Before
//! first use of a subscription that asks for it, [`handshake`] makes the CloudEvents validation
//! request (run by the operations layer, not by a consumer).
//!
//! Invariant shared by every step: a message is acked only after whatever replaces it (the
//! fanned-out deliveries, the scheduled retry, the DLQ entry) has been acknowledged by
//! JetStream, or — for a first attempt the fan-out makes itself — after the endpoint's 2xx is
//! recorded in the inbox. A crash at any instant therefore leaves the message or its
//! replacement stored, and a repeated step finds what the first run concluded (the inbox, the
//! duplicate window of `Nats-Msg-Id`).

pub mod deliver;
pub mod dlq;
pub mod fanout;
pub mod fifo;
pub mod handshake;
pub mod headers;
pub mod http_post;
pub mod retry;
pub mod test_event;
pub mod worker;

/// A boxed error of a backing service, kept as the source of a [`Transient`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The message stays in JetStream and is tried again later: after a NATS or Redis failure
/// (which says nothing about the message; retried after a short delay), or deliberately, when a
/// FIFO subscription's head must wait (`Hold`).
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    /// A backing service failed.
    #[error(transparent)]
    Backend(#[from] Backend),
    /// A deliberate wait (FIFO head) rather than a failure: offer the message again after
    /// `delay`.
    #[error("{why}")]
    Hold { delay: std::time::Duration, why: String },
}

/// The backing service behind a transient failure, with its error.
#[derive(Debug, thiserror::Error)]
pub enum Backend {
    #[error(transparent)]
    Redis(BoxError),
    #[error(transparent)]
    Nats(BoxError),
}

impl Backend {
    /// The `backend` label of `hookline_transient_errors_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Redis(_) => "redis",
            Backend::Nats(_) => "nats",
        }
    }
}

/// An error with what was being done when it happened.
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct Doing {
    doing: String,
    source: BoxError,
}

impl Transient {
    /// A Redis failure (subscriptions, health, inbox, FIFO counters).
    pub fn redis(source: impl Into<BoxError>) -> Transient {
        Transient::Backend(Backend::Redis(source.into()))
    }

    /// A NATS failure while `doing` something (a publish, or the wait for its ack).
    pub fn nats(doing: impl std::fmt::Display, source: impl Into<BoxError>) -> Transient {
        let source = Box::new(Doing { doing: doing.to_string(), source: source.into() });
        Transient::Backend(Backend::Nats(source))
    }

    /// Keep the message and offer it again after `delay` (not an error).
    pub fn hold(delay: std::time::Duration, why: impl std::fmt::Display) -> Transient {
        Transient::Hold { delay, why: why.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_labelled_by_their_backend_and_keep_their_source() {
        let redis = redis::RedisError::from((redis::ErrorKind::Io, "connection refused"));
        let failure = Transient::redis(redis);
        let Transient::Backend(backend @ Backend::Redis(source)) = &failure else {
            panic!("{failure:?} is not a redis failure")
        };
        assert_eq!(backend.label(), "redis");
        assert!(source.downcast_ref::<redis::RedisError>().is_some(), "{source:?}");
        assert!(failure.to_string().contains("connection refused"), "{failure}");

        // The label comes from the variant, not the text: a NATS error naming redis is NATS.
        let nats = std::io::Error::other("no responders");
        let failure = Transient::nats("publishing delivery for sub_redis_cache", nats);
        let Transient::Backend(backend) = &failure else { panic!("{failure:?} is not a failure") };
        assert_eq!(backend.label(), "nats");
        assert_eq!(failure.to_string(), "publishing delivery for sub_redis_cache: no responders");

        let held = Transient::hold(std::time::Duration::from_secs(1), "fifo head waiting");
        assert!(matches!(held, Transient::Hold { .. }), "{held}");
    }
}
