//! The hookline services of `compose/docker-compose.yml` pass a valid configuration: each
//! service's `HOOKLINE_*` environment, as compose would set it, loads through [`Config::load`].
//! No Docker is needed; the file is read as text (one `KEY: value` line per variable under the
//! service's `environment:`, which is how the file is written).

use std::path::Path;

use super::{Config, RedisMode};

const COMPOSE: &str = include_str!("../../compose/docker-compose.yml");
/// What a user exports as `HOOKLINE_ADMIN_TOKEN` before `docker compose up`.
const ADMIN_TOKEN: &str = "a-real-secret-0123456789";

/// The `HOOKLINE_*` variables of `service`, with `${HOOKLINE_ADMIN_TOKEN:?...}` substituted.
fn hookline_env(service: &str) -> Vec<(String, String)> {
    let header = format!("  {service}:");
    let mut lines = COMPOSE.lines().skip_while(|l| l.trim_end() != header);
    assert!(lines.next().is_some(), "service {service} in compose/docker-compose.yml");
    lines
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(k, _)| k.starts_with("HOOKLINE_"))
        .map(|(k, v)| (k.to_string(), substitute(v.trim_matches(['\'', '"']))))
        .collect()
}

fn substitute(value: &str) -> String {
    match value.split_once("${") {
        None => value.to_string(),
        Some((before, rest)) => {
            let (var, after) = rest.split_once('}').expect("a closed ${...}");
            assert!(var.starts_with("HOOKLINE_ADMIN_TOKEN:?"), "unexpected variable {var}");
            format!("{before}{ADMIN_TOKEN}{after}")
        }
    }
}

// figment::Jail's closure returns figment's own (large) error type: not ours to shrink.
#[allow(clippy::result_large_err)]
fn load(service: &str) -> Config {
    let env = hookline_env(service);
    assert!(env.len() >= 3, "{service} sets hookline's variables: {env:?}");
    let mut loaded = None;
    figment::Jail::expect_with(|jail| {
        for (k, v) in &env {
            jail.set_env(k, v);
        }
        loaded = Some(Config::load(None::<&Path>).map_err(|e| format!("{service}: {e}"))?);
        Ok(())
    });
    loaded.expect("loaded in the jail")
}

#[test]
fn the_standalone_service_configures_one_nats_and_one_redis() {
    let config = load("hookline");
    assert_eq!(config.redis.mode, RedisMode::Standalone);
    assert_eq!(config.redis.urls(), ["redis://redis:6379/"]);
    assert_eq!(config.streams.replicas, 1);
}

#[test]
fn the_cluster_profile_configures_three_nats_nodes_r3_and_a_redis_cluster() {
    let config = load("hookline-cluster");
    assert_eq!(config.nats.url.split(',').count(), 3, "{}", config.nats.url);
    assert_eq!(config.streams.replicas, 3);
    assert_eq!(config.redis.mode, RedisMode::Cluster);
    let urls = config.redis.urls();
    assert_eq!(urls.len(), 6, "every node a seed: {urls:?}");
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(*url, format!("redis://redis-{}:6379/", i + 1));
    }
    assert_eq!(config.api.admin_tokens.len(), 1);
}
