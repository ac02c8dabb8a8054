//! [`connect`]: builds the process's [`RedisConn`] for the topology `redis.mode` names, checks the
//! server(s) and logs what it found.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::conn::RedisConn;
use super::sentinel::SentinelConn;
use super::{Doing, StoreError, checks, cluster, tcp_settings};
use crate::config::{RedisConfig, RedisMode};

/// Connects to the configured topology, verifies it (PING, then the start-up checks of
/// [`checks`]: an evicting `maxmemory-policy` is refused, no persistence is a warning) and logs
/// the topology found.
pub async fn connect(config: &RedisConfig) -> Result<RedisConn, StoreError> {
    let mut conn = match config.mode {
        RedisMode::Standalone => RedisConn::Standalone(connect_standalone(config).await?),
        RedisMode::Cluster => RedisConn::Cluster(cluster::connect(config).await?),
        RedisMode::Sentinel => RedisConn::Sentinel(SentinelConn::connect(config).await?),
    };
    let doing = || format!("checking the {} redis at {}", config.mode, config.redacted_urls());
    let _: String = redis::cmd("PING").query_async(&mut conn).await.doing(doing)?;
    checks::check_and_log(&mut conn, config).await?;
    Ok(conn)
}

async fn connect_standalone(config: &RedisConfig) -> Result<ConnectionManager, StoreError> {
    let doing = || "connecting to redis".to_string();
    let info = redis::IntoConnectionInfo::into_connection_info(config.url.trim())
        .doing(doing)?
        .set_tcp_settings(tcp_settings());
    let client = redis::Client::open(info).doing(doing)?;
    let manager_config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(config.response_timeout))
        .set_connection_timeout(Some(config.connection_timeout))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_with_config(client, manager_config).await.doing(doing)
}
