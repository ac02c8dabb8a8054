//! Redis: subscriptions with their lookup indexes, endpoint health, the inbox dedupe, and the
//! event index of replay-by-id.
//!
//! One [`RedisConn`] is shared by the whole process, over one server, a Redis Cluster or the
//! master Sentinel names ([`conn`]); it reconnects by itself, so a Redis outage or failover shows
//! up as command errors (the caller leaves the message in JetStream and tries again later) and
//! never as a skipped delivery. Every multi-key script or transaction keeps its keys in one hash
//! slot (`Names::sub_key`), so the same code runs on all three topologies.

pub mod cache;
mod checks;
mod cluster;
mod conn;
mod connect;
pub mod event_index;
pub mod health;
pub mod inbox;
mod sentinel;
pub mod subscriptions;

pub use conn::RedisConn;
pub use connect::connect;

/// A Redis failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis error while {doing}: {source}")]
    Redis { doing: String, source: redis::RedisError },
    #[error("stored subscription {id} is corrupt: {why}")]
    Corrupt { id: String, why: String },
    /// A start-up check found Redis configured in a way hookline refuses; says how to fix it.
    #[error("redis at {node} is not safe for hookline: {problem}")]
    Refused { node: String, problem: String },
}

/// Adds what was being done to a Redis error.
pub(crate) trait Doing<T> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> Doing<T> for redis::RedisResult<T> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Redis { doing: doing(), source })
    }
}

/// TCP_NODELAY (redis-rs leaves Nagle on): a small pipelined request must not wait for the ACK
/// of the one before it.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}
