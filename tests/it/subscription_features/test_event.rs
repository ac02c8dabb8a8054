//! The test event: one signed `webhook.test` attempt answered to the caller, never retried,
//! never dead-lettered, recorded in the attempt log as a test.

use serde_json::{Value, json};

use crate::api::Api;
use crate::harness::receiver::Reply;
use crate::harness::{eventually, free_port};
use crate::world::{ADMIN, WAIT, World};

async fn create(api: &Api, url: String) -> String {
    let (status, created) = api.post("/v1/subscriptions", ADMIN, json!({"url": url})).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn test_event_answers_the_attempts_outcome_for_2xx_500_and_refused_without_retry_or_dlq() {
    let w = World::start().await;
    // A retry schedule with room for retries: a test event must still not use it.
    let app = w.start_app(w.config("\"0s\", \"100ms\", \"100ms\"")).await;
    let api = Api::new(&app);
    w.receiver.set_default("/fail", Reply::StatusWithBody(500, "boom".into()));
    let ok = create(&api, w.receiver.url("/ok")).await;
    let fail = create(&api, w.receiver.url("/fail")).await;
    let refused = create(&api, format!("http://127.0.0.1:{}/hook", free_port())).await;

    let (status, out) = api.post(&format!("/v1/subscriptions/{ok}/test"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!((out["delivered"].as_bool(), out["status"].as_u64()), (Some(true), Some(200)));
    assert!(out["duration_ms"].is_u64() && out["error"].is_null(), "{out}");
    let reqs = w.receiver.requests_for("/ok");
    assert_eq!(reqs.len(), 1);
    let body = reqs[0].body_json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"], json!({"test": true, "subscription_id": ok}));
    let sub = w.store().await.require(&ok).await.unwrap();
    crate::world::assert_signed(&reqs[0], &sub);

    let custom = json!({"payload": {"order": 7}});
    let (_, out) = api.post(&format!("/v1/subscriptions/{ok}/test"), ADMIN, custom).await;
    assert_eq!(out["delivered"], true);
    assert_eq!(w.receiver.requests_for("/ok")[1].body_json()["data"], json!({"order": 7}));

    let (status, out) = api.post(&format!("/v1/subscriptions/{fail}/test"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!((out["delivered"].as_bool(), out["status"].as_u64()), (Some(false), Some(500)));
    assert_eq!(out["response_body"], "boom");
    assert!(out["error"].as_str().unwrap().contains("500"), "{out}");

    let (status, out) =
        api.post(&format!("/v1/subscriptions/{refused}/test"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!((out["delivered"].as_bool(), out["status"].clone()), (Some(false), Value::Null));
    assert!(out["error"].as_str().unwrap().contains("connection"), "{out}");

    // Recorded as tests, each once; nothing entered the deliveries stream or the DLQ.
    for (id, status) in [(&ok, "succeeded"), (&fail, "failed"), (&refused, "failed")] {
        let page = eventually(WAIT, "test attempts recorded", || async {
            let (_, page) = api.get(&format!("/v1/attempts?subscription_id={id}"), ADMIN).await;
            (!page["items"].as_array()?.is_empty()).then_some(page)
        })
        .await;
        let item = &page["items"][0];
        assert_eq!((item["test"].as_bool(), item["status"].as_str()), (Some(true), Some(status)));
        assert_eq!(item["event_type"], "webhook.test");
    }
    assert_eq!(w.stream_messages(&w.names.deliveries_stream()).await, 0);
    assert!(w.dlq(None).await.is_empty());
    assert_eq!(w.receiver.count("/fail"), 1, "a failed test event is not retried");

    // Bad input is a 400 naming the field; an unknown subscription a 404.
    let (status, err) =
        api.post(&format!("/v1/subscriptions/{ok}/test"), ADMIN, json!({"payloadx": 1})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("payloadx")), "{err}");
    let (status, _) = api.post("/v1/subscriptions/sub_nope/test", ADMIN, json!({})).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn cli_test_event_prints_the_outcome_and_exits_1_when_not_delivered() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    w.receiver.set_default("/down", Reply::Status(503));
    let ok = create(&api, w.receiver.url("/ok")).await;
    let down = create(&api, w.receiver.url("/down")).await;
    let out =
        w.cli(&["subscriptions", "test", &ok, "--payload", r#"{"a":1}"#, "--output", "json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (outcome["delivered"].as_bool(), outcome["status"].as_u64()),
        (Some(true), Some(200))
    );
    assert_eq!(w.receiver.requests_for("/ok")[0].body_json()["data"], json!({"a": 1}));
    let out = w.cli(&["subscriptions", "test", &down]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("503"));
    app.stop().await;
}
