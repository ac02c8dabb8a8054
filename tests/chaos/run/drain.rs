//! The end of a chaos run: draining the pipeline until nothing is left or it has settled, and
//! the orphans left in the deliveries stream.

use std::time::{Duration, Instant};

use hookline::subjects::Names;

use crate::fleet::Fleet;
use crate::harness::eventually;

use super::{DRAIN_WAIT, say};

/// Waits until nothing is left to do: no message in the deliveries stream (due deliveries and
/// scheduled retries alike) and none pending or unacked on either consumer. Also done when the
/// consumers are idle and the stream has not changed for [`SETTLE`]: what is left then is
/// orphaned (see [`leftovers`]); the ledger tells whether any of it mattered. `Err` describes
/// what was still moving at the deadline.
pub(super) async fn drain(
    js: &async_nats::jetstream::Context,
    names: &Names,
    fleet: &mut Fleet,
) -> Result<Vec<Orphan>, String> {
    let what = "the pipeline drained or settled";
    let started = Instant::now();
    let last = std::sync::Mutex::new((Instant::now(), None::<(u64, Instant)>));
    let drained = tokio::time::timeout(
        DRAIN_WAIT,
        eventually(DRAIN_WAIT * 2, what, || {
            if let Err(crash) = fleet.supervise() {
                panic!("{crash}");
            }
            let last = &last;
            async move {
                let state = pipeline_state(js, names).await;
                if state.messages == 0 && state.idle {
                    return Some(Vec::new());
                }
                // The lock is never held across an await: settled is decided, then it is released.
                let settled = {
                    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                    let unchanged_since = match last.1 {
                        Some((messages, since)) if state.idle && messages == state.messages => {
                            since
                        }
                        _ => Instant::now(),
                    };
                    last.1 = state.idle.then_some((state.messages, unchanged_since));
                    if last.0.elapsed() >= Duration::from_secs(10) {
                        say(&format!(
                            "chaos: still draining after {:.0}s: {}",
                            started.elapsed().as_secs_f64(),
                            state.describe
                        ));
                        last.0 = Instant::now();
                    }
                    unchanged_since.elapsed() >= SETTLE
                };
                if settled {
                    return Some(leftovers(js, names).await);
                }
                None
            }
        }),
    )
    .await;
    match drained {
        Ok(leftovers) => Ok(leftovers),
        Err(_) => Err(pipeline_state(js, names).await.describe),
    }
}

/// How long idle consumers and an unchanged deliveries stream count as settled.
const SETTLE: Duration = Duration::from_secs(30);

/// The pipeline at one moment.
struct PipelineState {
    /// Messages in the deliveries stream.
    messages: u64,
    /// Nothing pending or unacked on either consumer.
    idle: bool,
    describe: String,
}

async fn pipeline_state(js: &async_nats::jetstream::Context, names: &Names) -> PipelineState {
    let mut left = Vec::new();
    let mut messages = u64::MAX;
    match js.get_stream(names.deliveries_stream()).await {
        Ok(mut s) => match s.info().await.map(|i| i.state.messages) {
            Ok(n) => {
                messages = n;
                if n > 0 {
                    left.push(format!("{n} messages in {}", names.deliveries_stream()));
                }
            }
            Err(e) => left.push(format!("stream info: {e}")),
        },
        Err(e) => left.push(format!("stream: {e}")),
    }
    let mut idle = true;
    for (stream, consumer) in [
        (names.events_stream(), names.fanout_consumer()),
        (names.deliveries_stream(), names.deliver_consumer()),
    ] {
        let info = match js.get_stream(&stream).await {
            Ok(s) => s.consumer_info(&consumer).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match info {
            Ok(c) if c.num_pending == 0 && c.num_ack_pending == 0 => {}
            Ok(c) => {
                idle = false;
                left.push(format!(
                    "{consumer}: {} pending, {} unacked",
                    c.num_pending, c.num_ack_pending
                ));
            }
            Err(e) => {
                idle = false;
                left.push(format!("{consumer}: {e}"));
            }
        }
    }
    PipelineState {
        messages,
        idle,
        describe: if left.is_empty() { "drained".into() } else { left.join("; ") },
    }
}

/// A message left in the deliveries stream after the drain, that no consumer delivers.
#[derive(Debug)]
pub struct Orphan {
    /// Subject, attempt and schedule headers, when it was stored.
    pub describe: String,
    /// (subscription id, event id) from its body, if it is a delivery.
    pub pair: Option<(String, String)>,
    /// Its pair is one of the run's and was delivered or dead-lettered all the same.
    pub resolved: bool,
}

/// Messages left in the deliveries stream that no consumer will deliver (at most 1000).
async fn leftovers(js: &async_nats::jetstream::Context, names: &Names) -> Vec<Orphan> {
    let Ok(stream) = js.get_stream(names.deliveries_stream()).await else {
        return vec![Orphan { describe: "stream unavailable".into(), pair: None, resolved: false }];
    };
    let mut out = Vec::new();
    let mut next = 1;
    while out.len() < 1000 {
        let Ok(msg) = stream.direct_get_next_for_subject(">", Some(next)).await else { break };
        next = msg.sequence + 1;
        let h = |name: &str| msg.headers.get(name).map(|v| v.to_string()).unwrap_or_default();
        let pair = hookline::event::Delivery::parse(&msg.payload)
            .ok()
            .map(|d| (d.subscription_id.into_string(), d.event.event_id.into_string()));
        out.push(Orphan {
            describe: format!(
                "{} seq={}: attempt={} schedule={:?} stored={}",
                msg.subject,
                msg.sequence,
                h("Hookline-Attempt"),
                h("Nats-Schedule"),
                msg.time
            ),
            pair,
            resolved: false,
        });
    }
    out
}
