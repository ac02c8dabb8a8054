//! Load generation: events published to JetStream (as fast as it acks them, or at a fixed
//! offered rate) and the baseline HTTP load (hookline's own reqwest client POSTing straight to
//! the receiver).
//!
//! Every event is a `WebhookEvent` of type [`EVENT_TYPE`] whose webhook body is exactly
//! [`BODY_BYTES`] long and carries `"sent_ns"` (unix nanoseconds taken just before the publish)
//! for the receiver's publish->receipt latency. `Nats-Msg-Id` is the event id, as the README
//! tells publishers to do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The receiver is on loopback, which SSRF protection refuses unless allowed.
pub const LOOPBACK_ALLOWED: &str = "[egress]\nallow_cidrs = [\"127.0.0.0/8\"]";

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};

use crate::receiver::Percentiles;

/// The type of every benchmark event.
pub const EVENT_TYPE: &str = "bench.created";
/// Size of the webhook body a receiver gets (the issue's "~300 B").
pub const BODY_BYTES: usize = 300;
/// Padding that makes the body [`BODY_BYTES`] long (see the unit test).
const PAD: usize = 193;
/// Publish acks outstanding at once when publishing as fast as possible.
const ACK_WINDOW: usize = 2048;

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// The JSON of event `id`, stamped now.
pub fn event_json(id: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"{EVENT_TYPE}","payload":{{"sent_ns":{},"pad":"{}"}},"occurred_at":"2026-01-01T00:00:00Z","source":"hookline-bench"}}"#,
        now_ns(),
        "x".repeat(PAD)
    )
}

/// A JetStream publisher of benchmark events on `<prefix>.events.bench.created`.
pub struct Publisher {
    js: jetstream::Context,
    subject: String,
}

/// How a burst went.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub count: u64,
    pub elapsed: Duration,
}

/// Connects to `nats_url`: one URL, or a cluster's, comma-separated (async-nats parses one
/// string as one URL).
pub async fn nats_connect(nats_url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let servers: Vec<&str> = nats_url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    async_nats::connect(servers.as_slice()).await
}

impl Publisher {
    pub async fn connect(nats_url: &str, prefix: &str) -> anyhow::Result<Publisher> {
        let client =
            nats_connect(nats_url).await.with_context(|| format!("connecting to {nats_url}"))?;
        let js = jetstream::ContextBuilder::new().max_ack_inflight(ACK_WINDOW * 2).build(client);
        Ok(Publisher { js, subject: format!("{prefix}.events.{EVENT_TYPE}") })
    }

    async fn send(&self, id: String) -> anyhow::Result<jetstream::context::PublishAckFuture> {
        let publish = PublishMessage::build().payload(event_json(&id).into()).message_id(id);
        self.js.send_publish(self.subject.clone(), publish).await.context("publishing an event")
    }

    /// Publishes events `<tag>-<n>` for n in `range`, acks awaited in a sliding window.
    pub async fn burst(&self, tag: &str, range: std::ops::Range<u64>) -> anyhow::Result<Published> {
        let started = Instant::now();
        let mut acks = VecDeque::with_capacity(ACK_WINDOW);
        for n in range.clone() {
            acks.push_back(self.send(format!("{tag}-{n}")).await?);
            if acks.len() >= ACK_WINDOW {
                acks.pop_front()
                    .expect("window is not empty")
                    .await
                    .context("awaiting a publish ack")?;
            }
        }
        for ack in acks {
            ack.await.context("awaiting a publish ack")?;
        }
        Ok(Published { count: range.end - range.start, elapsed: started.elapsed() })
    }

