//! Chaos run steps around the faults: creating subscriptions, waiting for consumers and
//! running instances, publishing batches, finding a stream leader.

use std::time::Instant;

use hookline::event::WebhookEvent;
use hookline::store::subscriptions::SubscriptionInput;
use hookline::subjects::Names;

use crate::flaky::FlakyReceiver;
use crate::fleet::Fleet;
use crate::harness::{eventually, eventually_true};
use crate::ledger::Sub;

use super::{EVENT_TYPE, Plan, Published, STEP_WAIT};

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
        .map(|i| (format!("f{i}"), false))
        .chain((0..plan.dead_subs).map(|i| (format!("d{i}"), true)));
    for (name, dead) in wanted {
        let input =
            SubscriptionInput { url: Some(receiver.url(&name, dead)), ..Default::default() };
        let sub = store.create(input).await.expect("subscription created");
        subs.push(Sub { name, id: sub.id });
    }
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
