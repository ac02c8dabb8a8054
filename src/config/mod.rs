//! Configuration: figment layers -> raw structs -> a validated [`Config`].
//!
//! Layers, later ones winning: the embedded `config/default.toml`, an optional file given with
//! `--config`, then `HOOKLINE_<SECTION>__<KEY>` environment variables. Raw values are extracted
//! first, then validated into typed ones (durations, non-empty retry schedule, prefix grammar);
//! every error names the offending key. Secrets (NATS password/token, API tokens, the keys of
//! `[secrets]`) never appear in `Debug`.
//!
//! One file per section (a section's struct, its documentation and its checks); this file
//! composes them and holds what they share.

mod api;
#[cfg(test)]
mod compose_check;
mod delivery;
mod egress;
mod health;
mod nats;
mod process;
mod redis;
mod retry;
mod secrets;
mod streams;
mod telemetry;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

pub use api::{ApiConfig, TenantToken};
pub use delivery::DeliveryConfig;
pub use egress::{EgressConfig, EgressConfigError};
pub use health::HealthConfig;
pub use nats::NatsConfig;
pub use process::{LogConfig, LogFormat, RuntimeConfig, ShutdownConfig};
pub use redis::{RedisConfig, RedisMode};
pub use retry::{MAX_ATTEMPTS, RetryConfig, parse_schedule};
use retry::{RawRetry, validate_retry};
pub use secrets::SecretsConfig;
pub use streams::{StorageKind, StreamsConfig};
pub use telemetry::TelemetryConfig;

/// The base layer, compiled in so the binary runs with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// A configuration that could not be loaded or is invalid; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("invalid configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

/// Everything hookline needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub nats: NatsConfig,
    pub redis: RedisConfig,
    pub streams: StreamsConfig,
    pub delivery: DeliveryConfig,
    pub retry: RetryConfig,
    pub health: HealthConfig,
    pub api: ApiConfig,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
    pub egress: EgressConfig,
    pub runtime: RuntimeConfig,
    pub secrets: SecretsConfig,
    pub telemetry: TelemetryConfig,
}

/// A string that is never printed by `Debug`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("\"[redacted]\"") }
    }
}

/// A URL with any password replaced, for messages and `Debug`.
pub fn redacted_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("redacted"));
            }
            u.to_string()
        }
        Err(_) => "[unparsable url]".into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    nats: NatsConfig,
    redis: RedisConfig,
    streams: StreamsConfig,
    delivery: DeliveryConfig,
    retry: RawRetry,
    health: HealthConfig,
    api: ApiConfig,
    shutdown: ShutdownConfig,
    log: LogConfig,
    egress: EgressConfig,
    runtime: RuntimeConfig,
    secrets: SecretsConfig,
    telemetry: TelemetryConfig,
}

