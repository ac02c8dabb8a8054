//! Redis Cluster: connecting with deliberate timeouts and retries, and sending a non-atomic
//! pipeline whose keys span hash slots (redis-rs refuses those with CROSSSLOT).
//!
//! hookline pipelines many unrelated keys (attempt index writes, stats tallies, subscription
//! loads) for speed, not atomicity, so [`req_split_pipeline`] groups such a pipeline's commands
//! by slot, sends one sub-pipeline per slot concurrently and puts the replies back in the original
//! order. Commands on one key stay in one sub-pipeline, in their order. An atomic pipeline
//! (MULTI/EXEC) is passed through whole: it must keep its keys in one slot (hash tags), and
//! Redis refuses it otherwise. MOVED/ASK, slot-map refreshes and failovers are redis-rs's job.

use std::collections::HashMap;

use futures::FutureExt;
use futures::future::try_join_all;
use redis::aio::ConnectionLike;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Arg, Cmd, Pipeline, RedisFuture, Value};

use super::{Doing, StoreError, tcp_settings};
use crate::config::RedisConfig;

/// Retries of one command across a failover or slot move (redis-rs defaults to 16, which can
/// hold a caller for minutes); the caller retries later anyway.
const RETRIES: u32 = 6;
/// Bounds of the wait between two retries, in milliseconds.
const MIN_RETRY_WAIT_MS: u64 = 100;
const MAX_RETRY_WAIT_MS: u64 = 2_000;

/// Connects to the cluster through its seed nodes (`redis.url`, comma-separated).
pub(super) async fn connect(config: &RedisConfig) -> Result<ClusterConnection, StoreError> {
    let doing = || format!("connecting to the redis cluster at {}", config.redacted_urls());
    let client = ClusterClientBuilder::new(config.urls())
        .connection_timeout(config.connection_timeout)
        .response_timeout(config.response_timeout)
        // Each attempt gets `response_timeout`; all retries together at most twice that, so a
        // failover in progress is waited out but never blocks a caller for long.
        .overall_response_timeout(Some(config.response_timeout * 2))
        .retries(RETRIES)
        .min_retry_wait(MIN_RETRY_WAIT_MS)
        .max_retry_wait(MAX_RETRY_WAIT_MS)
        .tcp_settings(tcp_settings())
        .build()
        .doing(doing)?;
    client.get_async_connection().await.doing(doing)
}

/// Sends `pipeline` over the cluster: whole if atomic or single-slot, else split by slot.
pub(super) fn req_split_pipeline<'a>(
    conn: &'a mut ClusterConnection,
    pipeline: &'a Pipeline,
    offset: usize,
    count: usize,
) -> RedisFuture<'a, Vec<Value>> {
    let groups = slot_groups(pipeline);
    if pipeline.is_transaction() || groups.len() <= 1 {
        return conn.req_packed_commands(pipeline, offset, count);
    }
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    async move {
        let sends = groups.iter().map(|indexes| {
            let mut sub = Pipeline::with_capacity(indexes.len());
            for &i in indexes {
                sub.add_command(commands[i].clone());
            }
            let mut conn = conn.clone();
            async move { conn.req_packed_commands(&sub, 0, sub.len()).await }
        });
        let replies = try_join_all(sends).await?;
        let mut ordered: Vec<Option<Value>> = vec![None; commands.len()];
        for (indexes, values) in groups.iter().zip(replies) {
            for (&i, value) in indexes.iter().zip(values) {
                ordered[i] = Some(value);
            }
        }
        ordered
            .into_iter()
            .map(|v| {
                v.ok_or_else(|| {
                    redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "a split cluster pipeline got fewer replies than commands",
                    ))
                })
            })
            .collect()
    }
    .boxed()
}

/// The pipeline's command indexes grouped by the hash slot of their first key, in first-seen
/// order; a command without a key is a group of its own (the cluster client routes it).
fn slot_groups(pipeline: &Pipeline) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_slot: HashMap<Slot, usize> = HashMap::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        match first_key(cmd).map(Slot::for_key) {
            Some(slot) => {
                let group = *by_slot.entry(slot).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[group].push(i);
            }
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The key a command is routed by: the first of `KEYS` for scripts and functions, else the
/// first argument after the command name.
fn first_key(cmd: &Cmd) -> Option<&[u8]> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let count: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if count == 0 { None } else { args.get(3).copied() }
        }
        b"PING" | b"INFO" | b"TIME" | b"ECHO" | b"SCRIPT" | b"FUNCTION" | b"CLUSTER" => None,
        _ => args.get(1).copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::{first_key, slot_groups};

    #[test]
    fn commands_are_grouped_by_the_slot_of_their_key_in_order() {
        let mut pipe = redis::pipe();
        pipe.set("{a}:1", 1).set("{b}:1", 2).incr("{a}:2", 1).get("{b}:1").cmd("PING");
        assert_eq!(slot_groups(&pipe), vec![vec![0, 2], vec![1, 3], vec![4]]);
    }

    #[test]
    fn a_script_is_routed_by_its_first_key() {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg("abc").arg(2).arg("{s}:k1").arg("{s}:k2").arg("v");
        assert_eq!(first_key(&cmd), Some(&b"{s}:k1"[..]));
        let mut keyless = redis::cmd("EVAL");
        keyless.arg("return 1").arg(0);
        assert_eq!(first_key(&keyless), None);
    }
}
