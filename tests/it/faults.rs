//! Faults the chaos suite (`tests/chaos/`) exercises at random, pinned down one at a time: a
//! NATS restart while a POST is in flight, and the JetStream behaviour behind the README's
//! "duplicates can follow a NATS restart".

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use redis::AsyncCommands;

use crate::harness::eventually_true;
use crate::harness::nats::NatsServer;
use crate::harness::receiver::Reply;
use crate::world::{WAIT, World};

#[tokio::test]
async fn delivery_in_flight_while_nats_restarts_is_neither_lost_nor_posted_twice() {
    let mut w = World::start().await;
    let sub = w.subscribe("/slow", &[], None).await;
    w.receiver.set_default("/slow", Reply::Delay(Duration::from_millis(1500)));
    let app = w.start_app(w.config("\"0s\", \"200ms\"")).await;
    w.publish("order.created", "evt_in_flight", None).await;
    w.receiver.wait_for_requests("/slow", 1, WAIT).await;
    // NATS goes away while the POST is in flight; the endpoint answers 200 meanwhile.
    w.nats.kill().await;
    let redis = w.redis.connection().await;
    let key = format!("{}:{{{}}}:delivered:evt_in_flight", w.prefix, sub.id);
    eventually_true(WAIT, "the 2xx recorded in the inbox while NATS is down", || {
        let mut redis = redis.clone();
        let key = key.clone();
        // The key holds the POST's lease token while it is out, `1` once it was delivered.
        async move { redis.get::<_, Option<String>>(&key).await.ok().flatten().as_deref() == Some("1") }
    })
    .await;
    w.nats.restart().await;
    // Whether the ack reached the restarted server or the message came back after ack_wait
    // (and met the inbox dedupe), the work queue drains and the endpoint saw one POST.
    eventually_true(WAIT, "the deliveries stream drained after the restart", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert_eq!(w.receiver.count("/slow"), 1, "the delivery was not POSTed again");
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

/// JetStream rebuilds a stream's duplicate window from the messages it still stores: once a
/// work-queue message has been consumed, a restart forgets its `Nats-Msg-Id`. A publish that
/// hookline repeats across a NATS restart (a fan-out or retry whose ack was lost) is therefore
/// stored again; the inbox dedupe is what keeps the second copy from being POSTed when the
/// first was delivered.
#[tokio::test]
async fn jetstream_forgets_consumed_work_queue_message_ids_across_a_restart() {
    let mut server = NatsServer::start().await;
    let js = server.jetstream().await;
    let config = stream::Config {
        name: "WQ".into(),
        subjects: vec!["wq.>".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    js.create_stream(config).await.unwrap();
    let consumer = js
        .get_stream("WQ")
        .await
        .unwrap()
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("c".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let publish = |js: jetstream::Context, id: &'static str| async move {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        js.publish_with_headers("wq.a", headers, "x".into()).await.unwrap().await.unwrap()
    };
    for id in ["before", "across"] {
        assert!(!publish(js.clone(), id).await.duplicate);
        // `batch` waits (up to its expiry) for the message; `fetch` answers with what is available
        // at that instant and on a loaded machine could find the just-stored message not yet there.
        let batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .unwrap();
        let msg = batch.take(1).next().await.expect("the message within 10 s").unwrap();
        msg.double_ack().await.unwrap();
    }
    assert!(
        publish(js.clone(), "before").await.duplicate,
        "without a restart the id is remembered after consumption"
    );
    server.restart().await;
    let js = server.jetstream().await;
    assert!(
        !publish(js, "across").await.duplicate,
        "after a restart a consumed message's id is forgotten"
    );
}
