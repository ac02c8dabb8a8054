//! Composition: [`App::build`] connects, ensures the topology and prepares the consumers of the
//! selected roles; [`App::run`] runs them until the cancellation token fires, then drains.

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::Ctx;
use crate::pipeline::{deliver, fanout, worker};

/// A part of hookline that can run (and scale) on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    /// Events stream -> one delivery per matching subscription.
    Fanout,
    /// Deliveries -> signed POST -> ack, retry or DLQ.
    Deliver,
}

/// A built hookline process, ready to run.
pub struct App {
    ctx: Ctx,
    roles: Vec<Role>,
}

impl App {
    /// Connects to NATS and Redis and creates or updates streams and consumers.
    pub async fn build(config: Config, roles: &[Role]) -> anyhow::Result<App> {
        let ctx = Ctx::connect(config).await?;
        crate::topology::ensure(&ctx.nats, &ctx.js, &ctx.config, &ctx.names)
            .await
            .context("preparing JetStream streams and consumers")?;
        let mut roles = roles.to_vec();
        if roles.is_empty() {
            roles = vec![Role::Fanout, Role::Deliver];
        }
        Ok(App { ctx, roles })
    }

    /// The shared handles (for tests and the CLI).
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Runs every role until `shutdown` fires and in-flight work has finished (or the grace
    /// period has passed).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for role in self.roles {
            let ctx = self.ctx.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { run_role(ctx, role, shutdown).await });
        }
        tracing::info!(prefix = %self.ctx.names.prefix(), "hookline running");
        while let Some(result) = tasks.join_next().await {
            result.context("a role task panicked")??;
        }
        tracing::info!("hookline stopped");
        Ok(())
    }
}

async fn run_role(ctx: Ctx, role: Role, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (stream, consumer) = match role {
        Role::Fanout => (ctx.names.events_stream(), ctx.names.fanout_consumer()),
        Role::Deliver => (ctx.names.deliveries_stream(), ctx.names.deliver_consumer()),
    };
    let consumer: async_nats::jetstream::consumer::PullConsumer = ctx
        .js
        .get_consumer_from_stream(&consumer, &stream)
        .await
        .with_context(|| format!("opening consumer {consumer} on {stream}"))?;
    let grace = ctx.config.shutdown.grace_period;
    let ctx = Arc::new(ctx);
    match role {
        Role::Fanout => {
            let n = ctx.config.delivery.fanout_concurrency;
            worker::run("fanout", consumer, n, grace, shutdown, move |msg| {
                let ctx = ctx.clone();
                async move { fanout::handle(&ctx, &msg).await }
            })
            .await
        }
        Role::Deliver => {
            let n = ctx.config.delivery.concurrency;
            worker::run("deliver", consumer, n, grace, shutdown, move |msg| {
                let ctx = ctx.clone();
                async move { deliver::handle(&ctx, &msg).await }
            })
            .await
        }
    }
    Ok(())
}
