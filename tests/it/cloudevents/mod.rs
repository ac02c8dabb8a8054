//! CloudEvents in (NATS protocol binding, binary and structured mode, published with a plain
//! async-nats client: the headers are the test's, not hookline's), malformed CloudEvents to the
//! DLQ, and CloudEvents out, checked with the CloudEvents Python SDK (`sdk`).

use async_nats::HeaderMap;
use serde_json::{Value, json};

use crate::world::{WAIT, World, assert_signed};

mod invalid;
mod sdk;

/// Publishes `body` with `headers` on `<prefix>.events.<event_type>`, as any NATS client would.
pub async fn publish_with(w: &World, event_type: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, *value);
    }
    let js = w.js().await;
    let ack = js
        .publish_with_headers(w.names.event(event_type), map, body.to_vec().into())
        .await
        .expect("publish");
    ack.await.expect("ack");
}

/// The headers of a binary-mode CloudEvent of type `order.created` with id `id`.
pub fn binary_headers(id: &str) -> Vec<(&str, &str)> {
    vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-source", "/tests/cloudevents"),
        ("ce-type", "order.created"),
        ("ce-time", "2024-05-06T07:08:09Z"),
        ("ce-region", "eu%20west"),
        ("content-type", "application/json"),
    ]
}

#[tokio::test]
async fn binary_and_structured_cloudevents_are_delivered_once_each_signed_with_their_data() {
    let w = World::start().await;
    let sub = w.subscribe("/hook", &["order.*"], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;

    let binary_body = br#"{"total":12,"items":["a","b"]}"#;
    let structured = json!({
        "specversion": "1.0", "id": "ce_structured_1", "source": "urn:tests", "type": "order.created",
        "time": "2024-05-06T07:08:10Z", "datacontenttype": "application/json",
        "data": {"items": [1, 2], "note": "caf\u{e9}"}, "tenantid": "acme",
    });
    let structured_body = serde_json::to_vec(&structured).unwrap();
    let structured_headers = [("content-type", "application/cloudevents+json")];
    // Each twice, without Nats-Msg-Id: the CloudEvent id is the dedupe key.
    for _ in 0..2 {
        publish_with(&w, "order.created", &binary_headers("ce_binary_1"), binary_body).await;
        publish_with(&w, "order.created", &structured_headers, &structured_body).await;
    }
    w.wait_until_idle().await;

    let reqs = w.receiver.wait_for_requests("/hook", 2, WAIT).await;
    assert_eq!(w.receiver.count("/hook"), 2, "each CloudEvent delivered once");
    let by_id = |id: &str| {
        reqs.iter().find(|r| r.header("webhook-id") == Some(id)).expect("delivered").clone()
    };
    let bin = by_id("ce_binary_1");
    assert_signed(&bin, &sub);
    let envelope: Value = serde_json::from_slice(&bin.body).unwrap();
    assert_eq!(
        envelope,
        json!({"type": "order.created", "timestamp": "2024-05-06T07:08:09Z",
            "data": {"total": 12, "items": ["a", "b"]}})
    );
    let st = by_id("ce_structured_1");
    assert_signed(&st, &sub);
    let envelope: Value = serde_json::from_slice(&st.body).unwrap();
    assert_eq!(envelope["data"], structured["data"]);
    assert_eq!(envelope["timestamp"], "2024-05-06T07:08:10Z");
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_cloudevent_tenant_routes_like_a_webhook_event_tenant() {
    let w = World::start().await;
    w.subscribe("/acme", &[], Some("acme")).await;
    w.subscribe("/globex", &[], Some("globex")).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let mut headers = binary_headers("ce_tenant_1");
    headers.push(("ce-tenantid", "acme"));
    publish_with(&w, "order.created", &headers, b"{}").await;
    w.receiver.wait_for_requests("/acme", 1, WAIT).await;
    w.wait_until_idle().await;
    assert_eq!((w.receiver.count("/acme"), w.receiver.count("/globex")), (1, 0));
    app.stop().await;
}

#[tokio::test]
async fn hookline_publish_writes_cloudevents_in_either_mode() {
    let w = World::start().await;
    w.subscribe("/hook", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let structured = cli_publish(&w, "evt_cli_s", "cloudevents").await;
    let binary = cli_publish(&w, "evt_cli_b", "cloudevents-binary").await;
    let events = w.js().await.get_stream(w.names.events_stream()).await.unwrap();
    let stored = events.direct_get(structured).await.unwrap();
    assert_eq!(
        stored.headers.get("content-type").map(|v| v.as_str()),
        Some("application/cloudevents+json")
    );
    let doc: Value = serde_json::from_slice(&stored.payload).unwrap();
    assert_eq!((doc["id"].as_str(), doc["source"].as_str()), (Some("evt_cli_s"), Some("hookline")));
    let stored = events.direct_get(binary).await.unwrap();
    assert_eq!(stored.headers.get("ce-id").map(|v| v.as_str()), Some("evt_cli_b"));
    assert_eq!(stored.headers.get("ce-specversion").map(|v| v.as_str()), Some("1.0"));
    assert_eq!(stored.payload.as_ref(), br#"{"n":1}"#);
    let reqs = w.receiver.wait_for_requests("/hook", 2, WAIT).await;
    let mut ids: Vec<_> = reqs.iter().filter_map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["evt_cli_b", "evt_cli_s"]);
    app.stop().await;
}

/// `hookline publish` of `{"n":1}` as `order.created` in `format`; the stream sequence it got.
async fn cli_publish(w: &World, id: &str, format: &str) -> u64 {
    let args = ["publish", "order.created", r#"{"n":1}"#, "--event-id", id, "--format", format];
    let out = w.cli(&[&args[..], &["--output", "json"]].concat()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let published: Value = serde_json::from_slice(&out.stdout).unwrap();
    published["stream_sequence"].as_u64().unwrap()
}
