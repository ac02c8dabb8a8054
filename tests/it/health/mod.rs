//! Endpoint health and flow control: auto-disable, 410, abort-message, circuit breaker,
//! backpressure without using attempts, per-endpoint limits, isolation from a dead endpoint.

use std::time::{Duration, Instant};

use hookline::config::Config;
use hookline::store::subscriptions::SubscriptionInput;

use crate::harness::receiver::Reply;
use crate::harness::{eventually, eventually_true};
use crate::world::{WAIT, World};

mod limits;
fn health_config(w: &World, schedule: &str, edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = w.config(schedule);
    c.health.breaker_failure_threshold = 0;
    edit(&mut c);
    c
}

#[tokio::test]
async fn failing_subscription_is_disabled_after_the_threshold_and_a_success_resets_the_count() {
    let w = World::start().await;
    let sub = w.subscribe("/flappy", &[], None).await;
    w.receiver.script("/flappy", vec![Reply::Status(500), Reply::Status(500), Reply::Status(200)]);
    w.receiver.set_default("/flappy", Reply::Status(500));
    let config = health_config(&w, "\"0s\", \"100ms\", \"100ms\", \"100ms\", \"100ms\"", |c| {
        c.health.disable_after_failures = 3
    });
    let app = w.start_app(config).await;
    let client = w.nats.client().await;
    let mut lifecycle = client.subscribe(format!("{}.lifecycle.disabled", w.prefix)).await.unwrap();
    client.flush().await.unwrap();
    w.publish("order.created", "evt_ok_after_two", None).await;
    w.receiver.wait_for_requests("/flappy", 3, WAIT).await;
    assert!(
        w.store().await.require(&sub.id).await.unwrap().active,
        "two failures then a success: still active"
    );
    w.publish("order.created", "evt_breaks_it", None).await;
    let entries = w.wait_for_dlq(Some(&sub.id), 1).await;
    assert_eq!(entries[0].reason, "subscription_disabled");
    assert_eq!(
        w.receiver.count("/flappy"),
        6,
        "the count restarted after the success: three more failures"
    );
    let stored = w.store().await.require(&sub.id).await.unwrap();
    assert_eq!((stored.active, stored.disabled_reason.as_deref()), (false, Some("failing")));
    let msg = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut lifecycle))
        .await
        .expect("disabled event")
        .unwrap();
    let event: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(
        (event["kind"].as_str(), event["subscription"]["id"].as_str()),
        (Some("disabled"), Some(sub.id.as_str()))
    );
    // Disabled: new events no longer reach it. The event is handled (fanned out, any delivery
    // of it settled) before re-enabling, so a delivery it produced could not wait for that.
    w.publish("order.created", "evt_while_disabled", None).await;
    let events = w.js().await.get_stream(w.names.events_stream()).await.unwrap();
    eventually_true(WAIT, "the event published while disabled handled", || async {
        let info = events.clone().consumer_info(w.names.fanout_consumer()).await.unwrap();
        info.num_pending == 0
            && info.num_ack_pending == 0
            && w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    // Re-enabling starts from a clean record, and new events reach it again: a marker published
    // after the event shows that anything it could have caused would have arrived by now.
    w.store().await.set_active(&sub.id, true).await.unwrap();
    assert_eq!(w.store().await.require(&sub.id).await.unwrap().disabled_reason, None);
    w.receiver.script("/flappy", vec![Reply::Status(200)]);
    w.publish("order.created", "evt_after_enabling", None).await;
    let seen = |id: &str| {
        w.receiver.requests_for("/flappy").iter().any(|r| r.header("webhook-id") == Some(id))
    };
    eventually_true(WAIT, "the marker delivered after re-enabling", || async {
        seen("evt_after_enabling")
    })
    .await;
    assert!(!seen("evt_while_disabled"), "an event published while disabled was delivered");
    assert_eq!(w.receiver.count("/flappy"), 7, "six attempts before, the marker after");
    app.stop().await;
}

#[tokio::test]
async fn http_410_disables_the_subscription_at_once() {
    let w = World::start().await;
    let sub = w.subscribe("/gone", &[], None).await;
    w.receiver.set_default("/gone", Reply::Status(410));
    let app = w.start_app(w.config("\"0s\", \"100ms\", \"100ms\"")).await;
    w.publish("order.created", "evt_gone", None).await;
    let entries = w.wait_for_dlq(Some(&sub.id), 1).await;
    assert_eq!((entries[0].reason.as_str(), entries[0].last_status), ("endpoint_gone", Some(410)));
    let stored = w.store().await.require(&sub.id).await.unwrap();
    assert_eq!((stored.active, stored.disabled_reason.as_deref()), (false, Some("gone")));
    assert_eq!(w.receiver.count("/gone"), 1, "no retry after a 410");
    app.stop().await;
}

#[tokio::test]
async fn abort_message_header_stops_retries_and_is_recorded() {
    let w = World::start().await;
    let sub = w.subscribe("/abort", &[], None).await;
    w.receiver.script(
        "/abort",
        vec![Reply::StatusWithHeader(400, "webhook-delivery".into(), "abort-message".into())],
    );
    let app = w.start_app(w.config("\"0s\", \"100ms\", \"100ms\"")).await;
    w.publish("order.created", "evt_abort", None).await;
    w.receiver.wait_for_requests("/abort", 1, WAIT).await;
    let js = w.js().await;
    let redis = hookline::store::connect(&w.config("\"0s\"").redis).await.unwrap();
    let q = hookline::attempt_log::AttemptQuery {
        event_id: Some("evt_abort".into()),
        limit: 10,
        ..Default::default()
    };
    let page = eventually(WAIT, "aborted attempt recorded", || async {
        let page = hookline::attempt_log::query(&js, &redis, &w.names, &q).await.ok()?;
        (!page.items.is_empty()).then_some(page)
    })
    .await;
    assert_eq!(page.items[0].status, hookline::attempt_log::AttemptStatus::Aborted);
    eventually_true(WAIT, "nothing left to deliver", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert_eq!(w.receiver.count("/abort"), 1, "no retry");
    assert!(w.dlq(Some(&sub.id)).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn breaker_opens_defers_without_http_calls_then_one_probe_closes_it() {
    let w = World::start().await;
    let sub = w.subscribe("/breaker", &[], None).await;
    w.receiver.script("/breaker", vec![Reply::Status(500), Reply::Status(500)]);
    let config = health_config(&w, "\"0s\", \"50ms\", \"50ms\", \"50ms\"", |c| {
        c.health.breaker_failure_threshold = 2;
        c.health.breaker_open_for = Duration::from_millis(1500);
    });
    let app = w.start_app(config).await;
    w.publish("order.created", "evt_br", None).await;
    let reqs = w.receiver.wait_for_requests("/breaker", 3, WAIT).await;
    let gap = reqs[2].received_at - reqs[1].received_at;
    assert!(
        gap >= Duration::from_millis(1300),
        "no request while open; the probe came after {gap:?}"
    );
    assert_eq!(reqs[2].header("webhook-id"), Some("evt_br"));
    // The successful probe closed it: the next event goes straight through.
    let health = hookline::store::health::Health::new(
        hookline::store::connect(&w.config("\"0s\"").redis).await.unwrap(),
        w.names.clone(),
    );
    eventually_true(WAIT, "breaker closed", || async { !health.is_open(&sub.id).await.unwrap() })
        .await;
    let before = Instant::now();
    w.publish("order.created", "evt_after_close", None).await;
    w.receiver.wait_for_requests("/breaker", 4, WAIT).await;
    assert!(before.elapsed() < Duration::from_millis(1300));
    app.stop().await;
}

/// The test's Redis (a connection of the app's own kind) and the health store on it.
async fn store_health(w: &World) -> (hookline::store::RedisConn, hookline::store::health::Health) {
    let conn = hookline::store::connect(&w.config("\"0s\"").redis).await.unwrap();
    let health = hookline::store::health::Health::new(conn.clone(), w.names.clone());
    (conn, health)
}

/// An admission of the pair `inbox_key` at a current revision, within its age, to an endpoint
/// without a rate limit whose breaker was not seen open, with no pooled lease.
fn plain_admit(inbox_key: &str, limit: u32) -> hookline::store::health::Admit<'_> {
    hookline::store::health::Admit {
        version: "0",
        inbox_key,
        expired: false,
        probe_timeout: Duration::from_secs(5),
        min_interval: Duration::ZERO,
        limit,
        lease: Duration::from_secs(30),
        pooled: None,
        breaker_maybe_open: false,
    }
}

#[tokio::test]
async fn breaker_reopens_for_twice_as_long_after_each_failed_probe_up_to_the_cap() {
    use hookline::store::health::Backoff;
    let w = World::start().await;
    let (conn, health) = store_health(&w).await;
    let backoff = Backoff { first: Duration::from_secs(30), max: Duration::from_secs(100) };
    let window = Duration::from_secs(3600);
    let fail = || health.record_failure("sub_b", window, 2, backoff);
    // The failed probe: the probe lock is what admission takes when the breaker half-opens.
    let probe_fails = || async {
        let mut c = conn.clone();
        let _: () = redis::cmd("SET")
            .arg(w.names.sub_key("sub_b", "probe"))
            .arg(1)
            .query_async(&mut c)
            .await
            .unwrap();
        fail().await.unwrap().opened
    };
    assert_eq!(fail().await.unwrap().opened, None, "one failure is below the threshold");
    assert_eq!(
        fail().await.unwrap().opened,
        Some(Duration::from_secs(30)),
        "the threshold opens it for open_for"
    );
    assert_eq!(
        fail().await.unwrap().opened,
        None,
        "a request admitted before the opening does not re-open it"
    );
    assert!(health.is_open("sub_b").await.unwrap());
    assert_eq!(probe_fails().await, Some(Duration::from_secs(60)));
    assert_eq!(probe_fails().await, Some(Duration::from_secs(100)), "capped at max_open_for");
    assert_eq!(probe_fails().await, Some(Duration::from_secs(100)));
    let mut c = conn.clone();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(w.names.sub_key("sub_b", "health"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        pttl > (window + Duration::from_secs(90)).as_millis() as i64,
        "the state outlives the open period: {pttl} ms"
    );
    // A success closes it and the next opening starts again from open_for.
    health
        .succeeded("sub_b", &w.names.key("inbox:x"), Duration::from_secs(60), true)
        .await
        .unwrap();
    assert!(!health.is_open("sub_b").await.unwrap());
    assert_eq!(fail().await.unwrap().opened, None);
    assert_eq!(fail().await.unwrap().opened, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn admission_claims_the_pair_in_its_inbox_key_and_a_success_resets_only_a_failing_endpoint() {
    use hookline::store::health::{Admission, Backoff};
    use hookline::store::inbox;
    let w = World::start().await;
    let (mut conn, health) = store_health(&w).await;
    let inbox_key = inbox::delivered_key(&w.names, "evt_claim", "sub_c", None);
    let admit = plain_admit(&inbox_key, 4);
    let held = |conn: hookline::store::RedisConn| {
        let key = inbox_key.clone();
        async move {
            let mut conn = conn;
            redis::cmd("GET").arg(&key).query_async::<Option<String>>(&mut conn).await.unwrap()
        }
    };
    // A clean endpoint: admitted, nothing to reset; the pair's key holds the claim token.
    let Admission::Admitted { token, failing, .. } = health.admit("sub_c", &admit).await.unwrap()
    else {
        panic!("admitted")
    };
    assert!(!failing, "no failure counted, no breaker state");
    assert_eq!(held(conn.clone()).await.as_deref(), Some(token.as_str()));
    assert!(!inbox::was_delivered(&mut conn, &w.names, "evt_claim", "sub_c", None).await.unwrap());
    // A second copy while the first is out is held back.
    assert_eq!(health.admit("sub_c", &admit).await.unwrap(), Admission::InFlight);
    // The first one fails: its claim is given back, and the pair can be claimed again.
    health.release("sub_c", &token, &inbox_key, None).await.unwrap();
    assert_eq!(held(conn.clone()).await, None);
    // A failure counted: the next admission says a success has it to reset, and the success
    // does (the count starts again from one).
    let backoff = Backoff { first: Duration::from_secs(30), max: Duration::from_secs(60) };
    let fail = || health.record_failure("sub_c", Duration::from_secs(3600), 0, backoff);
    assert_eq!(fail().await.unwrap().consecutive, 1);
    let Admission::Admitted { failing, .. } = health.admit("sub_c", &admit).await.unwrap() else {
        panic!("admitted")
    };
    assert!(failing, "a failure is counted");
    let ttl = Duration::from_secs(60);
    health.succeeded("sub_c", &inbox_key, ttl, failing).await.unwrap();
    assert_eq!(held(conn.clone()).await.as_deref(), Some(inbox::DELIVERED));
    assert!(inbox::was_delivered(&mut conn, &w.names, "evt_claim", "sub_c", None).await.unwrap());
    assert_eq!(health.admit("sub_c", &admit).await.unwrap(), Admission::Duplicate);
    assert_eq!(fail().await.unwrap().consecutive, 1, "the success reset the count");
}

#[tokio::test]
async fn a_pooled_lease_serves_one_request_after_another_without_a_new_one_in_redis() {
    use hookline::store::health::{Admission, Admit};
    use hookline::store::inbox;
    let w = World::start().await;
    let (conn, health) = store_health(&w).await;
    let leases_in_redis = || {
        let mut conn = conn.clone();
        let key = w.names.sub_key("sub_p", "inflight");
        async move { redis::cmd("ZCARD").arg(key).query_async::<u64>(&mut conn).await.unwrap() }
    };
    let keys: Vec<String> = (0..8)
        .map(|i| inbox::delivered_key(&w.names, &format!("evt_p{i}"), "sub_p", None))
        .collect();
    let admit = |i: usize| plain_admit(&keys[i], 2);
    // Two new leases fill the limit of 2; a third request without one is turned away.
    let mut leases = Vec::new();
    for i in 0..2 {
        match health.admit("sub_p", &admit(i)).await.unwrap() {
            Admission::Admitted { lease, .. } => leases.push(lease),
            other => panic!("request {i}: {other:?}"),
        }
    }
    assert_eq!(leases_in_redis().await, 2);
    assert_eq!(health.admit("sub_p", &admit(2)).await.unwrap(), Admission::Full);
    assert_eq!(leases_in_redis().await, 2, "the lease taken for nothing was given back");
    // With a pooled lease the next requests are admitted on it, nothing new counted: by the
    // plain pipeline, and by the script (a rate-limited endpoint).
    let pooled = leases[0].clone();
    let on_pooled = Admit { pooled: Some(&pooled), ..admit(3) };
    match health.admit("sub_p", &on_pooled).await.unwrap() {
        Admission::Admitted { lease, .. } => assert_eq!(lease, pooled),
        other => panic!("pooled: {other:?}"),
    }
    let scripted =
        Admit { pooled: Some(&pooled), min_interval: Duration::from_millis(1), ..admit(4) };
    match health.admit("sub_p", &scripted).await.unwrap() {
        Admission::Admitted { lease, .. } => assert_eq!(lease, pooled),
        other => panic!("scripted: {other:?}"),
    }
    assert_eq!(leases_in_redis().await, 2);
    // Returned leases free the limit for any process.
    let members: Vec<&str> = leases.iter().map(|l| l.member.as_str()).collect();
    health.return_leases("sub_p", &members).await.unwrap();
    assert_eq!(leases_in_redis().await, 0);
    assert!(matches!(health.admit("sub_p", &admit(5)).await.unwrap(), Admission::Admitted { .. }));
}

/// Waits for the message schedule of `event`'s first attempt to `sub` in the deliveries stream
/// and returns a lookup of its headers.
async fn first_attempt_schedule(
    w: &World,
    sub: &str,
    event: &str,
) -> impl Fn(&str) -> Option<String> {
    let stream = w.js().await.get_stream(w.names.deliveries_stream()).await.unwrap();
    let subject = w.names.retry(sub, event, 1);
    let scheduled = eventually(WAIT, "the schedule", || async {
        stream.get_last_raw_message_by_subject(&subject).await.ok()
    })
    .await;
    move |name: &str| scheduled.headers.get(name).map(|v| v.as_str().to_string())
}

#[tokio::test]
async fn fan_out_schedules_a_delivery_to_a_busy_endpoint_instead_of_queueing_it() {
    let w = World::start().await;
    let input = SubscriptionInput {
        url: Some(w.receiver.url("/stuck")),
        max_in_flight: Some(1),
        ..Default::default()
    };
    let sub = w.store().await.create(input).await.unwrap();
    // The first request takes 3 s, holding the endpoint's only permit: the endpoint is busy.
    w.receiver.script("/stuck", vec![Reply::Delay(Duration::from_secs(3))]);
    let config = health_config(&w, "\"0s\"", |c| {
        c.delivery.request_timeout = Duration::from_secs(4);
        c.delivery.ack_wait = Duration::from_secs(10);
    });
    let app = w.start_app(config).await;
    w.publish("order.created", "evt_first", None).await;
    w.receiver.wait_for_requests("/stuck", 1, WAIT).await;
    // Busy once no permit has moved for BUSY_AFTER (500 ms).
    let idle_since = Instant::now();
    eventually_true(WAIT, "busy for 600 ms", || async {
        idle_since.elapsed() > Duration::from_millis(600)
    })
    .await;
    let published = Instant::now();
    w.publish("order.created", "evt_second", None).await;
    // The fan-out itself published a schedule (its Nats-Msg-Id is the first publish's, not a
    // deliverer's `retry.<seq>`), due after 2-4 s (half to all of the request timeout).
    let header = first_attempt_schedule(&w, &sub.id, "evt_second").await;
    assert_eq!(header("Nats-Msg-Id"), Some(format!("evt_second.{}", sub.id)));
    assert_eq!(header("Nats-Schedule-Target"), Some(w.names.deliver(&sub.id)));
    assert_eq!(header("Hookline-Last-Error").as_deref(), Some("in_flight_limit"));
    // It arrives once, after the hold, with its first attempt.
    let reqs = w.receiver.wait_for_requests("/stuck", 2, Duration::from_secs(20)).await;
    let second = reqs
        .iter()
        .find(|r| r.header("webhook-id") == Some("evt_second"))
        .expect("evt_second delivered");
    assert!(
        second.received_at - published >= Duration::from_millis(1900),
        "held: {:?}",
        second.received_at - published
    );
    eventually_true(WAIT, "nothing left to deliver", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert_eq!(w.receiver.count("/stuck"), 2, "each event once");
    app.stop().await;
}

#[tokio::test]
async fn fan_out_schedules_a_delivery_to_an_endpoint_with_an_open_breaker_for_when_it_half_opens() {
    let w = World::start().await;
    let sub = w.subscribe("/tripped", &[], None).await;
    w.receiver.script("/tripped", vec![Reply::Status(500)]);
    let config = health_config(&w, "\"0s\"", |c| {
        c.health.breaker_failure_threshold = 1;
        c.health.breaker_open_for = Duration::from_secs(3);
    });
    let app = w.start_app(config).await;
    w.publish("order.created", "evt_trips", None).await;
    w.wait_for_dlq(Some(&sub.id), 1).await;
    // The open breaker is a gauge of /metrics (all breakers read in one round trip).
    let gauge = format!("hookline_breaker_open{{subscription=\"{}\"}} 1", sub.id);
    let metrics = || async {
        reqwest::get(format!("{}/metrics", app.api)).await.unwrap().text().await.unwrap()
    };
    assert!(metrics().await.contains(&gauge), "{}", metrics().await);
    let published = Instant::now();
    w.publish("order.created", "evt_held", None).await;
    let header = first_attempt_schedule(&w, &sub.id, "evt_held").await;
    assert_eq!(
        header("Nats-Msg-Id"),
        Some(format!("evt_held.{}", sub.id)),
        "published by the fan-out"
    );
    assert_eq!(header("Hookline-Last-Error").as_deref(), Some("breaker_open"));
    // The half-open probe is this delivery; it succeeds and closes the breaker.
    let reqs = w.receiver.wait_for_requests("/tripped", 2, Duration::from_secs(20)).await;
    assert_eq!(reqs[1].header("webhook-id"), Some("evt_held"));
    assert!(
        reqs[1].received_at - published >= Duration::from_millis(2000),
        "held until the breaker half-opened"
    );
    eventually_true(WAIT, "the gauge gone once the probe closed the breaker", || async {
        !metrics().await.contains(&gauge)
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn http_429_with_retry_after_does_not_use_an_attempt() {
    let w = World::start().await;
    let sub = w.subscribe("/busy", &[], None).await;
    w.receiver.script("/busy", vec![Reply::retry_after(429, 1), Reply::retry_after(429, 1)]);
    // One attempt only: without deferral the first 429 would dead-letter it.
    let app = w.start_app(w.config("\"0s\"")).await;
    w.publish("order.created", "evt_429", None).await;
    let reqs = w.receiver.wait_for_requests("/busy", 3, WAIT).await;
    assert!(reqs[1].received_at - reqs[0].received_at >= Duration::from_millis(900));
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert!(w.dlq(Some(&sub.id)).await.is_empty());
    app.stop().await;
}
