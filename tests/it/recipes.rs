//! The README's `nats` CLI recipes, each performed here through the JetStream API the CLI uses:
//! a subscription's backlog (`nats stream subjects`), DLQ inspection (`nats stream view` /
//! `nats stream get`), replaying one DLQ entry by republishing its body to the delivery subject,
//! purging one endpoint's queue or its pending retries (`nats stream purge --subject`), consumer lag
//! (`nats consumer info`).

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures::StreamExt;

use crate::harness::eventually_true;
use crate::harness::receiver::Reply;
use crate::world::{WAIT, World};

async fn subjects(w: &World, stream: &str, filter: &str) -> Vec<(String, usize)> {
    let s = w.js().await.get_stream(stream).await.unwrap();
    let mut out: Vec<(String, usize)> =
        s.info_with_subjects(filter).await.unwrap().map(|r| r.unwrap()).collect().await;
    out.sort();
    out
}

#[tokio::test]
async fn backlog_per_subscription_and_consumer_lag_are_visible_and_one_queue_can_be_purged() {
    let w = World::start().await;
    let slow = w.subscribe("/slow", &[], None).await;
    let fast = w.subscribe("/fast", &[], None).await;
    // hookline is not running: fan-out happens (roles split), delivery does not (nor does the
    // fan-out make first attempts).
    let mut config = w.config("\"0s\"");
    config.delivery.first_attempt_in_fanout = false;
    let app = hookline::app::App::build(config, &[hookline::app::Role::Fanout]).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    for i in 0..3 {
        w.publish("order.created", &format!("evt_b{i}"), None).await;
    }
    // nats stream subjects WEBHOOKS_DELIVERIES 'webhooks.deliver.>'
    eventually_true(WAIT, "backlog of 3 per subscription", || async {
        subjects(&w, &w.names.deliveries_stream(), &w.names.deliver_wildcard()).await.len() == 2
            && subjects(&w, &w.names.deliveries_stream(), &w.names.deliver_wildcard())
                .await
                .iter()
                .all(|(_, n)| *n == 3)
    })
    .await;
    let backlog = subjects(&w, &w.names.deliveries_stream(), &w.names.deliver_wildcard()).await;
    let mut want = vec![(w.names.deliver(&slow.id), 3), (w.names.deliver(&fast.id), 3)];
    want.sort();
    assert_eq!(backlog, want);
    // nats consumer info WEBHOOKS_DELIVERIES webhooks_deliver: 6 pending, none in flight.
    let deliveries = w.js().await.get_stream(w.names.deliveries_stream()).await.unwrap();
    let info = deliveries.consumer_info(w.names.deliver_consumer()).await.unwrap();
    assert_eq!((info.num_pending, info.num_ack_pending), (6, 0));
    // nats stream purge WEBHOOKS_DELIVERIES --subject 'webhooks.deliver.<slow>' -f
    let purged = deliveries.purge().filter(w.names.deliver(&slow.id)).await.unwrap();
    assert_eq!(purged.purged, 3);
    assert_eq!(
        subjects(&w, &w.names.deliveries_stream(), &w.names.deliver_wildcard()).await,
        vec![(w.names.deliver(&fast.id), 3)]
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
    // Delivery starts: only the unpurged endpoint gets anything.
    let app = w.start_app(w.config("\"0s\"")).await;
    w.receiver.wait_for_requests("/fast", 3, WAIT).await;
    eventually_true(WAIT, "lag back to zero", || async {
        let info = deliveries.consumer_info(w.names.deliver_consumer()).await.unwrap();
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
    assert_eq!(w.receiver.count("/slow"), 0);
    app.stop().await;
}

#[tokio::test]
async fn dlq_entries_can_be_viewed_and_one_replayed_by_republishing_its_body() {
    let w = World::start().await;
    let sub = w.subscribe("/dlq-recipe", &[], None).await;
    w.receiver.set_default("/dlq-recipe", Reply::Status(500));
    let app = w.start_app(w.config("\"0s\"")).await;
    w.publish("order.created", "evt_view", None).await;
    w.wait_for_dlq(Some(&sub.id), 1).await;

    // nats stream view WEBHOOKS_DLQ --subject 'webhooks.dlq.<sub>': an ordered consumer.
    let dlq = w.js().await.get_stream(w.names.dlq_stream()).await.unwrap();
    let viewer = dlq
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: w.names.dlq(&sub.id),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = viewer.messages().await.unwrap();
    let viewed = tokio::time::timeout(WAIT, messages.next()).await.unwrap().unwrap().unwrap();
    let headers = viewed.headers.clone().unwrap();
    assert_eq!(headers.get("Hookline-Reason").unwrap().as_str(), "retries_exhausted");
    assert_eq!(headers.get("Hookline-Event-Id").unwrap().as_str(), "evt_view");
    let seq = viewed.info().unwrap().stream_sequence;

    // nats stream get WEBHOOKS_DLQ <seq>
    let entry = dlq.get_raw_message(seq).await.unwrap();
    assert_eq!(entry.payload, viewed.payload);

    // Replay: republish the body to the delivery subject, then nats stream rmm WEBHOOKS_DLQ <seq>.
    w.receiver.set_default("/dlq-recipe", Reply::Status(200));
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", format!("replay-{seq}").as_str());
    w.js()
        .await
        .publish_with_headers(w.names.deliver(&sub.id), h, entry.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(dlq.delete_message(seq).await.unwrap());
    eventually_true(WAIT, "replayed entry delivered", || async {
        w.receiver
            .requests_for("/dlq-recipe")
            .last()
            .map(|r| r.header("webhook-id") == Some("evt_view"))
            .unwrap_or(false)
            && w.receiver.count("/dlq-recipe") == 2
    })
    .await;
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn one_endpoints_pending_retries_are_listed_and_purged_by_wildcard() {
    let w = World::start().await;
    let dead = w.subscribe("/dead-recipe", &[], None).await;
    let other = w.subscribe("/other-recipe", &[], None).await;
    w.receiver.set_default("/dead-recipe", Reply::Status(500));
    w.receiver.set_default("/other-recipe", Reply::Status(500));
    // One failed attempt each, then a retry an hour away: pending schedules.
    let mut config = w.config("\"0s\", \"1h\"");
    config.health.breaker_failure_threshold = 0;
    let app = w.start_app(config).await;
    for i in 0..2 {
        w.publish("order.created", &format!("evt_p{i}"), None).await;
    }
    // nats stream subjects WEBHOOKS_DELIVERIES 'webhooks.retry.<sub>.>'
    let pending = |sub: String| {
        let w = &w;
        async move {
            subjects(w, &w.names.deliveries_stream(), &w.names.retry_of_subscription(&sub)).await
        }
    };
    eventually_true(WAIT, "two pending retries per endpoint", || async {
        pending(dead.id.clone()).await.len() == 2 && pending(other.id.clone()).await.len() == 2
    })
    .await;
    let mut want =
        vec![(w.names.retry(&dead.id, "evt_p0", 2), 1), (w.names.retry(&dead.id, "evt_p1", 2), 1)];
    want.sort();
    assert_eq!(pending(dead.id.clone()).await, want);
    // nats stream purge WEBHOOKS_DELIVERIES --subject 'webhooks.retry.<sub>.>' -f
    let deliveries = w.js().await.get_stream(w.names.deliveries_stream()).await.unwrap();
    let purged = deliveries.purge().filter(w.names.retry_of_subscription(&dead.id)).await.unwrap();
    assert_eq!(purged.purged, 2);
    assert!(pending(dead.id.clone()).await.is_empty());
    assert_eq!(pending(other.id.clone()).await.len(), 2, "the other endpoint's retries stay");
    app.stop().await;
}
