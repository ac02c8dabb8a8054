//! Delivery under stress: unbounded fan-out, refused connections, a Redis outage, and
//! subscription changes made by another process.

use std::time::Duration;

use hookline::event::{Delivery, WebhookEvent};

use crate::harness::eventually_true;
use crate::world::{WAIT, World, assert_signed};

#[tokio::test]
async fn fan_out_has_no_cap_on_the_number_of_matching_subscriptions() {
    let w = World::start().await;
    const SUBS: usize = 1_200; // more than one publish chunk of the fan-out
    let store = w.store().await;
    for i in 0..SUBS {
        let input = hookline::store::subscriptions::SubscriptionInput {
            url: Some(w.receiver.url(&format!("/many/{i}"))),
            event_types: Some(vec!["bulk.*".into()]),
            ..Default::default()
        };
        store.create(input).await.unwrap();
    }
    let app = w.start_app(w.config("\"0s\"")).await;
    w.publish("bulk.created", "evt_bulk", None).await;
    eventually_true(Duration::from_secs(60), "a delivery to every subscription", || async {
        w.receiver.requests().len() >= SUBS
    })
    .await;
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    let paths: std::collections::HashSet<String> =
        w.receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), SUBS);
    assert_eq!(w.receiver.requests().len(), SUBS, "exactly one each");
    app.stop().await;
}

#[tokio::test]
async fn connection_refused_is_retried_and_dead_lettered_with_the_error() {
    let w = World::start().await;
    let port = crate::harness::free_port();
    let input = hookline::store::subscriptions::SubscriptionInput {
        url: Some(format!("http://127.0.0.1:{port}/nobody-home")),
        ..Default::default()
    };
    let sub = w.store().await.create(input).await.unwrap();
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    w.publish("order.created", "evt_refused", None).await;
    let entries = w.wait_for_dlq(Some(&sub.id), 1).await;
    assert_eq!((entries[0].attempts, entries[0].last_status), (2, None));
    assert!(entries[0].detail.contains("connection failed"), "{}", entries[0].detail);
    app.stop().await;
}

#[tokio::test]
async fn redis_outage_pauses_delivery_and_it_resumes_without_a_restart() {
    let redis = crate::harness::redis::RedisServer::start_persistent().await;
    let mut w = World::start_with(redis).await;
    w.subscribe("/after-outage", &[], None).await;
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    w.publish("order.created", "evt_before", None).await;
    w.receiver.wait_for_requests("/after-outage", 1, WAIT).await;
    w.redis.kill().await;
    w.publish("order.created", "evt_during", None).await;
    // While Redis is down the event waits in JetStream (fan-out cannot look up subscriptions).
    eventually_true(WAIT, "fan-out retried the event at least once", || async {
        let info = w.fanout_consumer_info().await;
        info.num_redelivered > 0 || info.num_ack_pending > 0
    })
    .await;
    assert_eq!(w.receiver.count("/after-outage"), 1);
    w.redis.restart().await;
    let reqs = w.receiver.wait_for_requests("/after-outage", 2, Duration::from_secs(30)).await;
    assert_eq!(reqs[1].header("webhook-id"), Some("evt_during"));
    assert!(w.dlq(None).await.is_empty(), "an outage is not the event's fault");
    app.stop().await;
}

/// The delivery path caches subscriptions in-process; every change made elsewhere (here: a
/// store of the test's own, as another process or the CLI would) must be seen by the very next
/// event or delivery.
#[tokio::test]
async fn subscription_changes_made_elsewhere_are_seen_by_the_next_event_and_delivery() {
    let w = World::start().await;
    let sub = w.subscribe("/before", &["order.created"], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let store = w.store().await;
    w.publish("order.created", "evt_c1", None).await;
    w.receiver.wait_for_requests("/before", 1, WAIT).await;

    // New URL and filters, and a new secret: the next events follow them.
    let input = hookline::store::subscriptions::SubscriptionInput {
        url: Some(w.receiver.url("/after")),
        event_types: Some(vec!["order.created".into(), "order.paid".into()]),
        ..Default::default()
    };
    store.update(&sub.id, input).await.unwrap();
    let rotated = store.rotate_secret(&sub.id, Duration::ZERO).await.unwrap();
    w.publish("order.created", "evt_c2", None).await;
    w.publish("order.paid", "evt_c3", None).await;
    let reqs = w.receiver.wait_for_requests("/after", 2, WAIT).await;
    let mut ids: Vec<&str> = reqs.iter().map(|r| r.header("webhook-id").unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["evt_c2", "evt_c3"]);
    for req in &reqs {
        assert_signed(req, &rotated);
        assert!(
            hookline::verify(
                sub.current_secret(),
                req.header("webhook-id").unwrap(),
                req.header("webhook-timestamp").unwrap(),
                req.header("webhook-signature").unwrap(),
                &req.body,
                time::OffsetDateTime::now_utc().unix_timestamp(),
                300
            )
            .is_err(),
            "the replaced secret no longer signs"
        );
    }
    assert_eq!(w.receiver.count("/before"), 1);

    // Deactivated, then deleted: a delivery already queued is dead-lettered with the reason
    // that is true now, not what the cache held.
    let queued = |id: &str| Delivery {
        event: WebhookEvent {
            event_id: id.parse().unwrap(),
            event_type: "order.created".parse().unwrap(),
            payload: serde_json::json!(1),
            occurred_at: None,
            source: None,
            tenant_id: None,
            cloudevent: None,
        },
        subscription_id: sub.id.parse().unwrap(),
    };
    store.set_active(&sub.id, false).await.unwrap();
    w.publish_raw(&w.names.deliver(&sub.id), queued("evt_c4").to_bytes()).await;
    let entries = w.wait_for_dlq(Some(&sub.id), 1).await;
    assert_eq!(
        (entries[0].event_id.as_str(), entries[0].reason.as_str()),
        ("evt_c4", "subscription_inactive")
    );
    store.delete(&sub.id).await.unwrap();
    w.publish_raw(&w.names.deliver(&sub.id), queued("evt_c5").to_bytes()).await;
    let entries = w.wait_for_dlq(Some(&sub.id), 2).await;
    let reason = entries.iter().find(|e| e.event_id == "evt_c5").map(|e| e.reason.as_str());
    assert_eq!(reason, Some("unknown_subscription"));
    assert_eq!(w.receiver.count("/after"), 2, "nothing was posted after the deactivation");
    app.stop().await;
}