impl Config {
    /// Loads the layers (default, optional file, environment) and validates them.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                return Err(invalid("--config", format!("file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only `HOOKLINE_<SECTION>__<KEY>` variables are configuration; others with the prefix
        // (HOOKLINE_CONFIG, HOOKLINE_VERIFY_SECRET, ...) belong to the command line.
        figment = figment
            .merge(Env::prefixed("HOOKLINE_").filter(|k| k.as_str().contains("__")).split("__"));
        Self::from_figment(figment)
    }

    /// Validates a figment (used by `load` and by tests that layer their own values).
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let raw: RawConfig = figment.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        let retry = validate_retry(raw.retry)?;
        let config = Config {
            nats: raw.nats,
            redis: raw.redis,
            streams: raw.streams,
            delivery: raw.delivery,
            retry,
            health: raw.health,
            api: raw.api,
            shutdown: raw.shutdown,
            log: raw.log,
            egress: raw.egress,
            runtime: raw.runtime,
            secrets: raw.secrets,
            telemetry: raw.telemetry,
        };
        config.validate()?;
        Ok(config)
    }

    /// The embedded defaults with `overrides` (TOML text) merged on top; no file, no env.
    pub fn with_overrides(overrides: &str) -> Result<Config, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overrides)))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.streams.validate()?;
        self.nats.validate()?;
        self.redis.validate()?;
        self.delivery.validate()?;
        self.runtime.validate()?;
        self.health.validate()?;
        self.api.validate()?;
        self.egress.validate()?;
        self.secrets.validate()?;
        self.telemetry.validate()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let config = Config::with_overrides("").expect("defaults");
        assert_eq!(config.streams.prefix, "webhooks");
        assert_eq!(config.retry.schedule.len(), 8);
        assert_eq!(config.retry.schedule[1], Duration::from_secs(5));
        assert_eq!(config.delivery.max_payload_bytes, 256 * 1024);
    }

    #[test]
    fn empty_retry_schedule_names_the_key() {
        let err = Config::with_overrides("[retry]\nschedule = []").unwrap_err();
        assert!(err.to_string().contains("retry.schedule"), "{err}");
    }

    #[test]
    fn bad_duration_in_schedule_names_the_key_and_value() {
        let err = Config::with_overrides("[retry]\nschedule = [\"0s\", \"soon\"]").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("retry.schedule") && msg.contains("soon"), "{msg}");
    }

    #[test]
    fn bad_prefix_names_the_key() {
        let err = Config::with_overrides("[streams]\nprefix = \"a.b\"").unwrap_err();
        assert!(err.to_string().contains("streams.prefix"), "{err}");
    }

    #[test]
    fn partitions_out_of_range_name_the_key() {
        for bad in ["0", "65"] {
            let err =
                Config::with_overrides(&format!("[streams]\npartitions = {bad}")).unwrap_err();
            assert!(err.to_string().contains("streams.partitions"), "{err}");
        }
        assert_eq!(Config::with_overrides("").unwrap().streams.partitions, 1);
        let ok = Config::with_overrides("[streams]\npartitions = 64").unwrap();
        assert_eq!(ok.streams.names().deliveries_streams().len(), 64);
        let err = Config::with_overrides("[streams]\npartitions = -1").unwrap_err();
        assert!(err.to_string().contains("partitions"), "{err}");
    }

    #[test]
    fn breaker_max_open_for_below_open_for_names_the_key() {
        let err = Config::with_overrides(
            "[health]\nbreaker_open_for = \"1m\"\nbreaker_max_open_for = \"30s\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("health.breaker_max_open_for"), "{err}");
        let ok = Config::with_overrides(
            "[health]\nbreaker_open_for = \"1m\"\nbreaker_max_open_for = \"1m\"",
        )
        .unwrap();
        assert_eq!(ok.health.breaker_max_open_for, Duration::from_secs(60));
    }

    #[test]
    fn a_placeholder_admin_or_tenant_token_is_refused_naming_the_key_and_variable() {
        let err =
            Config::with_overrides("[api]\nadmin_tokens = [\"change-me-0123456789\"]").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("api.admin_tokens"), "{text}");
        assert!(text.contains("HOOKLINE_ADMIN_TOKEN"), "{text}");
        assert!(!text.contains("change-me-0123456789"), "the token itself is not echoed: {text}");
        let err = Config::with_overrides(
            "[api]\ntenant_tokens = [{ tenant = \"acme\", token = \"CHANGEME-acme-0123456\" }]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("api.tenant_tokens"), "{err}");
        let ok =
            Config::with_overrides("[api]\nadmin_tokens = [\"a-real-secret-0123456789\"]").unwrap();
        assert_eq!(ok.api.admin_tokens.len(), 1);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let err = Config::with_overrides("[delivery]\nconcurency = 3").unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = Config::with_overrides("[delivery]\nconcurrency = \"many\"").unwrap_err();
        assert!(err.to_string().contains("concurrency"), "{err}");
    }

    #[test]
    fn runtime_threads_default_to_automatic_and_are_bounded() {
        let auto = Config::with_overrides("").unwrap().runtime;
        assert_eq!(auto.worker_threads, 0);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(auto.threads(), if cpus <= 2 { 1 } else { cpus });
        assert_eq!(
            Config::with_overrides("[runtime]\nworker_threads = 3").unwrap().runtime.threads(),
            3
        );
        assert_eq!(
            Config::with_overrides("[runtime]\nworker_threads = 1").unwrap().runtime.worker_threads,
            1
        );
        let err = Config::with_overrides("[runtime]\nworker_threads = 5000").unwrap_err();
        assert!(err.to_string().contains("runtime.worker_threads"), "{err}");
    }

    #[test]
    fn jitter_out_of_range_is_rejected() {
        let err = Config::with_overrides("[retry]\njitter = 1.5").unwrap_err();
        assert!(err.to_string().contains("retry.jitter"), "{err}");
    }

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let config = Config::with_overrides(
            "[nats]\ntoken = \"s3cr3t-token\"\npassword = \"pw-123\"\n[redis]\nurl = \"redis://:hunter2@localhost:6379/\"",
        )
        .unwrap();
        let debug = format!("{config:?}");
        for secret in ["s3cr3t-token", "pw-123", "hunter2"] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
    }

    #[test]
    // figment::Jail's closure returns figment's own (large) error type: not ours to shrink.
    #[allow(clippy::result_large_err)]
    fn environment_overrides_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hookline.toml",
                "[streams]\nprefix = \"fromfile\"\n[redis]\nurl = \"redis://file:1/\"",
            )?;
            jail.set_env("HOOKLINE_STREAMS__PREFIX", "fromenv");
            jail.set_env("HOOKLINE_CONFIG", "not-a-config-key");
            let config =
                Config::load(Some(Path::new("hookline.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.streams.prefix, "fromenv");
            assert_eq!(config.redis.url, "redis://file:1/");
            Ok(())
        });
    }
}
