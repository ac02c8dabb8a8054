//! Partitioned delivery on a 3-node JetStream cluster with R3 streams: every delivery once
//! across the partitions, a failing endpoint's retries inside its own partition, FIFO order
//! kept, and all of it through the loss of a partition stream's leader node.

use std::collections::BTreeSet;

use hookline::store::subscriptions::Ordering;

use super::{PARTITIONS, Partitioned, one_per_partition, path_of};
use crate::harness::receiver::Reply;
use crate::harness::{eventually, eventually_true};
use crate::world::WAIT;

#[tokio::test]
async fn deliveries_spread_over_partitions_on_a_cluster_arrive_exactly_once_and_retry_in_their_partition()
 {
    let p = Partitioned::start().await;
    let mut subs = one_per_partition(&p, Ordering::Unordered).await;
    for i in 0..6 {
        subs.push(p.subscribe(&format!("/extra-{i}"), Ordering::Unordered).await);
    }
    // Every endpoint fails its first request, so every partition's consumer carries a retry
    // (a first attempt may be made by the fan-out itself, without a delivery message).
    for sub in &subs {
        p.receiver.script(&path_of(&p, sub), vec![Reply::Status(500)]);
    }
    let flaky = subs[1].clone();
    let flaky_path = path_of(&p, &flaky);
    // Fails until its pending retry has been seen in its partition.
    p.receiver.set_default(&flaky_path, Reply::Status(500));
    let app = p.start_app(p.config("\"0s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\", \"1s\"")).await;
    const EVENTS: usize = 15;
    for i in 0..EVENTS {
        p.publish(&format!("evt_{i}")).await;
    }

    let k = p.names.partition_of(&flaky.id);
    let own = p.names.deliveries_stream_of(&flaky.id);
    let retry = eventually(WAIT, "a pending retry of the failing endpoint", || async {
        p.subjects(&own, &p.names.retry_of_subscription(&flaky.id)).await.into_iter().next()
    })
    .await;
    assert!(retry.starts_with(&format!("{}.retry.{k}.{}.", p.prefix, flaky.id)), "{retry}");
    for other in p.names.deliveries_streams().into_iter().filter(|s| *s != own) {
        for filter in
            [format!("{}.*.*.{}", p.prefix, flaky.id), format!("{}.*.*.{}.>", p.prefix, flaky.id)]
        {
            assert!(
                p.subjects(&other, &filter).await.is_empty(),
                "no work of {} in {other}",
                flaky.id
            );
        }
    }
    p.receiver.set_default(&flaky_path, Reply::Status(200));
    let healed = std::time::Instant::now();

    eventually_true(WAIT, "every subscription got every event", || async {
        subs.iter().all(|s| {
            let requests = p.receiver.requests_for(&path_of(&p, s));
            let ok = requests.iter().filter(|r| s.id != flaky.id || r.received_at > healed);
            let ids: BTreeSet<&str> = ok.filter_map(|r| r.header("webhook-id")).collect();
            ids.len() == EVENTS
        })
    })
    .await;
    eventually_true(WAIT, "the deliveries streams drained", || async {
        p.deliveries_left().await == 0
    })
    .await;
    for s in subs.iter().filter(|s| s.id != flaky.id) {
        // The first request got the scripted 500; every later one a 200.
        let requests = p.receiver.requests_for(&path_of(&p, s));
        let ok: Vec<&str> = requests[1..].iter().filter_map(|r| r.header("webhook-id")).collect();
        let distinct: BTreeSet<&str> = ok.iter().copied().collect();
        assert_eq!((ok.len(), distinct.len()), (EVENTS, EVENTS), "exactly once to {}", s.id);
    }
    let flaky_requests = p.receiver.requests_for(&flaky_path);
    assert!(flaky_requests.len() > EVENTS, "the failing endpoint was retried");

    // Each partition has its own R3 stream, stamped with the count, and its consumer did work.
    let js = p.js().await;
    for k in 0..PARTITIONS {
        let mut stream = js.get_stream(p.names.deliveries_stream_at(k)).await.unwrap();
        let info = stream.info().await.unwrap().clone();
        assert_eq!(info.config.num_replicas, p.nats.replicas());
        assert_eq!(
            info.config.metadata.get(hookline::topology::PARTITIONS_METADATA).map(String::as_str),
            Some("3")
        );
        let consumer = stream.consumer_info(p.names.deliver_consumer_at(k)).await.unwrap();
        assert!(consumer.delivered.stream_sequence > 0, "partition {k} delivered nothing");
    }
    app.stop().await;
}