    /// Publishes events `<tag>-<n>` for n in `range` at `rate` per second (open loop: the
    /// schedule does not wait for acks, which are awaited on the side).
    pub async fn paced(
        &self,
        tag: &str,
        range: std::ops::Range<u64>,
        rate: f64,
    ) -> anyhow::Result<Published> {
        let started = Instant::now();
        let start = tokio::time::Instant::now();
        let mut pending = tokio::task::JoinSet::new();
        for (i, n) in range.clone().enumerate() {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
            let ack = self.send(format!("{tag}-{n}")).await?;
            pending.spawn(async move { ack.await.map(|_| ()) });
            while let Some(done) = pending.try_join_next() {
                done?.context("awaiting a publish ack")?;
            }
        }
        while let Some(done) = pending.join_next().await {
            done?.context("awaiting a publish ack")?;
        }
        Ok(Published { count: range.end - range.start, elapsed: started.elapsed() })
    }
}

/// What the baseline load measured.
pub struct BaselineResult {
    /// Requests answered 2xx.
    pub requests: u64,
    /// Requests that failed or were not answered 2xx.
    pub errors: u64,
    /// The first of those failures, for the report.
    pub first_error: Option<String>,
    /// The `webhook-id`s of the requests answered 2xx: pairs the receiver must have.
    pub delivered_ids: Vec<String>,
    pub elapsed: Duration,
    pub latency_us: Percentiles,
}

/// `concurrency` closed-loop workers POST a [`BODY_BYTES`] webhook to `url` for `duration`
/// with hookline's own HTTP client (same builder, same settings) and the same headers.
pub async fn baseline(
    url: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<BaselineResult> {
    let config = hookline::config::Config::with_overrides(LOOPBACK_ALLOWED)?;
    let egress = hookline::egress::EgressPolicy::from_config(&config.egress)?;
    let client = hookline::egress::client::http_client(&config.delivery, egress.into())?;
    let body = bytes::Bytes::from(format!(
        r#"{{"type":"{EVENT_TYPE}","timestamp":"2026-01-01T00:00:00Z","data":{{"pad":"{}","sent_ns":{}}}}}"#,
        "x".repeat(PAD),
        now_ns()
    ));
    let signature = format!("v1,{}", "A".repeat(44));
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, body, signature) =
            (client.clone(), url.to_string(), body.clone(), signature.clone());
        let (counter, errors) = (counter.clone(), errors.clone());
        workers.spawn(async move {
            let (mut latencies, mut ids, mut first_error) = (Vec::new(), Vec::new(), None);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let id = format!("bl-{n}");
                let t = Instant::now();
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", id.as_str())
                    .header("webhook-timestamp", "1767225600")
                    .header("webhook-signature", signature.as_str())
                    .body(body.clone())
                    .send()
                    .await;
                let failure = match sent {
                    Ok(r) if r.status().is_success() => match r.bytes().await {
                        Ok(_) => None,
                        Err(e) => Some(format!("{id}: reading the answer: {e}")),
                    },
                    Ok(r) => Some(format!("{id}: answered {}", r.status())),
                    Err(e) => Some(format!("{id}: {e}")),
                };
                match failure {
                    None => {
                        latencies.push(t.elapsed().as_micros() as u64);
                        ids.push(id);
                    }
                    Some(failure) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(failure);
                    }
                }
            }
            (latencies, ids, first_error)
        });
    }
    let (mut all, mut delivered_ids, mut first_error) = (Vec::new(), Vec::new(), None);
    while let Some(done) = workers.join_next().await {
        let (latencies, ids, error) = done?;
        all.extend(latencies);
        delivered_ids.extend(ids);
        first_error = first_error.or(error);
    }
    let elapsed = started.elapsed();
    Ok(BaselineResult {
        requests: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        first_error,
        delivered_ids,
        elapsed,
        latency_us: Percentiles::of(&mut all),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_body_is_exactly_the_advertised_size() {
        let event = event_json("t-1");
        let parsed =
            hookline::event::WebhookEvent::parse(event.as_bytes(), EVENT_TYPE, 1 << 20).unwrap();
        assert_eq!(parsed.webhook_body().len(), BODY_BYTES);
    }
}
