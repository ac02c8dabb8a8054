//! W3C trace context end to end: a `traceparent` published with an event reaches every webhook
//! request of it (same trace id, a new span id per attempt, `tracestate` unchanged) through
//! retries, the DLQ and its redelivery, and replay; an invalid one is ignored. `otlp` checks the
//! exported spans.

use async_nats::HeaderMap;
use hookline::event::WebhookEvent;
use hookline::trace_context::TraceContext;
use serde_json::json;

use crate::api::Api;
use crate::harness::receiver::{Recorded, Reply};
use crate::world::{ADMIN, WAIT, World};

mod otlp;

/// A trace context as an application would publish it.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const PARENT_ID: &str = "00f067aa0ba902b7";
pub const TRACESTATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";

/// Publishes an event with these raw trace headers, as an application with a NATS client would.
pub async fn publish_with_trace(w: &World, event_id: &str, traceparent: &str, tracestate: &str) {
    let event = WebhookEvent {
        event_id: event_id.parse().unwrap(),
        event_type: "order.created".parse().unwrap(),
        payload: json!({"n": event_id}),
        occurred_at: None,
        source: None,
        tenant_id: None,
        cloudevent: None,
    };
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", event_id);
    headers.insert("traceparent", traceparent);
    headers.insert("tracestate", tracestate);
    let body = serde_json::to_vec(&event).unwrap();
    w.js()
        .await
        .publish_with_headers(w.names.event("order.created"), headers, body.into())
        .await
        .expect("publish")
        .await
        .expect("ack");
}

/// The (trace id, span id) of a request's `traceparent`, which must be valid.
pub fn trace_of(req: &Recorded) -> (String, String) {
    let tp = req.header("traceparent").unwrap_or_else(|| panic!("no traceparent on {req:?}"));
    let tc = TraceContext::parse(tp, None).unwrap_or_else(|| panic!("invalid traceparent {tp}"));
    (tc.trace_id_hex(), hex::encode(tc.parent_id))
}

