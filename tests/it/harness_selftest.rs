//! Tests of the harness itself: the servers really start, restart and keep what they should,
//! and the receiver answers as scripted. If these fail, every other integration test is suspect.
use std::cell::Cell;
use std::time::Duration;

use async_nats::jetstream::stream;
use futures::{FutureExt, StreamExt};

use crate::harness::nats::{NatsServer, NatsVersion};
use crate::harness::receiver::{Receiver, Reply};
use crate::harness::redis::RedisServer;
use crate::harness::{eventually, eventually_true, http_client, unique_prefix};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn nats_server_starts_with_jetstream_enabled_and_a_supported_version() {
    let nats = NatsServer::start().await;
    let account = nats.jetstream().await.query_account().await.expect("jetstream account info");
    assert_eq!(account.streams, 0);
    let version = nats.version().await;
    assert!(version >= NatsVersion::new(2, 12, 0), "nats-server {version} is older than 2.12");
}

#[tokio::test]
async fn nats_server_restart_keeps_a_stream_and_its_messages() {
    let mut nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let name = format!("{prefix}_events");
    let js = nats.jetstream().await;
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await
    .expect("creating the stream");
    js.publish(format!("{prefix}.a"), "hello".into())
        .await
        .expect("publishing")
        .await
        .expect("publish ack");
    drop(js);

    let old_url = nats.url();
    nats.restart().await;
    assert_eq!(nats.url(), old_url);

    let js = nats.jetstream().await;
    // JetStream may still be recovering its store right after the restart.
    let mut stream = eventually(WAIT, "the stream to be back after restart", || {
        let js = js.clone();
        let name = name.clone();
        async move { js.get_stream(&name).await.ok() }
    })
    .await;
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.state.messages, 1);
}

#[tokio::test]
async fn nats_client_sees_published_core_messages() {
    let nats = NatsServer::start().await;
    let client = nats.client().await;
    let subject = format!("{}.ping", unique_prefix());
    let mut sub = client.subscribe(subject.clone()).await.expect("subscribing");
    client.publish(subject, "hi".into()).await.expect("publishing");
    let message = eventually(WAIT, "the published message", || {
        let next = sub.next().now_or_never().flatten();
        async move { next }
    })
    .await;
    assert_eq!(&message.payload[..], b"hi");
}

#[tokio::test]
async fn redis_starts_and_answers_set_and_get() {
    let redis = RedisServer::start().await;
    let mut conn = redis.connection().await;
    let key = format!("{}:greeting", unique_prefix());
    let () = redis::cmd("SET").arg(&key).arg("hello").query_async(&mut conn).await.expect("SET");
    let value: Option<String> =
        redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
    assert_eq!(value.as_deref(), Some("hello"));
}

#[tokio::test]
async fn persistent_redis_keeps_a_key_over_a_kill_and_restart() {
    let mut redis = RedisServer::start_persistent().await;
    let key = format!("{}:kept", unique_prefix());
    {
        let mut conn = redis.connection().await;
        let () = redis::cmd("SET").arg(&key).arg("yes").query_async(&mut conn).await.expect("SET");
    }
    redis.restart().await;
    let mut conn = redis.connection().await;
    let value: Option<String> =
        redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
    assert_eq!(value.as_deref(), Some("yes"));
}

#[tokio::test]
async fn ephemeral_redis_forgets_everything_on_restart() {
    let mut redis = RedisServer::start().await;
    let key = format!("{}:gone", unique_prefix());
    {
        let mut conn = redis.connection().await;
        let () = redis::cmd("SET").arg(&key).arg("soon").query_async(&mut conn).await.expect("SET");
    }
    redis.restart().await;
    let mut conn = redis.connection().await;
    let value: Option<String> =
        redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
    assert_eq!(value, None);
}

#[tokio::test]
async fn receiver_returns_scripted_statuses_in_order_then_the_default_and_records_bodies() {
    let receiver = Receiver::start().await;
    receiver
        .script("/hook", vec![Reply::Status(500), Reply::retry_after(429, 3), Reply::Status(204)]);
    let client = http_client();

    let mut seen = Vec::new();
    for i in 0..5 {
        let response = client
            .post(receiver.url("/hook"))
            .header("Webhook-Id", format!("msg_{i}"))
            .body(format!("{{\"n\":{i}}}"))
            .send()
            .await
            .expect("posting to the receiver");
        let retry_after =
            response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        seen.push((response.status().as_u16(), retry_after));
    }
    assert_eq!(
        seen,
        vec![(500, None), (429, Some("3".to_owned())), (204, None), (200, None), (200, None),]
    );

    receiver.set_default("/hook", Reply::Status(410));
    let status = client.post(receiver.url("/hook")).send().await.expect("posting").status();
    assert_eq!(status.as_u16(), 410);

    let recorded = receiver.requests_for("/hook");
    assert_eq!(recorded.len(), 6);
    assert_eq!(receiver.count("/hook"), 6);
    assert_eq!(receiver.count("/other"), 0);
    assert_eq!(recorded[1].method, "POST");
    assert_eq!(recorded[1].header("webhook-id"), Some("msg_1"));
    assert_eq!(recorded[1].body_json(), serde_json::json!({ "n": 1 }));
    assert!(recorded.windows(2).all(|w| w[0].received_at <= w[1].received_at));
}

