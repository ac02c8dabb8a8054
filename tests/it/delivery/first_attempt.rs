//! The fan-out's own first attempt (`delivery.first_attempt_in_fanout`): a delivery its endpoint
//! takes at once costs no delivery message; a failure is retried from its schedule; a slow
//! endpoint's delivery is handed over to the deliverer and still reaches the endpoint once.

use std::time::Duration;

use crate::harness::eventually_true;
use crate::harness::receiver::Reply;
use crate::world::{WAIT, World, assert_signed};

/// Messages ever stored in the deliveries stream (its last sequence).
async fn deliveries_published(w: &World) -> u64 {
    let mut stream = w.js().await.get_stream(w.names.deliveries_stream()).await.unwrap();
    stream.info().await.expect("stream info").state.last_sequence
}

#[tokio::test]
async fn a_delivery_the_endpoint_takes_at_once_costs_no_delivery_message() {
    let w = World::start().await;
    let a = w.subscribe("/a", &[], None).await;
    let b = w.subscribe("/b", &["order.*"], None).await;
    let app = w.start_app(w.config("\"0s\", \"300ms\"")).await;
    for n in 0..3 {
        w.publish("order.created", &format!("evt_first_{n}"), None).await;
    }
    for (path, sub) in [("/a", &a), ("/b", &b)] {
        let reqs = w.receiver.wait_for_requests(path, 3, WAIT).await;
        for req in &reqs {
            assert_signed(req, sub);
        }
    }
    w.wait_until_idle().await;
    assert_eq!(deliveries_published(&w).await, 0, "no delivery message was published");
    for path in ["/a", "/b"] {
        assert_eq!(w.receiver.count(path), 3, "{path} got each event once");
    }
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_failed_first_attempt_is_retried_from_its_schedule() {
    let w = World::start().await;
    w.subscribe("/flaky", &[], None).await;
    w.receiver.script("/flaky", vec![Reply::Status(500)]);
    let app = w.start_app(w.config("\"0s\", \"300ms\"")).await;
    w.publish("order.created", "evt_flaky", None).await;
    let reqs = w.receiver.wait_for_requests("/flaky", 2, WAIT).await;
    assert!(reqs.iter().all(|r| r.header("webhook-id") == Some("evt_flaky")));
    w.wait_until_idle().await;
    assert_eq!(w.receiver.count("/flaky"), 2, "one failure, one success");
    // The retry went through JetStream (a message schedule and the message it fired), the first
    // attempt did not.
    assert_eq!(deliveries_published(&w).await, 2);
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_first_attempt_past_its_deadline_is_handed_over_and_delivered_once() {
    let w = World::start().await;
    w.subscribe("/slow", &[], None).await;
    w.receiver.set_default("/slow", Reply::Delay(Duration::from_millis(800)));
    let mut config = w.config("\"0s\", \"300ms\"");
    config.delivery.first_attempt_deadline = Duration::from_millis(150);
    let app = w.start_app(config).await;
    w.publish("order.created", "evt_slow", None).await;
    w.receiver.wait_for_requests("/slow", 1, WAIT).await;
    eventually_true(WAIT, "the delivery was handed over", || async {
        deliveries_published(&w).await == 1
    })
    .await;
    // The handed-over message waits for the attempt under way, then finds it in the inbox.
    w.wait_until_idle().await;
    assert_eq!(w.receiver.count("/slow"), 1, "delivered once");
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn with_first_attempts_off_every_delivery_is_a_delivery_message() {
    let w = World::start().await;
    w.subscribe("/a", &[], None).await;
    let mut config = w.config("\"0s\"");
    config.delivery.first_attempt_in_fanout = false;
    let app = w.start_app(config).await;
    w.publish("order.created", "evt_off_1", None).await;
    w.publish("order.created", "evt_off_2", None).await;
    w.receiver.wait_for_requests("/a", 2, WAIT).await;
    w.wait_until_idle().await;
    assert_eq!(deliveries_published(&w).await, 2);
    assert_eq!(w.receiver.count("/a"), 2);
    app.stop().await;
}
