//! [`RedisConn`]: the process's one Redis handle, over the topology `redis.mode` names, and
//! [`connect`], which builds it, checks the server(s) and logs what it found.
//!
//! Every store module talks to Redis through `redis::aio::ConnectionLike`, so the topology is
//! invisible above this file: standalone is a `ConnectionManager` (reconnects by itself), cluster
//! is redis-rs's cluster client (follows MOVED/ASK and failovers by itself) behind a splitter of
//! cross-slot pipelines ([`super::cluster`]), sentinel is the current master, looked up again after
//! a failover ([`super::sentinel`]).
//! Invariant: a command that fails is reported to the caller and never retried here beyond what
//! the underlying client does; callers leave their message in JetStream and retry later.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::sentinel::SentinelConn;
use super::{Doing, StoreError, checks, cluster};
use crate::config::{RedisConfig, RedisMode};

/// The process's Redis connection: cheap to clone, shared by every task, reconnecting by itself.
#[derive(Clone)]
pub enum RedisConn {
    /// One server.
    Standalone(ConnectionManager),
    /// A Redis Cluster; non-atomic pipelines are split by hash slot.
    Cluster(ClusterConnection),
    /// The master of a Sentinel-monitored set, followed across failovers.
    Sentinel(SentinelConn),
}

impl RedisConn {
    /// The topology this connection talks to.
    pub fn mode(&self) -> RedisMode {
        match self {
            RedisConn::Standalone(_) => RedisMode::Standalone,
            RedisConn::Cluster(_) => RedisMode::Cluster,
            RedisConn::Sentinel(_) => RedisMode::Sentinel,
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Standalone(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
            RedisConn::Sentinel(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => cluster::req_split_pipeline(conn, pipeline, offset, count),
            RedisConn::Sentinel(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Standalone(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
            RedisConn::Sentinel(conn) => conn.get_db(),
        }
    }
}

/// TCP_NODELAY (redis-rs leaves Nagle on): a small pipelined request must not wait for the ACK
/// of the one before it.
pub(super) fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

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
