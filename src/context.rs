//! The shared handles every pipeline step needs, in one cheap-to-clone struct.

use std::sync::Arc;

use crate::store::RedisConn;
use async_nats::jetstream;

use crate::config::Config;
use crate::egress::EgressPolicy;
use crate::store::cache::SubscriptionCache;
use crate::store::subscriptions::SubscriptionStore;
use crate::store::subscriptions::sync::{Keeper, SyncState};
use crate::subjects::Names;

/// JetStream, Redis, HTTP client and configuration, shared by all roles of one process.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub names: Names,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub redis: RedisConn,
    pub subscriptions: SubscriptionStore,
    /// Whether Redis's subscription index is complete (kept by the bucket watch).
    pub sync: Arc<SyncState>,
    /// The delivery path's view of the subscriptions (exact: checked on every use).
    pub cache: Arc<SubscriptionCache>,
    pub http: reqwest::Client,
    /// The attempt log writer.
    pub attempts: crate::attempt_log::Recorder,
    /// In-process per-endpoint permits (in front of the Redis leases).
    pub limits: Arc<crate::limiter::LocalLimits>,
    /// OpenTelemetry span export (an empty handle unless `telemetry.otlp_endpoint` is set).
    pub otel: crate::otel::Otel,
    /// First attempts the fan-out may have running at once (`delivery.concurrency`).
    pub first_attempts: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the process begins to stop.
    pub stopping: tokio_util::sync::CancellationToken,
}

impl Ctx {
    /// Connects to NATS (checking the server version) and Redis, and builds the HTTP client.
    /// Does not create streams: see [`crate::topology::ensure`].
    pub async fn connect(config: Config) -> anyhow::Result<Ctx> {
        crate::tls::install_provider();
        let names = config.streams.names();
        let nats = crate::topology::connect(&config.nats).await?;
        crate::topology::check_server_version(&nats)?;
        let js = crate::topology::jetstream(nats.clone(), &config);
        let (redis, egress, subscriptions) = connect_subscriptions(&config, &names, &js).await?;
        let sync = Arc::<SyncState>::default();
        let cache = Arc::new(SubscriptionCache::new(
            subscriptions.clone(),
            redis.clone(),
            &names,
            sync.clone(),
        ));
        let http = crate::egress::client::http_client(&config.delivery, egress)?;
        let limits = Arc::default();
        let otel = crate::otel::Otel::start(&config.telemetry)?;
        let retention =
            std::time::Duration::from_secs(config.streams.delivery_log_retention_days * 86_400);
        let attempts = crate::attempt_log::Recorder::start(
            js.clone(),
            redis.clone(),
            names.clone(),
            retention,
        );
        let first_attempts = Arc::new(tokio::sync::Semaphore::new(config.delivery.concurrency));
        Ok(Ctx {
            first_attempts,
            stopping: Default::default(),
            config: Arc::new(config),
            names,
            nats,
            js,
            redis,
            subscriptions,
            sync,
            cache,
            http,
            attempts,
            limits,
            otel,
        })
    }
}

impl Ctx {
    /// The keeper of the Redis subscription index (run by every process, see
    /// [`crate::store::subscriptions::sync`]); a change that reached Redis drops the cached copy.
    pub fn index_keeper(&self) -> Keeper {
        let cache = self.cache.clone();
        Keeper::new(
            self.subscriptions.clone(),
            self.sync.clone(),
            Arc::new(move |id: &str| cache.forget(id)),
        )
    }
}

/// Redis, the egress policy (built once, from `[egress]`) and the subscription store (the bucket,
/// created if missing, and the Redis index) that checks endpoint URLs with it: what a process,
/// and a one-shot command that changes subscriptions, connect first. Subscriptions of the
/// earlier Redis-only layout are imported into the bucket here.
pub async fn connect_subscriptions(
    config: &Config,
    names: &Names,
    js: &jetstream::Context,
) -> anyhow::Result<(RedisConn, Arc<EgressPolicy>, SubscriptionStore)> {
    use anyhow::Context as _;
    let redis = crate::store::connect(&config.redis)
        .await
        .with_context(|| format!("connecting to redis at {}", config.redis.redacted_urls()))?;
    let egress = Arc::new(EgressPolicy::from_config(&config.egress)?);
    let kv = crate::topology::subscriptions_bucket(js, config, names).await?;
    let secret_box = Arc::new(config.secrets.secret_box()?);
    let store = SubscriptionStore::new(kv, redis.clone(), names.clone())
        .with_egress(egress.clone())
        .with_secret_box(secret_box);
    store.import_legacy().await.context("importing subscriptions of the earlier layout")?;
    Ok((redis, egress, store))
}

/// A subscription store for `config` (connects NATS and Redis): for tools and tests.
pub async fn subscription_store(config: &Config) -> anyhow::Result<SubscriptionStore> {
    crate::tls::install_provider();
    let names = config.streams.names();
    let nats = crate::topology::connect(&config.nats).await?;
    let js = crate::topology::jetstream(nats, config);
    Ok(connect_subscriptions(config, &names, &js).await?.2)
}
