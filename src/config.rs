//! Configuration: figment layers -> raw structs -> a validated [`Config`].
//!
//! Layers, later ones winning: the embedded `config/default.toml`, an optional file given with
//! `--config`, then `HOOKLINE_<SECTION>__<KEY>` environment variables. Raw values are extracted
//! first, then validated into typed ones (durations, non-empty retry schedule, prefix grammar);
//! every error names the offending key. Secrets (NATS password/token) never appear in `Debug`.

use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

/// The base layer, compiled in so the binary runs with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

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

/// `[nats]`: where and how to connect to NATS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// Path of a `.creds` file; empty when unused.
    pub credentials_file: String,
    /// Auth token; empty when unused.
    pub token: Redacted,
    /// User name; empty when unused.
    pub user: String,
    /// Password; empty when unused.
    pub password: Redacted,
    /// Connection name shown by the server.
    pub connection_name: String,
    /// Timeout of JetStream API requests and publish acks.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// `[redis]`: where and how to connect to Redis.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Redis URL (may carry a password, so it is redacted in `Debug`).
    pub url: String,
    /// Timeout of one command.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Timeout of establishing a connection.
    #[serde(with = "humantime_serde")]
    pub connection_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = crate::context::redacted_url(&self.url);
        f.debug_struct("RedisConfig")
            .field("url", &url)
            .field("response_timeout", &self.response_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .finish()
    }
}

/// Storage backend of the JetStream streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    File,
    Memory,
}

/// `[streams]`: names and retention of the JetStream streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// Prefix of subjects, streams, consumers and Redis keys.
    pub prefix: String,
    /// Retention of the events log.
    #[serde(with = "humantime_serde")]
    pub events_max_age: Duration,
    /// JetStream duplicate window (Nats-Msg-Id dedupe).
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Retention of the dead-letter stream.
    #[serde(with = "humantime_serde")]
    pub dlq_max_age: Duration,
    /// Retention of the attempt log, days.
    pub delivery_log_retention_days: u64,
    /// Stream replicas.
    pub replicas: usize,
    /// File or memory storage.
    pub storage: StorageKind,
}

/// `[delivery]`: limits and behaviour of fan-out and HTTP delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Largest accepted event, bytes.
    pub max_payload_bytes: usize,
    /// Per-request HTTP timeout.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Deliveries in flight per process.
    pub concurrency: usize,
    /// Events fanned out at once per process.
    pub fanout_concurrency: usize,
    /// Redelivery delay of unacked messages (crash recovery).
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// How long a 2xx is remembered by the inbox dedupe.
    #[serde(with = "humantime_serde")]
    pub dedupe_ttl: Duration,
    /// Response body bytes kept.
    pub response_body_limit: usize,
    /// User-Agent header.
    pub user_agent: String,
}

/// `[retry]`: the attempt schedule.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Delay before each attempt; `schedule.len()` is the attempt budget.
    pub schedule: Vec<Duration>,
    /// Jitter fraction in `[0, 1)`.
    pub jitter: f64,
    /// Cap on an honoured Retry-After.
    pub max_retry_after: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    schedule: Vec<String>,
    jitter: f64,
    #[serde(with = "humantime_serde")]
    max_retry_after: Duration,
}

/// `[health]`: auto-disable, circuit breaker, backpressure bound, per-endpoint limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Consecutive failures that deactivate a subscription (0: never).
    pub disable_after_failures: u64,
    /// Window of those failures.
    #[serde(with = "humantime_serde")]
    pub disable_window: Duration,
    /// Consecutive failures that open an endpoint's breaker (0: never).
    pub breaker_failure_threshold: u64,
    /// How long an open breaker defers before one probe (the first time).
    #[serde(with = "humantime_serde")]
    pub breaker_open_for: Duration,
    /// Longest an open breaker defers: each re-opening without a success in between doubles
    /// `breaker_open_for` up to this.
    #[serde(with = "humantime_serde")]
    pub breaker_max_open_for: Duration,
    /// Oldest a delivery may get through deferrals.
    #[serde(with = "humantime_serde")]
    pub max_delivery_age: Duration,
    /// Default in-flight requests per endpoint.
    pub max_in_flight_per_endpoint: u32,
    /// Default requests per second per endpoint (0: unlimited).
    pub max_rps_per_endpoint: u32,
}

/// A bearer token limited to one tenant.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantToken {
    pub tenant: String,
    pub token: String,
}

impl std::fmt::Debug for TenantToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantToken")
            .field("tenant", &self.tenant)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// `[api]`: the admin HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: std::net::SocketAddr,
    /// Tokens with full access.
    pub admin_tokens: Vec<Redacted>,
    /// Tokens limited to a tenant.
    pub tenant_tokens: Vec<TenantToken>,
    /// Request body limit.
    pub body_limit_bytes: usize,
    /// Grace window of a rotated-out secret, hours (fractions allowed).
    pub secret_rotation_grace_hours: f64,
}

impl ApiConfig {
    /// The grace window as a duration.
    pub fn rotation_grace(&self) -> Duration {
        Duration::from_secs_f64(self.secret_rotation_grace_hours * 3600.0)
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight work may take to finish after a signal.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
}

/// `[runtime]`: the process's Tokio runtime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads; 0: automatic (see [`RuntimeConfig::threads`]).
    pub worker_threads: usize,
}

impl RuntimeConfig {
    /// The worker threads to start: `worker_threads`, or when 0, one per CPU except on a
    /// machine of 2 CPUs or fewer, where one thread leaves the rest to nats-server and Redis and
    /// costs less CPU per delivery (each delivery's steps run in one task anyway; a second
    /// thread mostly adds wake-ups across threads: BENCHMARKS.md).
    pub fn threads(&self) -> usize {
        match self.worker_threads {
            0 => match std::thread::available_parallelism().map_or(1, |n| n.get()) {
                n if n <= 2 => 1,
                n => n,
            },
            n => n,
        }
    }
}

