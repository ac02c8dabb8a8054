//! Delivering once: a duplicate event id, a redelivered copy after success, and two copies
//! of one delivery due at once (succeeding or failing).

use std::time::Duration;

use async_nats::HeaderMap;
use hookline::event::{Delivery, WebhookEvent};

use crate::harness::eventually_true;
use crate::harness::receiver::Reply;
use crate::world::{WAIT, World};

#[tokio::test]
async fn duplicate_event_id_inside_the_window_is_delivered_once() {
    let w = World::start().await;
    w.subscribe("/a", &[], None).await;
    w.subscribe("/b", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    w.publish("order.created", "evt_dup", None).await;
    w.publish("order.created", "evt_dup", None).await;
    // A publisher that forgot Nats-Msg-Id: the deliveries' ids still dedupe.
    let body =
        serde_json::json!({"event_id": "evt_dup", "event_type": "order.created", "payload": {}});
    w.publish_raw(&w.names.event("order.created"), serde_json::to_vec(&body).unwrap()).await;
    w.publish("order.created", "evt_marker", None).await;
    eventually_true(WAIT, "marker delivered to both", || async {
        let marker = |p: &str| {
            w.receiver.requests_for(p).iter().any(|r| r.header("webhook-id") == Some("evt_marker"))
        };
        marker("/a") && marker("/b")
    })
    .await;
    eventually_true(WAIT, "events consumed", || async {
        let info = w.fanout_consumer_info().await;
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    for path in ["/a", "/b"] {
        let dups = w
            .receiver
            .requests_for(path)
            .iter()
            .filter(|r| r.header("webhook-id") == Some("evt_dup"))
            .count();
        assert_eq!(dups, 1, "{path} got evt_dup once");
    }
    app.stop().await;
}

#[tokio::test]
async fn redelivered_copy_after_success_is_acked_without_a_second_post() {
    let w = World::start().await;
    let sub = w.subscribe("/once", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    w.publish("order.created", "evt_once", None).await;
    let reqs = w.receiver.wait_for_requests("/once", 1, WAIT).await;
    assert_eq!(reqs.len(), 1);
    // What JetStream would redeliver if the process had died before its ack: the same delivery.
    let delivery = Delivery {
        event: WebhookEvent::parse(
            &serde_json::to_vec(&serde_json::json!({
                "event_id": "evt_once", "event_type": "order.created", "payload": {"n": "evt_once"}
            }))
            .unwrap(),
            "order.created",
            1 << 20,
        )
        .unwrap(),
        subscription_id: sub.id.parse().unwrap(),
    };
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", "copy-after-crash");
    w.js()
        .await
        .publish_with_headers(w.names.deliver(&sub.id), h, delivery.to_bytes().into())
        .await
        .unwrap()
        .await
        .unwrap();
    w.publish("order.created", "evt_after", None).await;
    w.receiver.wait_for_requests("/once", 2, WAIT).await;
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    let ids: Vec<_> = w
        .receiver
        .requests_for("/once")
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(ids, ["evt_once", "evt_after"], "the copy was acked without a POST");
    app.stop().await;
}

#[tokio::test]
async fn two_copies_of_one_delivery_due_at_once_make_one_post() {
    // Two copies of one delivery in the stream at the same moment, as a NATS restart leaves
    // them (a retry republished after its schedule fired, or a redelivery when `ack_wait` ran
    // out): each must not pass the inbox check while the other's POST is still out.
    let w = World::start().await;
    let sub = w.subscribe("/slow", &[], None).await;
    w.receiver.set_default("/slow", Reply::Delay(Duration::from_millis(800)));
    let delivery = Delivery {
        event: WebhookEvent::parse(
            &serde_json::to_vec(&serde_json::json!({
                "event_id": "evt_twice", "event_type": "order.created", "payload": {}
            }))
            .unwrap(),
            "order.created",
            1 << 20,
        )
        .unwrap(),
        subscription_id: sub.id.parse().unwrap(),
    };
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    let js = w.js().await;
    // The second is stored while the first one's POST (800 ms) is still out.
    for copy in ["copy-a", "copy-b"] {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", copy);
        js.publish_with_headers(w.names.deliver(&sub.id), h, delivery.to_bytes().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    w.receiver.wait_for_requests("/slow", 1, WAIT).await;
    eventually_true(WAIT, "both copies handled", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert_eq!(w.receiver.count("/slow"), 1, "one POST for two copies of one delivery");
    assert!(w.dlq(Some(&sub.id)).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn two_copies_of_one_delivery_that_both_fail_make_one_dlq_entry_and_a_redelivery_its_own() {
    // The second copy a NATS restart can leave behind exhausts its attempts too: its DLQ entry
    // is the first one's. A delivery re-queued from the DLQ that fails again is a new entry.
    let w = World::start().await;
    let sub = w.subscribe("/down", &[], None).await;
    w.receiver.set_default("/down", Reply::Status(500));
    let app = w.start_app(w.config("\"0s\"")).await;
    let delivery = Delivery {
        event: WebhookEvent::parse(
            br#"{"event_id": "evt_dead_twice", "event_type": "order.created", "payload": {}}"#,
            "order.created",
            1 << 20,
        )
        .unwrap(),
        subscription_id: sub.id.parse().unwrap(),
    };
    let js = w.js().await;
    for (n, copy) in ["copy-a", "copy-b"].into_iter().enumerate() {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", copy);
        js.publish_with_headers(w.names.deliver(&sub.id), h, delivery.to_bytes().into())
            .await
            .unwrap()
            .await
            .unwrap();
        w.receiver.wait_for_requests("/down", n + 1, WAIT).await;
        eventually_true(WAIT, "the copy handled", || async {
            w.stream_messages(&w.names.deliveries_stream()).await == 0
        })
        .await;
    }
    let entries = w.wait_for_dlq(Some(&sub.id), 1).await;
    assert_eq!(entries.len(), 1, "one entry for two copies: {entries:?}");
    let first = entries[0].sequence;
    hookline::pipeline::dlq::redeliver(&js, &w.names, first).await.unwrap();
    w.receiver.wait_for_requests("/down", 3, WAIT).await;
    eventually_true(WAIT, "the redelivered copy dead-lettered again", || async {
        let entries = w.dlq(Some(&sub.id)).await;
        entries.len() == 1 && entries[0].sequence != first
    })
    .await;
    app.stop().await;
}
