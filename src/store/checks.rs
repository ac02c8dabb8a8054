//! Start-up checks of Redis, run by [`super::connect`] on the server, the Sentinel master or
//! every Cluster master, and the log line that says which topology was found.
//!
//! - `maxmemory-policy allkeys-*` may evict keys hookline keeps without a TTL (inbox dedupe,
//!   health, breakers, the subscription index): refused unless `redis.allow_evicting_policy`.
//!   Read from `INFO memory`, which managed Redis allows where `CONFIG` is disabled.
//! - No persistence (no AOF, no RDB save point) is a warning saying what a restart costs.

use std::collections::HashMap;

use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo,
};
use redis::{RedisResult, Value};

use super::conn::RedisConn;
use super::{Doing, StoreError};
use crate::config::RedisConfig;

/// One server's `INFO` fields.
struct NodeInfo {
    /// `host:port` (as the cluster knows it) or a description of the server.
    address: String,
    fields: HashMap<String, String>,
}

impl NodeInfo {
    fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("?", String::as_str)
    }

    fn is_master(&self) -> bool {
        self.get("role") == "master"
    }
}

/// Reads every node's `INFO`, refuses an evicting policy, warns about no persistence, and logs
/// the topology.
pub(super) async fn check_and_log(
    conn: &mut RedisConn,
    config: &RedisConfig,
) -> Result<(), StoreError> {
    let nodes = node_infos(conn, config).await.doing(|| "reading redis INFO".to_string())?;
    log_topology(conn, config, &nodes);
    for node in nodes.iter().filter(|n| n.is_master()) {
        check_policy(node, config)?;
        check_persistence(conn, node).await;
    }
    Ok(())
}

fn check_policy(node: &NodeInfo, config: &RedisConfig) -> Result<(), StoreError> {
    let policy = node.get("maxmemory_policy");
    if !policy.starts_with("allkeys-") {
        return Ok(());
    }
    if config.allow_evicting_policy {
        tracing::warn!(
            node = %node.address, policy,
            "redis may evict keys without a TTL (accepted by redis.allow_evicting_policy): an evicted inbox key may cost a duplicate POST, evicted health or stats keys reset them"
        );
        return Ok(());
    }
    Err(StoreError::Refused {
        node: node.address.clone(),
        problem: format!(
            "maxmemory-policy is {policy}, which may evict keys hookline keeps without a TTL; set `maxmemory-policy noeviction` (or a volatile-* policy) on the server, or set redis.allow_evicting_policy = true to accept the risk"
        ),
    })
}

async fn check_persistence(conn: &mut RedisConn, node: &NodeInfo) {
    if node.get("aof_enabled") == "1" {
        return;
    }
    match config_get(conn, node, "save").await {
        Ok(Some(save)) if !save.trim().is_empty() => {}
        Ok(_) => tracing::warn!(
            node = %node.address,
            "redis persistence is off (no AOF, no RDB save points): a Redis restart forgets the inbox dedupe, so a redelivered copy may be POSTed twice, and resets health, breakers and stats; subscriptions are not lost (they live in JetStream)"
        ),
        Err(e) => tracing::info!(
            node = %node.address, error = %e,
            "redis AOF is off and its RDB save points cannot be read (CONFIG disabled?); without persistence a Redis restart costs duplicates and resets health, breakers and stats"
        ),
    }
}

fn log_topology(conn: &RedisConn, config: &RedisConfig, nodes: &[NodeInfo]) {
    let describe = |want_master: bool| {
        nodes
            .iter()
            .filter(|n| n.is_master() == want_master)
            .map(|n| format!("{} (redis {})", n.address, n.get("redis_version")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let master_set = match conn {
        RedisConn::Sentinel(s) => s.master_name().to_string(),
        _ => String::new(),
    };
    tracing::info!(
        mode = %config.mode,
        masters = %describe(true),
        replicas = %describe(false),
        connected_replicas = %nodes.first().map_or("?", |n| n.get("connected_slaves")),
        sentinel_master = %master_set,
        "connected to redis"
    );
}

/// `INFO` of the server (standalone, Sentinel master) or of every cluster node.
async fn node_infos(conn: &mut RedisConn, config: &RedisConfig) -> RedisResult<Vec<NodeInfo>> {
    match conn {
        RedisConn::Cluster(cluster) => {
            let routing = RoutingInfo::MultiNode((
                MultipleNodeRoutingInfo::AllNodes,
                Some(ResponsePolicy::Special),
            ));
            let reply = cluster.route_command(redis::cmd("INFO"), routing).await?;
            let pairs: Vec<(String, Value)> = redis::from_redis_value(reply)?;
            pairs
                .into_iter()
                .map(|(address, value)| {
                    let text: String = redis::from_redis_value(value)?;
                    Ok(NodeInfo { address, fields: parse_info(&text) })
                })
                .collect()
        }
        _ => {
            let text: String = redis::cmd("INFO").query_async(conn).await?;
            let fields = parse_info(&text);
            let address = match conn {
                RedisConn::Sentinel(s) => format!(
                    "master {:?} (port {})",
                    s.master_name(),
                    fields.get("tcp_port").map_or("?", String::as_str)
                ),
                _ => config.redacted_urls(),
            };
            Ok(vec![NodeInfo { address, fields }])
        }
    }
}

/// `CONFIG GET <param>` on the node; `None` when the server does not know the parameter.
async fn config_get(
    conn: &mut RedisConn,
    node: &NodeInfo,
    param: &str,
) -> RedisResult<Option<String>> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg(param);
    let reply: Value = match conn {
        RedisConn::Cluster(cluster) => {
            let (host, port) = node.address.rsplit_once(':').unwrap_or((&node.address, "0"));
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.to_string(),
                port: port.parse().unwrap_or(0),
            });
            cluster.route_command(cmd, routing).await?
        }
        _ => cmd.query_async(conn).await?,
    };
    let pairs: HashMap<String, String> = redis::from_redis_value(reply)?;
    Ok(pairs.get(param).cloned())
}

/// `field:value` lines of an `INFO` reply.
fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{NodeInfo, check_policy, parse_info};
    use crate::config::Config;

    fn node(policy: &str) -> NodeInfo {
        let text =
            format!("# Memory\r\nmaxmemory_policy:{policy}\r\n# Replication\r\nrole:master\r\n");
        NodeInfo { address: "127.0.0.1:1".into(), fields: parse_info(&text) }
    }

    #[test]
    fn an_allkeys_policy_is_refused_with_the_setting_and_the_fix() {
        let config = Config::with_overrides("").unwrap().redis;
        let err = check_policy(&node("allkeys-lru"), &config).unwrap_err().to_string();
        assert!(err.contains("maxmemory-policy is allkeys-lru"), "{err}");
        assert!(err.contains("noeviction") && err.contains("redis.allow_evicting_policy"), "{err}");
        assert!(check_policy(&node("noeviction"), &config).is_ok());
        assert!(check_policy(&node("volatile-lru"), &config).is_ok());
        let allowed = Config::with_overrides("[redis]\nallow_evicting_policy = true").unwrap();
        assert!(check_policy(&node("allkeys-lru"), &allowed.redis).is_ok());
    }
}
