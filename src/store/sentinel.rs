//! Sentinel: a connection to the current master of `redis.sentinel_master`, found through the
//! sentinels of `redis.url`, that follows failovers by itself.
//!
//! A command runs on the master connection last found. When it fails in a way a failover causes
//! (the connection dropped or refused, a timeout, or `READONLY` because the old master came back
//! as a replica) the connection is forgotten and the error goes to the caller, which leaves its
//! message in JetStream and retries later; the next command asks the sentinels again and
//! connects to the master they name. So work pauses during a failover and nothing is skipped.
//! Invariants: one lookup at a time (a mutex), and an error only forgets the connection it
//! happened on (a generation number), never a newer one.
//! Credentials and db in the sentinels' URL are used for the master too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value,
};

use super::{Doing, StoreError, tcp_settings};
use crate::config::RedisConfig;

/// The current master of a Sentinel-monitored set; cheap to clone.
#[derive(Clone)]
pub struct SentinelConn {
    inner: Arc<Inner>,
}

struct Inner {
    sentinel: tokio::sync::Mutex<Sentinel>,
    master_name: String,
    node_info: SentinelNodeConnectionInfo,
    conn_config: AsyncConnectionConfig,
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    generation: AtomicU64,
}

impl SentinelConn {
    /// Builds the sentinel client and connects to the master the sentinels name.
    pub(super) async fn connect(config: &RedisConfig) -> Result<SentinelConn, StoreError> {
        let master_name = config.sentinel_master.clone().unwrap_or_default();
        let doing = || {
            format!(
                "connecting to the master {master_name:?} through the sentinels at {}",
                config.redacted_urls()
            )
        };
        let urls = config.urls();
        let first = redis::IntoConnectionInfo::into_connection_info(urls[0]).doing(doing)?;
        let node_info = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(first.redis_settings().clone())
            .set_tcp_settings(tcp_settings());
        let sentinel = Sentinel::build(urls).doing(doing)?;
        let conn_config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout));
        let conn = SentinelConn {
            inner: Arc::new(Inner {
                sentinel: tokio::sync::Mutex::new(sentinel),
                master_name: master_name.clone(),
                node_info,
                conn_config,
                current: Mutex::new(None),
                generation: AtomicU64::new(0),
            }),
        };
        conn.master().await.doing(doing)?;
        Ok(conn)
    }

    /// The name of the master set.
    pub fn master_name(&self) -> &str {
        &self.inner.master_name
    }

    /// The master connection last found, or a new one to the master the sentinels name now.
    async fn master(&self) -> Result<(u64, MultiplexedConnection), RedisError> {
        if let Some(found) = self.cached() {
            return Ok(found);
        }
        let mut sentinel = self.inner.sentinel.lock().await;
        if let Some(found) = self.cached() {
            return Ok(found);
        }
        let client =
            sentinel.async_master_for(&self.inner.master_name, Some(&self.inner.node_info)).await?;
        let conn =
            client.get_multiplexed_async_connection_with_config(&self.inner.conn_config).await?;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            master = %self.inner.master_name,
            address = %client.get_connection_info().addr(),
            "connected to the redis master named by the sentinels"
        );
        *self.lock_current() = Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    fn cached(&self) -> Option<(u64, MultiplexedConnection)> {
        self.lock_current().clone()
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<(u64, MultiplexedConnection)>> {
        // A panic while holding this lock leaves a valid Option; keep using it.
        self.inner.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets the connection of `generation` (not a newer one) after a failover-like error.
    fn forget(&self, generation: u64, why: &RedisError) {
        let mut current = self.lock_current();
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            tracing::warn!(
                master = %self.inner.master_name, error = %why,
                "redis master connection failed; asking the sentinels for the master again"
            );
            *current = None;
        }
    }

    fn check<T>(&self, generation: u64, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(e) = &result
            && is_failover_error(e)
        {
            self.forget(generation, e);
        }
        result
    }
}

/// An error a failover causes: the master went away, or the server is now a replica.
fn is_failover_error(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.kind() == redis::ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// A `READONLY` reply among a pipeline's replies (the pipeline itself succeeded).
fn readonly_reply(values: &[Value]) -> Option<RedisError> {
    values.iter().find_map(|v| match v {
        Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly) => {
            Some(RedisError::from(e.clone()))
        }
        _ => None,
    })
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        async move {
            let (generation, mut conn) = self.master().await?;
            let result = conn.req_packed_command(cmd).await;
            self.check(generation, result)
        }
        .boxed()
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        async move {
            let (generation, mut conn) = self.master().await?;
            let values =
                self.check(generation, conn.req_packed_commands(pipeline, offset, count).await)?;
            if let Some(e) = readonly_reply(&values) {
                self.forget(generation, &e);
            }
            Ok(values)
        }
        .boxed()
    }

    fn get_db(&self) -> i64 {
        self.inner.node_info_db()
    }
}

impl Inner {
    fn node_info_db(&self) -> i64 {
        self.current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(_, conn)| conn.get_db()))
            .unwrap_or(0)
    }
}
