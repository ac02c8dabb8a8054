//! FIFO subscriptions (`ordering = "fifo"`): each gets its own durable consumer on
//! `<p>.fifo.<sub>` (in the deliveries stream of the subscription's partition, when
//! partitioned) with one message in flight, so deliveries happen one at a time in publish
//! order across all processes. A failing head is held in place (NAK with the retry delay), which
//! blocks only that subscription; the shared consumer and every other subscription go on.
//!
//! The supervisor here, part of the delivery role, starts a consumer loop for each FIFO
//! subscription (from the Redis set `<p>:{subs}:idx:fifo`, re-read every few seconds) and stops the
//! loops of subscriptions that are no longer FIFO.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{deliver, worker};
use crate::context::Ctx;

/// How often the set of FIFO subscriptions is re-read.
const REFRESH: Duration = Duration::from_secs(2);

/// Runs until `shutdown`, then waits for the FIFO loops to finish.
pub async fn supervise(ctx: Arc<Ctx>, grace: Duration, shutdown: CancellationToken) {
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        // While the index is rebuilt its FIFO set may be incomplete: keep what runs.
        let ids = if ctx.sync.ready() {
            ctx.subscriptions.fifo_ids().await
        } else {
            Ok(running.keys().cloned().collect())
        };
        match ids {
            Ok(ids) => {
                let wanted: HashSet<String> = ids.into_iter().collect();
                for id in &wanted {
                    if running.contains_key(id) {
                        continue;
                    }
                    let token = shutdown.child_token();
                    match start(&ctx, id, grace, token.clone(), &mut tasks).await {
                        Ok(()) => {
                            running.insert(id.clone(), token);
                        }
                        Err(e) => {
                            tracing::warn!(subscription_id = %id, error = %e, "cannot start the fifo consumer; will retry")
                        }
                    }
                }
                running.retain(|id, token| {
                    let keep = wanted.contains(id);
                    if !keep {
                        token.cancel();
                    }
                    keep
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot list fifo subscriptions; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn start(
    ctx: &Arc<Ctx>,
    id: &str,
    grace: Duration,
    token: CancellationToken,
    tasks: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<()> {
    let stream = ctx.js.get_stream_no_info(ctx.names.deliveries_stream_of(id)).await?;
    let consumer = stream
        .create_consumer(crate::topology::fifo_consumer_config(&ctx.config, &ctx.names, id))
        .await?;
    tracing::info!(subscription_id = %id, "fifo consumer started");
    let ctx = ctx.clone();
    tasks.spawn(async move {
        worker::run("fifo", consumer, 1, grace, token, move |msg| {
            let ctx = ctx.clone();
            async move { deliver::handle(&ctx, &msg).await }
        })
        .await
    });
    Ok(())
}
