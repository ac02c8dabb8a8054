//! CloudEvents out: deliveries in the `cloudevents` (structured) and `cloudevents_binary` body
//! formats are signed over the exact body sent and read as valid CloudEvents by the CloudEvents
//! Python SDK (`tests/it/python/cloudevents_check.py`); an event that came in as a CloudEvent
//! keeps its attributes, a WebhookEvent gets the configured source. Also the other ways in:
//! `POST /v1/events` with `application/cloudevents+json`, publishing in binary mode, and replay.

use base64::Engine;
use hookline::event::WebhookEvent;
use hookline::ingest::EventFormat;
use hookline::store::subscriptions::{BodyFormat, Subscription, SubscriptionInput};
use serde_json::{Value, json};

use super::{binary_headers, publish_with};
use crate::api::Api;
use crate::harness::receiver::Recorded;
use crate::world::{ADMIN, WAIT, World, assert_signed, python_json};

/// Keep in step with CLOUDEVENTS_SDK_VERSION in scripts/ensure-deps.sh.
const CE_SDK_VERSION: &str = "1.12.0";

async fn subscribe(w: &World, path: &str, format: BodyFormat) -> Subscription {
    let input = SubscriptionInput {
        url: Some(w.receiver.url(path)),
        event_types: Some(vec![]),
        body_format: Some(format),
        ..Default::default()
    };
    w.store().await.create(input).await.expect("subscription is created")
}

/// What the SDK read from each request: `{"attributes", "data"}`.
async fn sdk_read(reqs: &[Recorded]) -> Vec<Value> {
    let input: Vec<Value> = reqs
        .iter()
        .map(|r| {
            json!({"headers": r.headers, "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body)})
        })
        .collect();
    let python =
        format!("{}/.deps/cloudevents-sdk-{CE_SDK_VERSION}/bin/python", env!("CARGO_MANIFEST_DIR"));
    let out = python_json(
        &python,
        "cloudevents_check.py",
        &json!(input),
        "the CloudEvents SDK refused a delivery",
    )
    .await;
    serde_json::from_value(out).unwrap()
}

fn by_id<'a>(reqs: &'a [Recorded], id: &str) -> &'a Recorded {
    reqs.iter().find(|r| r.header("webhook-id") == Some(id)).expect("a delivery of that id")
}

