//! Chaos run steps around the faults: creating subscriptions, waiting for consumers and
//! running instances, publishing batches, finding a stream leader.

use std::time::Instant;

use hookline::event::WebhookEvent;
use hookline::store::subscriptions::SubscriptionInput;
use hookline::subjects::Names;

use crate::flaky::{Endpoint, FlakyReceiver};
use crate::fleet::Fleet;
use crate::harness::{eventually, eventually_true};
use crate::ledger::Sub;

use super::{EVENT_TYPE, Plan, Published, STEP_WAIT};

/// The name of the subscription no chaos event matches.
const UNMATCHED: &str = "unmatched";

pub(super) async fn create_subscriptions(
    toml: &str,
    receiver: &FlakyReceiver,
    plan: &Plan,
) -> Vec<Sub> {
    let config = hookline::config::Config::with_overrides(toml).expect("chaos config is valid");
    let store =
        hookline::context::subscription_store(&config).await.expect("nats and redis connect");
    let mut subs = Vec::new();
    let wanted = (0..plan.flaky_subs)
        .map(|i| (format!("f{i}"), Endpoint::Flaky))
        .chain((0..plan.dead_subs).map(|i| (format!("d{i}"), Endpoint::Dead)))
        .chain((0..plan.healthy_subs).map(|i| (format!("h{i}"), Endpoint::Healthy)));
    for (name, endpoint) in wanted {
        let input =
            SubscriptionInput { url: Some(receiver.url(&name, endpoint)), ..Default::default() };
        let sub = store.create(input).await.expect("subscription created");
        subs.push(Sub { name, id: sub.id, endpoint });
    }
    // One that no event matches: it must get no request (the ledger counts requests to names it
    // does not know), so a lookup that ignores the filter shows.
    let input = SubscriptionInput {
        url: Some(receiver.url(UNMATCHED, Endpoint::Healthy)),
        event_types: Some(vec![format!("{EVENT_TYPE}.never")]),
        ..Default::default()
    };
    store.create(input).await.expect("subscription created");
    subs
}

pub(super) async fn wait_for_consumers(
    js: &async_nats::jetstream::Context,
    names: &Names,
    fleet: &mut Fleet,
) {
    eventually(STEP_WAIT, "hookline's consumers exist", || {
        if let Err(crash) = fleet.supervise() {
            panic!("{crash}");
        }
        if fleet.faults.len() > 10 {
            panic!(
                "hookline keeps failing to start: {:?}",
                fleet.faults.iter().map(|f| &f.what).collect::<Vec<_>>()
            );
        }
        async {
            let stream = js.get_stream(names.deliveries_stream()).await.ok()?;
            stream.consumer_info(names.deliver_consumer()).await.ok()
        }
    })
    .await;
}

/// Publishes `n` more events, each retried (same id: JetStream drops a repeat) until stored.
pub(super) async fn publish_batch(
    js: &async_nats::jetstream::Context,
    names: &Names,
    events: &mut Published,
    n: usize,
    started: Instant,
) {
    for _ in 0..n {
        let event_id = format!("ev{:06}", events.len());
        let event = WebhookEvent {
            event_id: event_id.parse().unwrap(),
            event_type: EVENT_TYPE.parse().unwrap(),
            payload: serde_json::json!({"n": events.len()}),
            occurred_at: None,
            source: Some("chaos".into()),
            tenant_id: None,
            cloudevent: None,
        };
        eventually(STEP_WAIT, &format!("event {event_id} stored"), || async {
            hookline::ingest::publish_event(js, names, &event, 1 << 20).await.ok()
        })
        .await;
        events.push((event_id, started.elapsed()));
    }
}

pub(super) async fn stream_leader(js: &async_nats::jetstream::Context, stream: &str) -> String {
    eventually(STEP_WAIT, &format!("the leader of {stream}"), || async {
        let mut s = js.get_stream(stream).await.ok()?;
        s.info().await.ok()?.cluster.as_ref()?.leader.clone()
    })
    .await
}

/// Waits until a node other than `old` leads `stream`; returns it.
pub(super) async fn new_leader(
    js: &async_nats::jetstream::Context,
    stream: &str,
    old: &str,
) -> String {
    eventually(STEP_WAIT, &format!("a leader of {stream} other than {old}"), || async {
        let mut s = js.get_stream(stream).await.ok()?;
        let leader = s.info().await.ok()?.cluster.as_ref()?.leader.clone()?;
        (leader != old).then_some(leader)
    })
    .await
}

/// Waits until the restarted node `node` is a current replica (or the leader) of the events and
/// deliveries streams again.
pub(super) async fn wait_caught_up(js: &async_nats::jetstream::Context, names: &Names, node: &str) {
    for stream in [names.events_stream(), names.deliveries_stream()] {
        eventually_true(STEP_WAIT, &format!("node {node} current on {stream}"), || async {
            let Ok(mut s) = js.get_stream(&stream).await else { return false };
            let Ok(info) = s.info().await else { return false };
            info.cluster.as_ref().is_some_and(|c| {
                c.leader.as_deref() == Some(node)
                    || c.replicas.iter().any(|p| p.name == node && p.current && !p.offline)
            })
        })
        .await;
    }
}

/// Waits until every hookline instance runs; a crashed one fails the run.
pub(super) async fn wait_all_running(fleet: &mut Fleet) {
    eventually_true(STEP_WAIT, "every hookline instance running", || {
        if let Err(crash) = fleet.supervise() {
            panic!("{crash}");
        }
        let running = fleet.all_running();
        async move { running }
    })
    .await;
}