#[tokio::test]
async fn receiver_hang_outlasts_the_client_timeout_but_is_recorded() {
    let receiver = Receiver::start().await;
    receiver.script("slow", vec![Reply::Hang]);
    let client = http_client();
    let result = client
        .post(receiver.url("slow"))
        .timeout(Duration::from_millis(300))
        .body("x")
        .send()
        .await;
    assert!(result.expect_err("a hanging receiver must time the client out").is_timeout());
    let recorded = receiver.wait_for_requests("/slow", 1, WAIT).await;
    assert_eq!(recorded[0].body_str(), "x");

    let status = client.post(receiver.url("slow")).send().await.expect("posting").status();
    assert_eq!(status.as_u16(), 200, "the script is used up, so the default applies");
}

#[tokio::test]
async fn receiver_measures_how_many_requests_are_open_at_once() {
    let receiver = Receiver::start().await;
    receiver.set_default("/slow", Reply::Delay(Duration::from_millis(300)));
    receiver.script("/stuck", vec![Reply::Hang]);
    let client = http_client();
    let post = |path: &'static str| {
        let (client, url) = (client.clone(), receiver.url(path));
        async move { client.post(url).send().await.expect("posting").status().as_u16() }
    };
    let statuses = futures::future::join_all([post("/slow"), post("/slow"), post("/slow")]).await;
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(post("/slow").await, 200);
    assert_eq!(receiver.max_in_flight("/slow"), 3, "three overlapped, the fourth came alone");
    assert_eq!(receiver.in_flight("/slow"), 0, "all answered");

    let hanging = tokio::spawn(post("/stuck"));
    eventually_true(WAIT, "the hanging request to be open", || async {
        receiver.in_flight("/stuck") == 1
    })
    .await;
    assert_eq!(receiver.max_in_flight("/stuck"), 1);
    assert_eq!(receiver.max_in_flight("/never"), 0);
    hanging.abort();
}

#[tokio::test]
async fn eventually_true_returns_once_the_condition_holds() {
    let started = std::time::Instant::now();
    let (polls, held) = (Cell::new(0u32), Cell::new(0u32));
    eventually_true(WAIT, "100 ms to pass", || {
        polls.set(polls.get() + 1);
        let holds = started.elapsed() >= Duration::from_millis(100);
        held.set(held.get() + u32::from(holds));
        async move { holds }
    })
    .await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(100), "returned before the condition held: {waited:?}");
    assert!(waited < Duration::from_secs(2), "kept waiting after the condition held: {waited:?}");
    // Polled every 25 ms: some false polls, then the true one, and none after it.
    assert!(polls.get() >= 2, "the condition was polled {} time(s)", polls.get());
    assert_eq!(held.get(), 1, "polled again after the condition held");
}

#[tokio::test]
#[should_panic(expected = "timed out after 200ms waiting for a condition that never holds")]
async fn eventually_panics_naming_what_it_waited_for() {
    eventually_true(Duration::from_millis(200), "a condition that never holds", || async { false })
        .await;
}

#[test]
fn unique_prefixes_are_distinct_and_subject_safe() {
    let a = unique_prefix();
    let b = unique_prefix();
    assert_ne!(a, b);
    for p in [&a, &b] {
        assert_eq!(p.len(), 9);
        assert!(p.starts_with('t'));
        assert!(p.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{p}");
    }
}

#[test]
fn nats_version_parses_the_server_output() {
    assert_eq!(NatsVersion::parse("nats-server: v2.15.1").unwrap(), NatsVersion::new(2, 15, 1));
    assert_eq!(NatsVersion::parse("v2.12.8-beta.1").unwrap(), NatsVersion::new(2, 12, 8));
    assert!(NatsVersion::new(2, 9, 25) < NatsVersion::new(2, 12, 0));
    assert!(NatsVersion::parse("garbage").is_err());
}