#[tokio::test]
async fn cloudevents_deliveries_are_valid_for_the_python_sdk_and_keep_the_attributes() {
    let w = World::start().await;
    let structured = subscribe(&w, "/structured", BodyFormat::Cloudevents).await;
    let binary = subscribe(&w, "/binary", BodyFormat::CloudeventsBinary).await;
    let app = w.start_app(w.config("\"0s\"")).await;

    let mut headers = binary_headers("ce_out_1");
    headers.extend([("ce-tenantid", "acme"), ("ce-subject", "order%2F42")]);
    publish_with(&w, "order.created", &headers, br#"{"total":12}"#).await;
    let webhook = WebhookEvent {
        event_id: "evt_plain_1".parse().unwrap(),
        event_type: "invoice.paid".parse().unwrap(),
        payload: json!({"amount": 5}),
        occurred_at: Some(time::macros::datetime!(2024-05-06 07:08:11 UTC)),
        source: None,
        tenant_id: Some("acme".parse().unwrap()),
        cloudevent: None,
    };
    hookline::ingest::publish_event(&w.js().await, &w.names, &webhook, 1 << 20).await.unwrap();

    let got_structured = w.receiver.wait_for_requests("/structured", 2, WAIT).await;
    let got_binary = w.receiver.wait_for_requests("/binary", 2, WAIT).await;
    w.wait_until_idle().await;
    for (reqs, sub) in [(&got_structured, &structured), (&got_binary, &binary)] {
        for r in reqs.iter() {
            assert_signed(r, sub);
        }
    }
    let s = by_id(&got_structured, "ce_out_1");
    assert_eq!(s.header("content-type"), Some("application/cloudevents+json"));
    let b = by_id(&got_binary, "ce_out_1");
    assert_eq!(b.header("content-type"), Some("application/json"));
    assert_eq!(b.header("ce-region"), Some("eu%20west"));
    assert_eq!(b.body_str(), r#"{"total":12}"#, "binary mode: the data is the body");

    let reqs = [
        s.clone(),
        b.clone(),
        by_id(&got_structured, "evt_plain_1").clone(),
        by_id(&got_binary, "evt_plain_1").clone(),
    ];
    let read = sdk_read(&reqs).await;
    let from_ce = json!({"specversion": "1.0", "id": "ce_out_1", "source": "/tests/cloudevents",
        "type": "order.created", "time": "2024-05-06T07:08:09Z", "datacontenttype": "application/json",
        "region": "eu west", "tenantid": "acme", "subject": "order/42"});
    let from_webhook = json!({"specversion": "1.0", "id": "evt_plain_1", "source": "hookline",
        "type": "invoice.paid", "time": "2024-05-06T07:08:11Z", "datacontenttype": "application/json",
        "tenantid": "acme"});
    for (i, expected, data) in [
        (0, &from_ce, json!({"total": 12})),
        (1, &from_ce, json!({"total": 12})),
        (2, &from_webhook, json!({"amount": 5})),
        (3, &from_webhook, json!({"amount": 5})),
    ] {
        assert_eq!(&read[i]["attributes"], expected, "attributes of request {i}");
        assert_eq!(read[i]["data"], data, "data of request {i}");
    }
    app.stop().await;
}

#[tokio::test]
async fn cloudevents_posted_to_the_api_or_published_in_binary_mode_are_delivered_and_replayed() {
    let w = World::start().await;
    let sub = subscribe(&w, "/hook", BodyFormat::Cloudevents).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let http = crate::harness::http_client();
    let post = |body: Value| {
        http.post(format!("{}/v1/events", app.api))
            .bearer_auth(ADMIN)
            .header("content-type", "application/cloudevents+json")
            .body(serde_json::to_vec(&body).unwrap())
            .send()
    };
    let event = json!({"specversion": "1.0", "id": "ce_api_1", "source": "urn:api",
        "type": "order.created", "data": {"via": "api"}, "priority": 2});
    let resp = post(event.clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let resp = post(event).await.unwrap();
    assert_eq!(resp.status().as_u16(), 409, "the same CloudEvent id is a duplicate");
    let resp =
        post(json!({"specversion": "1.0", "id": "x", "type": "order.created"})).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let error: Value = resp.json().await.unwrap();
    assert_eq!(error["error"]["field"], "source", "{error}");
    // The WebhookEvent body keeps working on the same route.
    let (status, _) = api
        .post(
            "/v1/events",
            ADMIN,
            json!({"event_type": "order.created", "event_id": "evt_api_2", "payload": {}}),
        )
        .await;
    assert_eq!(status, 202);

    let webhook = WebhookEvent {
        event_id: "evt_bin_1".parse().unwrap(),
        event_type: "order.created".parse().unwrap(),
        payload: json!({"via": "binary"}),
        occurred_at: Some(time::macros::datetime!(2024-05-06 07:08:12 UTC)),
        source: Some("urn:cli".into()),
        tenant_id: None,
        cloudevent: Some(hookline::event::CeContext::json()),
    };
    let js = w.js().await;
    let format = EventFormat::CloudeventsBinary;
    hookline::ingest::publish_as(&js, &w.names, &webhook, 1 << 20, format, "hookline", None)
        .await
        .unwrap();

    let reqs = w.receiver.wait_for_requests("/hook", 3, WAIT).await;
    w.wait_until_idle().await;
    assert_eq!(w.receiver.count("/hook"), 3);
    for r in &reqs {
        assert_signed(r, &sub);
    }
    let body = |id: &str| -> Value { serde_json::from_slice(&by_id(&reqs, id).body).unwrap() };
    let api_event = body("ce_api_1");
    assert_eq!(
        (api_event["source"].as_str(), api_event["priority"].as_i64()),
        (Some("urn:api"), Some(2))
    );
    assert_eq!(api_event["data"], json!({"via": "api"}));
    assert_eq!(body("evt_bin_1")["source"], "urn:cli");
    assert_eq!(body("evt_bin_1")["data"], json!({"via": "binary"}));
    assert_eq!(body("evt_api_2")["source"], "hookline");

    // Replay reads the CloudEvent from the event log as fan-out did: the same CloudEvent again.
    let (status, r) = api.post("/v1/replay", ADMIN, json!({"event_id": "evt_bin_1"})).await;
    assert_eq!(status, 202, "{r}");
    let reqs = w.receiver.wait_for_requests("/hook", 4, WAIT).await;
    let replayed =
        reqs.iter().filter(|r| r.header("webhook-id") == Some("evt_bin_1")).collect::<Vec<_>>();
    assert_eq!(replayed.len(), 2);
    assert_eq!(replayed[0].body, replayed[1].body);
    app.stop().await;
}