#[tokio::test]
async fn traceparent_reaches_each_attempt_with_the_same_trace_and_a_new_span_id() {
    let w = World::start().await;
    w.subscribe("/flaky", &[], None).await;
    // A 500 (a scheduled retry), then a 429 (a deferral), then the default 200.
    w.receiver.script("/flaky", vec![Reply::Status(500), Reply::retry_after(429, 1)]);
    let app = w.start_app(w.config("\"0s\", \"200ms\", \"200ms\"")).await;
    publish_with_trace(&w, "evt_traced", TRACEPARENT, TRACESTATE).await;
    let reqs = w.receiver.wait_for_requests("/flaky", 3, WAIT).await;
    assert_eq!(reqs.len(), 3, "a 500, the retry's 429, then the deferred attempt's 200");
    let traces: Vec<(String, String)> = reqs.iter().map(trace_of).collect();
    for (trace_id, span_id) in &traces {
        assert_eq!(trace_id, TRACE_ID);
        assert_ne!(span_id, PARENT_ID, "a new span id, not the publisher's");
    }
    let spans: std::collections::HashSet<&String> = traces.iter().map(|t| &t.1).collect();
    assert_eq!(spans.len(), 3, "each attempt has its own span id: {traces:?}");
    for req in &reqs {
        assert_eq!(req.header("tracestate"), Some(TRACESTATE), "tracestate unchanged");
        assert!(req.header("traceparent").unwrap().ends_with("-01"), "flags kept");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_dead_lettered_delivery_keeps_its_trace_when_redelivered() {
    let w = World::start().await;
    let sub = w.subscribe("/dead", &[], None).await;
    w.receiver.script("/dead", vec![Reply::Status(500)]);
    let app = w.start_app(w.config("\"0s\"")).await;
    publish_with_trace(&w, "evt_dlq_traced", TRACEPARENT, TRACESTATE).await;
    let entries = w.wait_for_dlq(Some(&sub.id), 1).await;
    let api = Api::new(&app);
    let (status, body) =
        api.post(&format!("/v1/dlq/{}/redeliver", entries[0].sequence), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let reqs = w.receiver.wait_for_requests("/dead", 2, WAIT).await;
    let (first, redelivered) = (trace_of(&reqs[0]), trace_of(&reqs[1]));
    assert_eq!((first.0.as_str(), redelivered.0.as_str()), (TRACE_ID, TRACE_ID));
    assert_ne!(first.1, redelivered.1);
    assert_eq!(reqs[1].header("tracestate"), Some(TRACESTATE));
    app.stop().await;
}

#[tokio::test]
async fn a_replay_keeps_the_trace_of_the_published_event() {
    let w = World::start().await;
    w.subscribe("/replayed", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    publish_with_trace(&w, "evt_replay_traced", TRACEPARENT, TRACESTATE).await;
    w.receiver.wait_for_requests("/replayed", 1, WAIT).await;
    let api = Api::new(&app);
    let (status, body) =
        api.post("/v1/replay", ADMIN, json!({"event_id": "evt_replay_traced"})).await;
    assert!((200..300).contains(&status), "{status} {body}");
    let reqs = w.receiver.wait_for_requests("/replayed", 2, WAIT).await;
    let (original, replayed) = (trace_of(&reqs[0]), trace_of(&reqs[1]));
    assert_eq!((original.0.as_str(), replayed.0.as_str()), (TRACE_ID, TRACE_ID));
    assert_ne!(original.1, replayed.1);
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_traceparent_is_ignored_and_the_event_still_delivered() {
    let w = World::start().await;
    w.subscribe("/plain", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let zero_trace = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    publish_with_trace(&w, "evt_bad_trace", zero_trace, TRACESTATE).await;
    publish_with_trace(&w, "evt_garbled_trace", "garbled", TRACESTATE).await;
    let reqs = w.receiver.wait_for_requests("/plain", 2, WAIT).await;
    for req in &reqs {
        // Export is off: no trace is invented, and the invalid one is not passed on.
        assert_eq!(req.header("traceparent"), None, "{req:?}");
        assert_eq!(req.header("tracestate"), None, "tracestate goes with an invalid traceparent");
    }
    assert!(w.dlq(None).await.is_empty(), "an invalid traceparent is not an error");
    app.stop().await;
}

#[tokio::test]
async fn the_publish_api_passes_a_traceparent_header_through() {
    let w = World::start().await;
    w.subscribe("/api", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let resp = crate::harness::http_client()
        .post(format!("{}/v1/events", app.api))
        .bearer_auth(ADMIN)
        .header("traceparent", TRACEPARENT)
        .header("tracestate", TRACESTATE)
        .json(&json!({"event_id": "evt_api_traced", "event_type": "order.created", "payload": {}}))
        .send()
        .await
        .expect("api answers");
    assert_eq!(resp.status().as_u16(), 202);
    // An invalid header is ignored, not refused.
    let resp = crate::harness::http_client()
        .post(format!("{}/v1/events", app.api))
        .bearer_auth(ADMIN)
        .header("traceparent", "00-xyz")
        .json(
            &json!({"event_id": "evt_api_untraced", "event_type": "order.created", "payload": {}}),
        )
        .send()
        .await
        .expect("api answers");
    assert_eq!(resp.status().as_u16(), 202);
    let reqs = w.receiver.wait_for_requests("/api", 2, WAIT).await;
    let traced = reqs.iter().find(|r| r.header("webhook-id") == Some("evt_api_traced")).unwrap();
    assert_eq!(trace_of(traced).0, TRACE_ID);
    assert_eq!(traced.header("tracestate"), Some(TRACESTATE));
    let untraced =
        reqs.iter().find(|r| r.header("webhook-id") == Some("evt_api_untraced")).unwrap();
    assert_eq!(untraced.header("traceparent"), None);
    app.stop().await;
}

#[tokio::test]
async fn hookline_publish_sends_its_traceparent_and_refuses_a_bad_one() {
    let w = World::start().await;
    w.subscribe("/cli", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let args = ["publish", "order.created", "{}", "--event-id", "evt_cli_traced"];
    let out = w
        .cli(&[&args[..], &["--traceparent", TRACEPARENT, "--tracestate", TRACESTATE]].concat())
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reqs = w.receiver.wait_for_requests("/cli", 1, WAIT).await;
    assert_eq!(trace_of(&reqs[0]).0, TRACE_ID);
    assert_eq!(reqs[0].header("tracestate"), Some(TRACESTATE));
    let bad = w.cli(&["publish", "order.created", "{}", "--traceparent", "00-nope"]).await;
    assert!(!bad.status.success(), "a bad --traceparent is refused");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--traceparent"));
    app.stop().await;
}