#[tokio::test]
async fn fifo_subscriptions_keep_publish_order_in_their_partitions() {
    let p = Partitioned::start().await;
    let fifos = one_per_partition(&p, Ordering::Fifo).await;
    // Each head fails twice before it gets through; the rest of its queue waits for it.
    for sub in &fifos {
        p.receiver.script(&path_of(&p, sub), vec![Reply::Status(500), Reply::Status(503)]);
    }
    let app = p.start_app(p.config("\"0s\", \"300ms\", \"300ms\", \"300ms\"")).await;
    for i in 0..6 {
        p.publish(&format!("evt_f{i}")).await;
    }
    for sub in &fifos {
        let reqs = p.receiver.wait_for_requests(&path_of(&p, sub), 8, WAIT).await;
        let order: Vec<&str> = reqs.iter().map(|r| r.header("webhook-id").unwrap()).collect();
        assert_eq!(
            order,
            ["evt_f0", "evt_f0", "evt_f0", "evt_f1", "evt_f2", "evt_f3", "evt_f4", "evt_f5"],
            "order of {}",
            sub.id
        );
        let js = p.js().await;
        let stream = js.get_stream(p.names.deliveries_stream_of(&sub.id)).await.unwrap();
        let consumer = stream.consumer_info(p.names.fifo_consumer(&sub.id)).await;
        assert!(consumer.is_ok(), "the fifo consumer of {} is on its partition's stream", sub.id);
    }
    eventually_true(WAIT, "the deliveries streams drained", || async {
        p.deliveries_left().await == 0
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn fifo_order_and_every_delivery_survive_losing_a_partition_leader_node() {
    let mut p = Partitioned::start().await;
    // FIFO subscriptions always go through their partition's stream (no first attempt in the
    // fan-out), so the lost leader is on their path.
    let fifos = one_per_partition(&p, Ordering::Fifo).await;
    let app = p.start_app(p.config("\"0s\", \"300ms\", \"1s\", \"2s\", \"4s\"")).await;
    const EVENTS: usize = 20;
    for i in 0..EVENTS / 2 {
        p.publish(&format!("evt_n{i:02}")).await;
    }
    let victim = &fifos[0];
    let stream = p.names.deliveries_stream_of(&victim.id);
    let js = p.js().await;
    let leader = eventually(WAIT, &format!("the leader of {stream}"), || async {
        let mut s = js.get_stream(&stream).await.ok()?;
        s.info().await.ok()?.cluster.as_ref()?.leader.clone()
    })
    .await;
    p.nats.cluster().kill(&leader).await;
    let js = p.js().await;
    let next = eventually(WAIT, &format!("a leader of {stream} other than {leader}"), || async {
        let mut s = js.get_stream(&stream).await.ok()?;
        s.info().await.ok()?.cluster.as_ref()?.leader.clone().filter(|l| *l != leader)
    })
    .await;
    assert_ne!(next, leader);
    for i in EVENTS / 2..EVENTS {
        p.publish(&format!("evt_n{i:02}")).await;
    }
    let expected: Vec<String> = (0..EVENTS).map(|i| format!("evt_n{i:02}")).collect();
    for sub in &fifos {
        let path = path_of(&p, sub);
        let order =
            eventually(WAIT * 2, &format!("every event at {path} after the node loss"), || {
                let requests = p.receiver.requests_for(&path);
                let ids: Vec<String> = requests
                    .iter()
                    .filter_map(|r| r.header("webhook-id"))
                    .map(String::from)
                    .collect();
                let complete = ids.iter().collect::<BTreeSet<_>>().len() == EVENTS;
                async move { complete.then_some(ids) }
            })
            .await;
        // A delivery cut off by the node loss may be repeated (at least once), never reordered.
        let mut first_seen = order.clone();
        first_seen.dedup();
        assert_eq!(first_seen, expected, "publish order at {path} (partition of {})", sub.id);
    }
    app.stop().await;
}
