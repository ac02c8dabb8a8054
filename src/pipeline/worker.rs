//! The consume loop shared by the fan-out and delivery roles: pull from a durable consumer,
//! run a bounded number of handlers at once, ack on success, NAK with a short delay on a
//! transient (NATS/Redis) failure so the message stays in JetStream.
//!
//! Shutdown: stop pulling, let in-flight handlers finish within the grace period, then return;
//! anything abandoned after the grace period is unacked and will be redelivered.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Transient;

/// How long a message waits after a transient failure before it is redelivered.
const TRANSIENT_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Runs `handler` over the consumer's messages until `shutdown` fires.
pub async fn run<H, Fut>(
    role: &'static str,
    consumer: PullConsumer,
    concurrency: usize,
    grace: Duration,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Arc<jetstream::Message>) -> Fut + Clone,
    Fut: Future<Output = Result<(), Transient>>,
{
    while !shutdown.is_cancelled() {
        let messages = consumer
            .stream()
            .max_messages_per_batch(concurrency.min(1000))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await;
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(role, error = %e, "cannot pull messages; trying again");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        let work =
            messages.take_until(shutdown.cancelled()).for_each_concurrent(concurrency, |item| {
                let handler = handler.clone();
                async move {
                    match item {
                        Ok(msg) => handle(role, msg, handler).await,
                        // MissingHeartbeat and friends while NATS is away: the stream resumes by
                        // itself after the reconnect.
                        Err(e) => tracing::warn!(role, error = %e, "pull consumer error"),
                    }
                }
            });
        tokio::pin!(work);
        tokio::select! {
            _ = &mut work => {}
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(role, ?grace, "grace period over; unfinished messages will be redelivered");
                return;
            }
        }
    }
}

async fn handle<H, Fut>(role: &'static str, msg: jetstream::Message, handler: H)
where
    H: Fn(Arc<jetstream::Message>) -> Fut,
    Fut: Future<Output = Result<(), Transient>>,
{
    let msg = Arc::new(msg);
    match handler(msg.clone()).await {
        Ok(()) => {
            if let Err(e) = msg.ack().await {
                tracing::warn!(role, error = %e, "ack failed; the message will be redelivered and deduplicated");
            }
        }
        Err(e) => {
            let delay = match &e {
                Transient::Hold { delay, .. } => {
                    tracing::debug!(role, reason = %e, ?delay, "message held");
                    *delay
                }
                Transient::Backend(backend) => {
                    crate::metrics::inc(
                        "hookline_transient_errors_total",
                        &[("role", role), ("backend", backend.label())],
                    );
                    tracing::warn!(role, error = %e, "transient failure; message stays in JetStream");
                    TRANSIENT_RETRY_DELAY
                }
            };
            if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(role, error = %e, "nak failed; the message will be redelivered after ack_wait");
            }
        }
    }
}

/// Sleeps, or returns early on shutdown.
async fn pause(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}
