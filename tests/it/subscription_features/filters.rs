//! Payload filters end to end: evaluated at fan-out after the type lookup (a type mismatch is
//! no match, not a failed event), applied by replay too, and refused at create and update
//! naming the position.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::Api;
use crate::harness::eventually_true;
use crate::world::{ADMIN, WAIT, World};

async fn publish(api: &Api, id: &str, payload: Value) {
    let body = json!({"event_id": id, "event_type": "order.created", "payload": payload});
    let (status, resp) = api.post("/v1/events", ADMIN, body).await;
    assert!(status == 202 || status == 200 || status == 201, "{status} {resp}");
}

fn event_ids(w: &World, path: &str) -> Vec<String> {
    let mut ids: Vec<String> = w
        .receiver
        .requests_for(path)
        .iter()
        .map(|r| r.header("webhook-id").unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn payload_filters_select_events_at_fan_out_and_at_replay() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let filter = json!({"amount": {"$gt": 100}, "currency": {"$in": ["EUR", "USD"]}, "customer.tier": {"$ne": "test"}});
    let (status, filtered) = api
        .post(
            "/v1/subscriptions",
            ADMIN,
            json!({"url": w.receiver.url("/filtered"), "event_types": ["order.*"], "filter": filter}),
        )
        .await;
    assert_eq!(status, 201, "{filtered}");
    assert_eq!(filtered["filter"], filter);
    let filtered_id = filtered["id"].as_str().unwrap().to_string();
    api.post(
        "/v1/subscriptions",
        ADMIN,
        json!({"url": w.receiver.url("/all"), "event_types": ["order.*"]}),
    )
    .await;

    publish(&api, "evt_big_eur", json!({"amount": 150, "currency": "EUR"})).await;
    publish(&api, "evt_string_amount", json!({"amount": "150", "currency": "EUR"})).await;
    publish(&api, "evt_small", json!({"amount": 50, "currency": "USD"})).await;
    publish(&api, "evt_gbp", json!({"amount": 500, "currency": "GBP"})).await;
    publish(
        &api,
        "evt_tester",
        json!({"amount": 500, "currency": "USD", "customer": {"tier": "test"}}),
    )
    .await;
    publish(
        &api,
        "evt_big_usd",
        json!({"amount": 101.5, "currency": "USD", "customer": {"tier": "gold"}}),
    )
    .await;
    // Events reach the unfiltered subscription in any order; once all six are there, the
    // filtered one has had its chance at each of them.
    eventually_true(WAIT, "six deliveries to the unfiltered subscription", || async {
        w.receiver.count("/all") == 6
    })
    .await;
    eventually_true(WAIT, "two deliveries to the filtered subscription", || async {
        w.receiver.count("/filtered") == 2
    })
    .await;
    assert_eq!(event_ids(&w, "/filtered"), ["evt_big_eur", "evt_big_usd"]);
    assert!(w.dlq(None).await.is_empty(), "a type mismatch fails no event");

    // Replay applies the filter: the event it rejects is not replayed to it.
    for id in ["evt_small", "evt_big_eur"] {
        let (status, out) = api.post("/v1/replay", ADMIN, json!({"event_id": id})).await;
        assert_eq!(status, 202, "{out}");
    }
    eventually_true(WAIT, "replays delivered", || async {
        w.receiver.count("/all") == 8 && w.receiver.count("/filtered") == 3
    })
    .await;
    assert_eq!(event_ids(&w, "/filtered"), ["evt_big_eur", "evt_big_eur", "evt_big_usd"]);

    // Refused with the position; {} removes the filter.
    for (bad, position) in [
        (json!({"amount": {"$gtx": 1}}), "amount.$gtx"),
        (json!({"$or": [{"a": 1}, {"b": {"$in": "x"}}]}), "$or[1].b.$in"),
        (json!("amount > 1"), "(root)"),
    ] {
        let (status, err) = api
            .post("/v1/subscriptions", ADMIN, json!({"url": w.receiver.url("/x"), "filter": bad}))
            .await;
        assert_eq!((status, err["error"]["field"].as_str()), (400, Some("filter")), "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(position), "{err}");
    }
    let path = format!("/v1/subscriptions/{filtered_id}");
    let (status, err) =
        api.call(Method::PATCH, &path, Some(ADMIN), Some(json!({"filter": {"$nor": []}}))).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("filter")), "{err}");
    let (status, cleared) =
        api.call(Method::PATCH, &path, Some(ADMIN), Some(json!({"filter": {}}))).await;
    assert_eq!(status, 200);
    assert!(cleared.get("filter").is_none(), "{cleared}");
    app.stop().await;
}
