//! The operations layer: every operator action, implemented once, with its validation, tenant
//! scoping, state rules, lifecycle events and errors. The front ends (`admin_api`, `cli`) are
//! adapters: they parse input into the typed ids of [`crate::ids`], call one method here with
//! the caller's [`Scope`], and render the result or map the [`OpsError`] to their own form (an
//! HTTP status and JSON error, an exit code).
//!
//! Sits above the adapters (Redis store, NATS topology, pipeline) and below the front ends.
//! Invariants kept here, for every front end alike:
//! - bad input is [`OpsError::Invalid`] naming the field, and is refused before any backend is
//!   asked; a backend is never handed text the ids module has not accepted;
//! - a tenant scope sees and changes only its tenant's resources; another tenant's resource is
//!   [`OpsError::NotFound`], so its existence is not revealed;
//! - a state change that would change nothing (activating an active subscription) is
//!   [`OpsError::Conflict`] and publishes no lifecycle event.

mod attempts;
mod dlq;
mod error;
mod events;
mod replay;
mod stats;
mod subscriptions;

use std::sync::Arc;

use async_nats::jetstream;
use redis::aio::ConnectionManager;

pub use attempts::{AttemptFilter, parse_status};
pub use dlq::{RedeliverFailure, RedeliverResult, RedeliverTarget};
pub use error::{BackendError, OpsError};
pub use events::NewEvent;
pub use replay::ReplayRequest;
pub use stats::{OverallStats, SubscriptionHealth, SubscriptionStats};
pub use subscriptions::ListFilter;

use crate::config::Config;
use crate::context::Ctx;
use crate::ids::TenantId;
use crate::store::subscriptions::SubscriptionStore;
use crate::subjects::Names;

/// Who is asking: an operator who sees everything, or one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Tenant(TenantId),
}

impl Scope {
    /// The tenant the caller is limited to, if any.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Scope::Admin => None,
            Scope::Tenant(t) => Some(t),
        }
    }

    /// Whether a resource of `tenant` is visible to the caller.
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Tenant(own) => tenant == Some(own.as_str()),
        }
    }

    /// The tenant a new resource gets: a tenant scope's own (asking for another is invalid
    /// `tenant_id`), or whatever an admin asked for.
    pub fn scope_tenant(
        &self,
        asked: Option<TenantId>,
        what: &str,
    ) -> Result<Option<TenantId>, OpsError> {
        match (self.tenant(), asked) {
            (Some(own), Some(asked)) if *own != asked => Err(OpsError::invalid(
                "tenant_id",
                format!("a tenant token can only {what} of its own tenant"),
            )),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, asked) => Ok(asked),
        }
    }
}

/// The backends an [`Ops`] was given. The API has them all; a CLI command connects only what
/// it needs (subscriptions work while NATS is down, the DLQ while Redis is).
#[derive(Clone)]
pub struct Ops {
    config: Arc<Config>,
    names: Names,
    redis: Option<ConnectionManager>,
    store: Option<SubscriptionStore>,
    nats: Option<async_nats::Client>,
    js: Option<jetstream::Context>,
    ctx: Option<Ctx>,
}

/// What a command needs connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Redis, and NATS if reachable (for lifecycle events).
    Subscriptions,
    /// NATS, with the streams ensured (so `publish` and `dlq` work before `serve` ran).
    Streams,
    /// NATS (streams ensured) and Redis.
    Everything,
}

impl Ops {
    /// Operations over a running process's context (every backend).
    pub fn new(ctx: Ctx) -> Ops {
        Ops {
            config: ctx.config.clone(),
            names: ctx.names.clone(),
            redis: Some(ctx.redis.clone()),
            store: Some(ctx.subscriptions.clone()),
            nats: Some(ctx.nats.clone()),
            js: Some(ctx.js.clone()),
            ctx: Some(ctx),
        }
    }

    /// Connects what `need` asks for (for a one-shot command).
    pub async fn connect(config: Config, need: Need) -> anyhow::Result<Ops> {
        use anyhow::Context as _;
        crate::context::install_tls_provider();
        let names = Names::new(&config.streams.prefix);
        match need {
            Need::Subscriptions => {
                let redis = crate::store::connect(&config.redis).await.with_context(|| {
                    let url = crate::context::redacted_url(&config.redis.url);
                    format!("connecting to redis at {url}")
                })?;
                let egress = Arc::new(crate::egress::EgressPolicy::from_config(&config.egress)?);
                let store =
                    SubscriptionStore::new(redis.clone(), names.clone()).with_egress(egress);
                let nats = match crate::topology::connect(&config.nats).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "lifecycle events not published: NATS unreachable");
                        None
                    }
                };
                Ok(Ops {
                    config: Arc::new(config),
                    names,
                    redis: Some(redis),
                    store: Some(store),
                    nats,
                    js: None,
                    ctx: None,
                })
            }
            Need::Streams => {
                let client = crate::topology::connect(&config.nats).await?;
                let js = crate::topology::jetstream(client.clone(), &config);
                crate::topology::ensure(&client, &js, &config, &names).await?;
                Ok(Ops {
                    config: Arc::new(config),
                    names,
                    redis: None,
                    store: None,
                    nats: Some(client),
                    js: Some(js),
                    ctx: None,
                })
            }
            Need::Everything => {
                let ctx = Ctx::connect(config).await?;
                crate::topology::ensure(&ctx.nats, &ctx.js, &ctx.config, &ctx.names).await?;
                Ok(Ops::new(ctx))
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn store(&self) -> Result<&SubscriptionStore, OpsError> {
        self.store.as_ref().ok_or(OpsError::Backend(BackendError::NotConnected("redis")))
    }

    fn redis(&self) -> Result<&ConnectionManager, OpsError> {
        self.redis.as_ref().ok_or(OpsError::Backend(BackendError::NotConnected("redis")))
    }

    fn js(&self) -> Result<&jetstream::Context, OpsError> {
        self.js.as_ref().ok_or(OpsError::Backend(BackendError::NotConnected("nats")))
    }

    fn ctx(&self) -> Result<&Ctx, OpsError> {
        self.ctx.as_ref().ok_or(OpsError::Backend(BackendError::NotConnected("nats and redis")))
    }

    /// Publishes a lifecycle event when NATS is connected (the change itself is stored).
    async fn notify(
        &self,
        kind: crate::lifecycle::LifecycleKind,
        sub: &crate::store::subscriptions::Subscription,
    ) {
        if let Some(nats) = &self.nats {
            crate::lifecycle::publish(nats, &self.names, kind, sub).await;
            // A one-shot command exits right after: make sure the event left the process.
            if self.ctx.is_none() {
                let _ = nats.flush().await;
            }
        }
    }
}
