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
mod console_links;
mod dlq;
mod error;
mod events;
mod handshake;
mod live;
mod replay;
mod stats;
mod subscriptions;
mod test_event;

use std::sync::Arc;

use crate::store::RedisConn;
use async_nats::jetstream;

pub use attempts::{AttemptFilter, parse_status};
pub use console_links::{ConsoleLink, ConsoleLinkRequest, DEFAULT_TTL, console_link};
pub use dlq::{RedeliverFailure, RedeliverResult, RedeliverTarget};
pub use error::{BackendError, OpsError};
pub use events::NewEvent;
pub use live::{LiveEvent, LiveFeed, LiveRequest, LiveTick, MAX_ATTEMPTS_PER_SECOND};
pub use replay::ReplayRequest;
pub use stats::{OverallStats, SubscriptionHealth, SubscriptionStats};
pub use subscriptions::{ListFilter, ResealReport};

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
/// it needs (the DLQ works while Redis is down).
#[derive(Clone)]
pub struct Ops {
    config: Arc<Config>,
    names: Names,
    redis: Option<RedisConn>,
    store: Option<SubscriptionStore>,
    nats: Option<async_nats::Client>,
    js: Option<jetstream::Context>,
    ctx: Option<Ctx>,
    /// The deliveries' HTTP client (egress policy applied), for the validation handshake.
    http: Option<reqwest::Client>,
}

/// What a command needs connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// NATS (the subscriptions bucket) and Redis (the index).
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
            http: Some(ctx.http.clone()),
            ctx: Some(ctx),
        }
    }

    /// Connects what `need` asks for (for a one-shot command).
    pub async fn connect(config: Config, need: Need) -> anyhow::Result<Ops> {
        crate::tls::install_provider();
        match need {
            Need::Subscriptions => Ops::connect_subscriptions(config).await,
            Need::Streams => Ops::connect_streams(config).await,
            Need::Everything => {
                let ctx = Ctx::connect(config).await?;
                crate::topology::ensure(&ctx.nats, &ctx.js, &ctx.config, &ctx.names).await?;
                Ok(Ops::new(ctx))
            }
        }
    }

    /// NATS (the bucket holds the subscriptions) and Redis (their index).
    async fn connect_subscriptions(config: Config) -> anyhow::Result<Ops> {
        let names = config.streams.names();
        let nats = crate::topology::connect(&config.nats).await?;
        let js = crate::topology::jetstream(nats.clone(), &config);
        let (redis, egress, store) =
            crate::context::connect_subscriptions(&config, &names, &js).await?;
        let http = crate::egress::client::http_client(&config.delivery, egress)?;
        let config = Arc::new(config);
        Ok(Ops {
            config,
            names,
            redis: Some(redis),
            store: Some(store),
            nats: Some(nats),
            js: Some(js),
            ctx: None,
            http: Some(http),
        })
    }

    /// NATS with the streams ensured (so `publish` and `dlq` work before `serve` ran).
    async fn connect_streams(config: Config) -> anyhow::Result<Ops> {
        let names = config.streams.names();
        let client = crate::topology::connect(&config.nats).await?;
        let js = crate::topology::jetstream(client.clone(), &config);
        crate::topology::ensure(&client, &js, &config, &names).await?;
        let config = Arc::new(config);
        Ok(Ops {
            config,
            names,
            redis: None,
            store: None,
            nats: Some(client),
            js: Some(js),
            ctx: None,
            http: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn store(&self) -> Result<&SubscriptionStore, OpsError> {
        self.store.as_ref().ok_or(OpsError::Backend(BackendError::NotConnected("redis")))
    }

    fn redis(&self) -> Result<&RedisConn, OpsError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(t: &str) -> TenantId {
        t.parse().unwrap()
    }

    #[test]
    fn a_tenant_scope_sees_only_its_tenant_and_an_admin_everything() {
        let acme = Scope::Tenant(tenant("acme"));
        assert!(acme.sees(Some("acme")));
        assert!(!acme.sees(Some("globex")));
        assert!(!acme.sees(None), "tenant-less resources are the admin's");
        assert!(Scope::Admin.sees(None) && Scope::Admin.sees(Some("globex")));
    }

    #[test]
    fn new_resources_get_the_scopes_tenant_and_asking_for_another_names_tenant_id() {
        let acme = Scope::Tenant(tenant("acme"));
        assert_eq!(acme.scope_tenant(None, "x").unwrap(), Some(tenant("acme")));
        assert_eq!(acme.scope_tenant(Some(tenant("acme")), "x").unwrap(), Some(tenant("acme")));
        let err = acme.scope_tenant(Some(tenant("globex")), "publish events").unwrap_err();
        assert_eq!(err.field(), Some("tenant_id"));
        assert_eq!(Scope::Admin.scope_tenant(None, "x").unwrap(), None);
        assert_eq!(Scope::Admin.scope_tenant(Some(tenant("g")), "x").unwrap(), Some(tenant("g")));
    }
}
