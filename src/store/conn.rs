//! [`RedisConn`]: the process's one Redis handle, over the topology `redis.mode` names (built by
//! [`super::connect`]).
//!
//! Every store module talks to Redis through `redis::aio::ConnectionLike`, so the topology is
//! invisible above this file: standalone is a `ConnectionManager` (reconnects by itself), cluster
//! is redis-rs's cluster client (follows MOVED/ASK and failovers by itself) behind a splitter of
//! cross-slot pipelines ([`super::cluster`]), sentinel is the current master, looked up again after
//! a failover ([`super::sentinel`]).
//! Invariant: a command that fails is reported to the caller and never retried here beyond what
//! the underlying client does; callers leave their message in JetStream and retry later.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::cluster;
use super::sentinel::SentinelConn;
use crate::config::RedisMode;

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