/// `[egress]`: where deliveries may go (SSRF protection; see [`crate::egress`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Refuse endpoints whose address is not public (loopback, private, link-local, ...).
    pub ssrf_protection: bool,
    /// Refuse http:// endpoints.
    pub https_only: bool,
    /// Networks reachable despite `ssrf_protection`, e.g. `127.0.0.0/8` for local development.
    pub allow_cidrs: Vec<String>,
    /// HTTP(S) proxy every delivery goes through; empty means direct. May carry credentials.
    pub proxy: Redacted,
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
        };
        config.validate()?;
        Ok(config)
    }

    /// The embedded defaults with `overrides` (TOML text) merged on top; no file, no env.
    pub fn with_overrides(overrides: &str) -> Result<Config, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overrides)))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.streams.prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !prefix_ok {
            return Err(invalid(
                "streams.prefix",
                format!("{prefix:?} must be 1-32 characters of letters, digits, '_' or '-'"),
            ));
        }
        if self.nats.url.trim().is_empty() {
            return Err(invalid("nats.url", "must not be empty"));
        }
        if url::Url::parse(&self.redis.url).is_err() {
            return Err(invalid("redis.url", format!("{:?} is not a URL", self.redis.url)));
        }
        if self.streams.replicas == 0 || self.streams.replicas > 5 {
            return Err(invalid("streams.replicas", "must be between 1 and 5"));
        }
        if self.streams.duplicate_window.is_zero() {
            return Err(invalid("streams.duplicate_window", "must be greater than zero"));
        }
        if self.streams.duplicate_window > self.streams.events_max_age {
            return Err(invalid(
                "streams.duplicate_window",
                "must not exceed streams.events_max_age",
            ));
        }
        let d = &self.delivery;
        if d.concurrency == 0 {
            return Err(invalid("delivery.concurrency", "must be at least 1"));
        }
        if d.fanout_concurrency == 0 {
            return Err(invalid("delivery.fanout_concurrency", "must be at least 1"));
        }
        if d.max_payload_bytes < 64 || d.max_payload_bytes > 1024 * 1024 {
            return Err(invalid("delivery.max_payload_bytes", "must be between 64 and 1048576"));
        }
        if d.request_timeout.is_zero() {
            return Err(invalid("delivery.request_timeout", "must be greater than zero"));
        }
        if d.ack_wait < d.request_timeout + Duration::from_secs(1) {
            return Err(invalid(
                "delivery.ack_wait",
                "must exceed delivery.request_timeout by at least 1s",
            ));
        }
        if self.runtime.worker_threads > 1024 {
            return Err(invalid("runtime.worker_threads", "must be at most 1024 (0: automatic)"));
        }
        if self.health.max_in_flight_per_endpoint == 0 {
            return Err(invalid("health.max_in_flight_per_endpoint", "must be at least 1"));
        }
        if self.health.breaker_open_for.is_zero() {
            return Err(invalid("health.breaker_open_for", "must be greater than zero"));
        }
        if self.health.breaker_max_open_for < self.health.breaker_open_for {
            return Err(invalid(
                "health.breaker_max_open_for",
                "must be at least health.breaker_open_for",
            ));
        }
        if self.streams.delivery_log_retention_days == 0 {
            return Err(invalid("streams.delivery_log_retention_days", "must be at least 1"));
        }
        for t in &self.api.tenant_tokens {
            if t.token.len() < 16 || !crate::ids::TenantId::is_valid(&t.tenant) {
                return Err(invalid(
                    "api.tenant_tokens",
                    "each entry needs a valid tenant and a token of at least 16 characters",
                ));
            }
        }
        if !(0.0..=24.0 * 365.0).contains(&self.api.secret_rotation_grace_hours) {
            return Err(invalid("api.secret_rotation_grace_hours", "must be between 0 and 8760"));
        }
        if self.api.admin_tokens.iter().any(|t| t.0.len() < 16) {
            return Err(invalid("api.admin_tokens", "tokens must be at least 16 characters"));
        }
        if self.nats.request_timeout.is_zero() {
            return Err(invalid("nats.request_timeout", "must be greater than zero"));
        }
        if self.redis.response_timeout.is_zero() {
            return Err(invalid("redis.response_timeout", "must be greater than zero"));
        }
        match crate::egress::EgressPolicy::from_config(&self.egress) {
            Err(crate::egress::EgressConfigError::Cidr(e)) => {
                return Err(invalid("egress.allow_cidrs", e.to_string()));
            }
            Err(crate::egress::EgressConfigError::Proxy(e)) => {
                return Err(invalid("egress.proxy", e));
            }
            Ok(_) => {}
        }
        Ok(())
    }
}

fn validate_retry(raw: RawRetry) -> Result<RetryConfig, ConfigError> {
    if raw.schedule.is_empty() {
        return Err(invalid("retry.schedule", "must list at least one delay (the first attempt)"));
    }
    if raw.schedule.len() > 100 {
        return Err(invalid("retry.schedule", "must not list more than 100 attempts"));
    }
    let schedule = raw
        .schedule
        .iter()
        .map(|s| {
            humantime::parse_duration(s)
                .map_err(|e| invalid("retry.schedule", format!("{s:?} is not a duration: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.0..1.0).contains(&raw.jitter) {
        return Err(invalid("retry.jitter", format!("{} must be in [0, 1)", raw.jitter)));
    }
    Ok(RetryConfig { schedule, jitter: raw.jitter, max_retry_after: raw.max_retry_after })
}

#[cfg(test)]
mod tests {
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
