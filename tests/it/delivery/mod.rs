//! The core pipeline end to end, in-process: fan-out, signed delivery, retries, DLQ, dedupe.

use std::time::Duration;

use hookline::event::{Delivery, WebhookEvent};

use crate::harness::eventually_true;
use crate::harness::receiver::Reply;
use crate::world::{WAIT, World, assert_signed};

mod dedupe;
mod first_attempt;
mod resilience;
#[tokio::test]
async fn event_is_fanned_out_to_every_matching_subscription_once_with_mixed_filters_and_tenants() {
    let w = World::start().await;
    let all = w.subscribe("/all", &[], None).await;
    let exact = w.subscribe("/exact", &["order.created"], None).await;
    let star = w.subscribe("/star", &["order.*"], None).await;
    let gt = w.subscribe("/gt", &["order.>"], None).await;
    let other = w.subscribe("/other", &["invoice.paid"], None).await;
    let tenant_a = w.subscribe("/tenant-a", &["order.*"], Some("a")).await;
    let tenant_b = w.subscribe("/tenant-b", &[], Some("b")).await;
    let inactive = w.subscribe("/inactive", &[], None).await;
    w.store().await.set_active(&inactive.id, false).await.unwrap();
    let app = w.start_app(w.config("\"0s\"")).await;

    w.publish("order.created", "evt_1", Some("a")).await;
    w.publish("order.created.v2", "evt_2", None).await;

    // evt_1 (tenant a): all, exact, star, gt, tenant-a. evt_2 (no tenant, 3 segments): all,
    // gt, tenant-b.
    eventually_true(WAIT, "8 deliveries", || async { w.receiver.requests().len() >= 8 }).await;
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    let count = |path: &str| w.receiver.count(path);
    assert_eq!(
        [
            count("/all"),
            count("/exact"),
            count("/star"),
            count("/gt"),
            count("/other"),
            count("/tenant-a"),
            count("/tenant-b"),
            count("/inactive")
        ],
        [2, 1, 1, 2, 0, 1, 1, 0]
    );
    let ids = |path: &str| {
        w.receiver
            .requests_for(path)
            .iter()
            .map(|r| r.header("webhook-id").unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("/exact"), ["evt_1"]);
    assert_eq!(ids("/tenant-b"), ["evt_2"]);
    for (path, sub) in [
        ("/all", &all),
        ("/exact", &exact),
        ("/star", &star),
        ("/gt", &gt),
        ("/tenant-a", &tenant_a),
        ("/tenant-b", &tenant_b),
    ] {
        for req in w.receiver.requests_for(path) {
            assert_signed(&req, sub);
        }
    }
    let _ = other;
    app.stop().await;
}

#[tokio::test]
async fn delivery_follows_standard_webhooks_headers_and_body() {
    let w = World::start().await;
    let sub = w.subscribe("/hook", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let event = WebhookEvent {
        event_id: "evt_std".parse().unwrap(),
        event_type: "user.signed_up".parse().unwrap(),
        payload: serde_json::json!({"user": {"id": 7, "tags": ["a", "b"]}}),
        occurred_at: Some(time::macros::datetime!(2024-05-06 07:08:09 UTC)),
        source: Some("accounts".into()),
        tenant_id: None,
        cloudevent: None,
    };
    hookline::ingest::publish_event(&w.js().await, &w.names, &event, 1 << 20).await.unwrap();
    let reqs = w.receiver.wait_for_requests("/hook", 1, WAIT).await;
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("webhook-id"), Some("evt_std"));
    assert!(req.header("user-agent").unwrap().starts_with("hookline/"));
    let ts: i64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!((time::OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 60);
    assert!(req.header("webhook-signature").unwrap().starts_with("v1,"));
    assert_eq!(
        req.body_str(),
        r#"{"type":"user.signed_up","timestamp":"2024-05-06T07:08:09Z","data":{"user":{"id":7,"tags":["a","b"]}}}"#
    );
    assert_signed(req, &sub);
    app.stop().await;
}

#[tokio::test]
async fn failing_endpoint_is_retried_then_succeeds_with_the_same_body() {
    let w = World::start().await;
    let sub = w.subscribe("/flaky", &[], None).await;
    w.receiver.script("/flaky", vec![Reply::Status(500), Reply::Status(302), Reply::Hang]);
    let app = w.start_app(w.config("\"0s\", \"200ms\", \"200ms\", \"200ms\"")).await;
    w.publish("order.created", "evt_r", None).await;
    let reqs = w.receiver.wait_for_requests("/flaky", 4, WAIT).await;
    assert_eq!(reqs.len(), 4, "500, 302 (redirects are failures), timeout, then 200");
    for r in &reqs {
        assert_eq!(r.header("webhook-id"), Some("evt_r"));
        assert_eq!(r.body, reqs[0].body, "body is byte-identical across attempts");
        assert_signed(r, &sub);
    }
    // The success is final: the deliveries stream drains and nothing lands in the DLQ.
    eventually_true(WAIT, "deliveries stream empty", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert!(w.dlq(None).await.is_empty());
    assert_eq!(w.receiver.count("/flaky"), 4);
    app.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let w = World::start().await;
    w.subscribe("/busy", &[], None).await;
    w.receiver.script("/busy", vec![Reply::retry_after(429, 2)]);
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    w.publish("order.created", "evt_429", None).await;
    let reqs = w.receiver.wait_for_requests("/busy", 2, WAIT).await;
    let gap = reqs[1].received_at - reqs[0].received_at;
    assert!(
        gap >= Duration::from_millis(1900),
        "second attempt after Retry-After (2s), was {gap:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn exhausted_retries_land_in_the_dlq_with_reason_headers_and_redeliver_reaches_the_endpoint()
{
    let w = World::start().await;
    let sub = w.subscribe("/dead", &[], None).await;
    w.receiver.set_default("/dead", Reply::Status(503));
    let app = w.start_app(w.config("\"0s\", \"100ms\", \"100ms\"")).await;
    w.publish("order.created", "evt_dead", None).await;
    let entries = w.wait_for_dlq(Some(&sub.id), 1).await;
    assert_eq!(w.receiver.count("/dead"), 3);
    let e = &entries[0];
    assert_eq!((e.reason.as_str(), e.attempts, e.last_status), ("retries_exhausted", 3, Some(503)));
    assert_eq!(
        (e.event_id.as_str(), e.event_type.as_str(), e.subscription_id.as_str()),
        ("evt_dead", "order.created", sub.id.as_str())
    );
    // The raw entry carries the documented headers and a replayable body.
    let stream = w.js().await.get_stream(w.names.dlq_stream()).await.unwrap();
    let raw = stream.direct_get(e.sequence).await.unwrap();
    for h in [
        "Hookline-Reason",
        "Hookline-Attempts",
        "Hookline-Last-Status",
        "Hookline-Last-Error",
        "Hookline-First-Attempt-At",
        "Hookline-Last-Attempt-At",
    ] {
        assert!(raw.headers.get(h).is_some(), "dlq entry has header {h}");
    }
    assert!(raw.headers.get("Hookline-Last-Error").unwrap().as_str().contains("503"));
    assert_eq!(Delivery::parse(&raw.payload).unwrap().subscription_id.as_str(), sub.id);

    // Redeliver with a fresh budget: the endpoint has recovered.
    w.receiver.set_default("/dead", Reply::Status(200));
    hookline::pipeline::dlq::redeliver(&w.js().await, &w.names, e.sequence).await.unwrap();
    eventually_true(WAIT, "redelivered request", || async { w.receiver.count("/dead") == 4 }).await;
    assert!(w.dlq(None).await.is_empty(), "redelivered entry is removed from the dlq");
    app.stop().await;
}

#[tokio::test]
async fn each_kind_of_malformed_event_is_dead_lettered_with_its_reason() {
    let w = World::start().await;
    w.subscribe("/hook", &[], None).await;
    let mut config = w.config("\"0s\"");
    config.delivery.max_payload_bytes = 1024;
    let app = w.start_app(config).await;
    let subject = w.names.event("order.created");
    w.publish_raw(&subject, b"{not json".to_vec()).await;
    w.publish_raw(&subject, br#"{"event_type":"order.created","payload":{}}"#.to_vec()).await;
    w.publish_raw(
        &subject,
        br#"{"event_id":"e1","event_type":"order.updated","payload":{}}"#.to_vec(),
    )
    .await;
    w.publish_raw(
        &subject,
        br#"{"event_id":"bad id!","event_type":"order.created","payload":{}}"#.to_vec(),
    )
    .await;
    let big = format!(
        r#"{{"event_id":"e2","event_type":"order.created","payload":"{}"}}"#,
        "x".repeat(2000)
    );
    w.publish_raw(&subject, big.into_bytes()).await;
    // A malformed message on the deliveries path is dead-lettered too.
    w.publish_raw(&w.names.deliver("sub_nope"), b"[]".to_vec()).await;
    let valid_for_unknown = Delivery {
        event: WebhookEvent {
            event_id: "e3".parse().unwrap(),
            event_type: "a".parse().unwrap(),
            payload: serde_json::json!(1),
            occurred_at: None,
            source: None,
            tenant_id: None,
            cloudevent: None,
        },
        subscription_id: "sub_unknown".parse().unwrap(),
    };
    w.publish_raw(&w.names.deliver("sub_unknown"), valid_for_unknown.to_bytes()).await;

    let entries = w.wait_for_dlq(None, 7).await;
    let mut reasons: Vec<&str> = entries.iter().map(|e| e.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "event_type_mismatch",
            "invalid_event_id",
            "invalid_field",
            "invalid_json",
            "invalid_json",
            "payload_too_large",
            "unknown_subscription"
        ]
    );
    assert!(entries.iter().all(|e| !e.detail.is_empty()), "every entry says why");
    // Acked, not redelivered: both work streams drain and no request was made.
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    let info = w.fanout_consumer_info().await;
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    assert_eq!(w.receiver.requests().len(), 0);
    app.stop().await;
}
