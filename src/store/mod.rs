//! Redis: subscriptions with their lookup indexes, endpoint health, the inbox dedupe, and the
//! event index of replay-by-id.
//!
//! One [`redis::aio::ConnectionManager`] is shared by the whole process; it reconnects by itself,
//! so a Redis outage shows up as command errors (the caller leaves the message in JetStream and
//! tries again later) and never as a skipped delivery.

pub mod cache;
pub mod event_index;
pub mod health;
pub mod inbox;
pub mod subscriptions;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RedisConfig;

/// The process's Redis connection: cheap to clone, shared by every task, reconnecting by itself.
pub type RedisConn = ConnectionManager;

/// A Redis failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis error while {doing}: {source}")]
    Redis { doing: String, source: redis::RedisError },
    #[error("stored subscription {id} is corrupt: {why}")]
    Corrupt { id: String, why: String },
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

/// Connects (and verifies the connection with a PING).
pub async fn connect(config: &RedisConfig) -> Result<RedisConn, StoreError> {
    let doing = || "connecting to redis".to_string();
    // TCP_NODELAY (redis-rs leaves Nagle on): a small pipelined request must not wait for the
    // ACK of the one before it.
    let info = redis::IntoConnectionInfo::into_connection_info(config.url.as_str())
        .doing(doing)?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info).doing(doing)?;
    let manager_config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(config.response_timeout))
        .set_connection_timeout(Some(config.connection_timeout))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    let mut conn = ConnectionManager::new_with_config(client, manager_config).await.doing(doing)?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await.doing(doing)?;
    Ok(conn)
}
