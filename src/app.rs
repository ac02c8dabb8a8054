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
    /// The admin HTTP API.
    Api,
}

/// A built hookline process, ready to run.
pub struct App {
    ctx: Ctx,
    keeper: crate::store::subscriptions::sync::Keeper,
    roles: Vec<Role>,
    api: Option<tokio::net::TcpListener>,
}

impl App {
    /// Connects to NATS and Redis and creates or updates streams and consumers.
    pub async fn build(config: Config, roles: &[Role]) -> anyhow::Result<App> {
        let ctx = Ctx::connect(config).await?;
        crate::topology::ensure(&ctx.nats, &ctx.js, &ctx.config, &ctx.names)
            .await
            .context("preparing JetStream streams and consumers")?;
        let mut keeper = ctx.index_keeper();
        keeper.prepare().await.context("preparing the subscription index in redis")?;
        let mut roles = roles.to_vec();
        if roles.is_empty() {
            roles = vec![Role::Fanout, Role::Deliver, Role::Api];
        }
        let api = if roles.contains(&Role::Api) {
            let addr = ctx.config.api.listen;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the admin api to {addr}"))?;
            Some(listener)
        } else {
            None
        };
        Ok(App { ctx, keeper, roles, api })
    }

    /// Where the admin API listens (port 0 in the config resolves here), if it runs.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        self.api.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared handles (for tests and the CLI).
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Runs every role until `shutdown` fires and in-flight work has finished (or the grace
    /// period has passed).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        {
            let keeper = self.keeper;
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                keeper.run(shutdown).await;
                Ok(())
            });
        }
        if let Some(listener) = self.api {
            let router = crate::admin_api::router(self.ctx.clone(), shutdown.clone());
            let shutdown = shutdown.clone();
            match listener.local_addr() {
                Ok(addr) => tracing::info!(%addr, "admin api listening"),
                Err(e) => tracing::warn!(error = %e, "admin api listening; its address is unknown"),
            }
            tasks.spawn(async move {
                crate::admin_api::serve(listener, router, shutdown)
                    .await
                    .context("serving the admin api")
            });
        }
        {
            // Idle in-flight leases go back to Redis, for the other processes.
            let (ctx, shutdown) = (self.ctx.clone(), shutdown.clone());
            tasks.spawn(async move {
                crate::pipeline::deliver::sweep_leases(ctx, shutdown).await;
                Ok(())
            });
        }
        for role in self.roles.into_iter().filter(|r| *r != Role::Api) {
            let ctx = self.ctx.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { run_role(ctx, role, shutdown).await });
        }
        {
            // Handlers waiting for a first attempt stop handing it over: they see it through.
            let (shutdown, stopping) = (shutdown.clone(), self.ctx.stopping.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                stopping.cancel();
            });
        }
        tracing::info!(prefix = %self.ctx.names.prefix(), "hookline running");
        while let Some(result) = tasks.join_next().await {
            result.context("a role task panicked")??;
        }
        // First attempts the fan-out handed over are still POSTing: let them record their
        // outcome (their delivery messages are stored either way).
        let first_attempts =
            u32::try_from(self.ctx.config.delivery.concurrency).unwrap_or(u32::MAX);
        let grace = self.ctx.config.shutdown.grace_period;
        if tokio::time::timeout(grace, self.ctx.first_attempts.acquire_many(first_attempts))
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "first attempts still running after the grace period; their delivery messages will make them"
            );
        }
        crate::pipeline::deliver::return_all_leases(&self.ctx).await;
        self.ctx.attempts.flush().await;
        // The spans of the last deliveries, queued for export.
        self.ctx.otel.shutdown().await;
        // Acks are fire-and-forget publishes: push the last ones out before the process ends.
        if let Err(e) = self.ctx.nats.flush().await {
            tracing::warn!(error = %e, "could not flush the last acks; those messages will be redelivered");
        }
        tracing::info!("hookline stopped");
        Ok(())
    }
}

async fn run_role(ctx: Ctx, role: Role, shutdown: CancellationToken) -> anyhow::Result<()> {
    let grace = ctx.config.shutdown.grace_period;
    match role {
        Role::Fanout => {
            let consumer =
                open_consumer(&ctx, ctx.names.events_stream(), ctx.names.fanout_consumer()).await?;
            let n = ctx.config.delivery.fanout_concurrency;
            let ctx = Arc::new(ctx);
            worker::run("fanout", consumer, n, grace, shutdown, move |msg| {
                let ctx = ctx.clone();
                async move { fanout::handle(&ctx, &msg).await }
            })
            .await
        }
        Role::Deliver => {
            let names = &ctx.names;
            let mut consumers = Vec::new();
            for k in 0..names.partitions() {
                let (stream, consumer) =
                    (names.deliveries_stream_at(k), names.deliver_consumer_at(k));
                consumers.push(open_consumer(&ctx, stream, consumer).await?);
            }
            let n = partition_concurrency(ctx.config.delivery.concurrency, consumers.len());
            let ctx = Arc::new(ctx);
            let fifo = tokio::spawn(crate::pipeline::fifo::supervise(
                ctx.clone(),
                grace,
                shutdown.clone(),
            ));
            let loops = consumers.into_iter().map(|consumer| {
                let ctx = ctx.clone();
                worker::run("deliver", consumer, n, grace, shutdown.clone(), move |msg| {
                    let ctx = ctx.clone();
                    async move { deliver::handle(&ctx, &msg).await }
                })
            });
            futures::future::join_all(loops).await;
            fifo.await.context("the fifo supervisor panicked")?;
        }
        Role::Api => {}
    }
    Ok(())
}

async fn open_consumer(
    ctx: &Ctx,
    stream: String,
    consumer: String,
) -> anyhow::Result<async_nats::jetstream::consumer::PullConsumer> {
    ctx.js
        .get_consumer_from_stream(&consumer, &stream)
        .await
        .with_context(|| format!("opening consumer {consumer} on {stream}"))
}

/// Each partition's share of `delivery.concurrency`, rounded up: a process holds at most
/// `concurrency + partitions - 1` deliveries in flight however the work is spread.
fn partition_concurrency(concurrency: usize, partitions: usize) -> usize {
    concurrency.div_ceil(partitions.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::partition_concurrency;

    #[test]
    fn concurrency_is_shared_between_partitions() {
        assert_eq!(partition_concurrency(256, 1), 256);
        assert_eq!(partition_concurrency(256, 3), 86);
        assert_eq!(partition_concurrency(2, 3), 1);
    }
}
