//! `[redis]`: where and how to connect to Redis (used by [`crate::store::connect`]): one server,
//! a Redis Cluster or a master found through Sentinel. The URLs may carry a password, so `Debug`
//! prints them redacted.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid, redacted_url};

/// How hookline reaches Redis (`redis.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server (`redis.url` is its URL).
    #[default]
    Standalone,
    /// A Redis Cluster (`redis.url` lists seed nodes; the rest is discovered).
    Cluster,
    /// The master of `redis.sentinel_master`, found through the sentinels listed in `redis.url`.
    Sentinel,
}

impl std::fmt::Display for RedisMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisMode::Standalone => "standalone",
            RedisMode::Cluster => "cluster",
            RedisMode::Sentinel => "sentinel",
        })
    }
}

/// `[redis]`: where and how to connect to Redis.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Topology: standalone, cluster or sentinel.
    #[serde(default)]
    pub mode: RedisMode,
    /// Redis URL, or comma-separated URLs: cluster seed nodes, or the sentinels (may carry a
    /// password, so it is redacted in `Debug`).
    pub url: String,
    /// Sentinel mode: the name of the monitored master set.
    #[serde(default)]
    pub sentinel_master: Option<String>,
    /// Start even when Redis may evict keys that have no TTL (`maxmemory-policy allkeys-*`).
    #[serde(default)]
    pub allow_evicting_policy: bool,
    /// Timeout of one command.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Timeout of establishing a connection.
    #[serde(with = "humantime_serde")]
    pub connection_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("mode", &self.mode)
            .field("url", &self.redacted_urls())
            .field("sentinel_master", &self.sentinel_master)
            .field("allow_evicting_policy", &self.allow_evicting_policy)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .finish()
    }
}

impl RedisConfig {
    /// The URLs of `redis.url`, split at commas, blanks trimmed.
    pub fn urls(&self) -> Vec<&str> {
        self.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect()
    }

    /// `redis.url` with every password replaced, for logs and errors.
    pub fn redacted_urls(&self) -> String {
        self.urls().into_iter().map(redacted_url).collect::<Vec<_>>().join(",")
    }

    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let urls = self.urls();
        if urls.is_empty() {
            return Err(invalid("redis.url", "must name at least one URL"));
        }
        if let Some(bad) = urls.iter().find(|u| url::Url::parse(u).is_err()) {
            return Err(invalid("redis.url", format!("{bad:?} is not a URL")));
        }
        match self.mode {
            RedisMode::Standalone if urls.len() > 1 => {
                return Err(invalid(
                    "redis.url",
                    format!(
                        "lists {} URLs but redis.mode is \"standalone\"; set redis.mode to \"cluster\" or \"sentinel\", or give one URL",
                        urls.len()
                    ),
                ));
            }
            RedisMode::Sentinel
                if self.sentinel_master.as_deref().is_none_or(|m| m.trim().is_empty()) =>
            {
                return Err(invalid(
                    "redis.sentinel_master",
                    "is required with redis.mode = \"sentinel\" (the master set name the sentinels monitor)",
                ));
            }
            _ => {}
        }
        if self.mode != RedisMode::Sentinel && self.sentinel_master.is_some() {
            return Err(invalid(
                "redis.sentinel_master",
                format!("is only used with redis.mode = \"sentinel\" (mode is \"{}\")", self.mode),
            ));
        }
        if self.response_timeout.is_zero() {
            return Err(invalid("redis.response_timeout", "must be greater than zero"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RedisMode;
    use crate::config::Config;

    fn error_of(toml: &str) -> String {
        Config::with_overrides(toml).unwrap_err().to_string()
    }

    #[test]
    fn mode_defaults_to_standalone_and_takes_url_lists() {
        let config = Config::with_overrides("").unwrap().redis;
        assert_eq!(config.mode, RedisMode::Standalone);
        assert!(!config.allow_evicting_policy);
        let cluster = Config::with_overrides(
            "[redis]\nmode = \"cluster\"\nurl = \"redis://a:1/, redis://:pw@b:2/\"",
        )
        .unwrap()
        .redis;
        assert_eq!(cluster.urls(), ["redis://a:1/", "redis://:pw@b:2/"]);
        assert!(!format!("{cluster:?}").contains("pw@"));
    }

    #[test]
    fn sentinel_mode_requires_the_master_name() {
        let err = error_of("[redis]\nmode = \"sentinel\"\nurl = \"redis://s1:26379/\"");
        assert!(err.contains("redis.sentinel_master"), "{err}");
        let ok = Config::with_overrides(
            "[redis]\nmode = \"sentinel\"\nurl = \"redis://s1:26379/,redis://s2:26379/\"\nsentinel_master = \"main\"",
        )
        .unwrap();
        assert_eq!(ok.redis.sentinel_master.as_deref(), Some("main"));
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(error_of("[redis]\nurl = \"redis://a:1/,redis://b:2/\"").contains("redis.url"));
        assert!(error_of("[redis]\nurl = \"not a url\"").contains("redis.url"));
        assert!(error_of("[redis]\nurl = \" , \"").contains("redis.url"));
        assert!(error_of("[redis]\nmode = \"ring\"").contains("mode"));
        assert!(error_of("[redis]\nsentinel_master = \"m\"").contains("redis.sentinel_master"));
    }
}
