//! The admin API around events: publishing over HTTP, the DLQ routes, lifecycle events on
//! plain NATS, the attempt log and replay.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::receiver::Reply;
use crate::harness::{eventually, eventually_true};
use crate::world::{ACME, ADMIN, WAIT, World};

use super::Api;

#[tokio::test]
async fn events_published_over_http_are_delivered_and_duplicates_are_409() {
    let w = World::start().await;
    let sub = w.subscribe("/http", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let (status, published) = api
        .post(
            "/v1/events",
            ADMIN,
            json!({"event_id": "evt_http", "event_type": "order.created", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!((status, published["event_id"].as_str()), (202, Some("evt_http")), "{published}");
    let (status, dup) = api
        .post(
            "/v1/events",
            ADMIN,
            json!({"event_id": "evt_http", "event_type": "order.created", "payload": {"n": 1}}),
        )
        .await;
    assert_eq!((status, dup["error"]["code"].as_str()), (409, Some("duplicate_event")));
    let (status, generated) =
        api.post("/v1/events", ADMIN, json!({"event_type": "order.created", "payload": {}})).await;
    assert_eq!(status, 202);
    assert!(generated["event_id"].as_str().unwrap().starts_with("evt_"));
    let reqs = w.receiver.wait_for_requests("/http", 2, WAIT).await;
    crate::world::assert_signed(&reqs[0], &sub);
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    assert_eq!(w.receiver.count("/http"), 2);
    app.stop().await;
}

#[tokio::test]
async fn dlq_routes_list_get_redeliver_and_purge_with_tenant_isolation() {
    let w = World::start().await;
    let acme = w.subscribe("/acme-dead", &[], Some("acme")).await;
    let globex = w.subscribe("/globex-dead", &[], Some("globex")).await;
    w.receiver.set_default("/acme-dead", Reply::Status(500));
    w.receiver.set_default("/globex-dead", Reply::Status(500));
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    w.publish("order.created", "evt_d1", None).await;
    w.publish("order.created", "evt_d2", None).await;
    w.wait_for_dlq(None, 4).await;

    let (_, all) = api.get("/v1/dlq", ADMIN).await;
    assert_eq!(all.as_array().unwrap().len(), 4);
    let (_, mine) = api.get("/v1/dlq", ACME).await;
    let mine = mine.as_array().unwrap().clone();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|e| e["subscription_id"] == acme.id.as_str()));
    let theirs = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subscription_id"] == globex.id.as_str())
        .unwrap()["sequence"]
        .as_u64()
        .unwrap();
    let (status, _) = api.get(&format!("/v1/dlq/{theirs}"), ACME).await;
    assert_eq!(status, 404, "another tenant's entry is not revealed");
    let (status, _) = api.post(&format!("/v1/dlq/{theirs}/redeliver"), ACME, json!({})).await;
    assert_eq!(status, 404);
    let seq = mine[0]["sequence"].as_u64().unwrap();
    let (status, entry) = api.get(&format!("/v1/dlq/{seq}"), ACME).await;
    assert_eq!((status, entry["reason"].as_str()), (200, Some("retries_exhausted")));

    w.receiver.set_default("/acme-dead", Reply::Status(200));
    let (status, _) = api.post(&format!("/v1/dlq/{seq}/redeliver"), ACME, json!({})).await;
    assert_eq!(status, 200);
    let (status, result) =
        api.post("/v1/dlq/redeliver", ACME, json!({"all": true, "subscription_id": acme.id})).await;
    assert_eq!((status, result["redelivered"].as_array().unwrap().len()), (200, 1), "{result}");
    eventually_true(WAIT, "both acme events redelivered", || async {
        w.receiver.count("/acme-dead") == 4
    })
    .await;
    let (status, _) = api.call(Method::DELETE, "/v1/dlq", Some(ACME), None).await;
    assert_eq!(status, 400, "a tenant must name the subscription it purges");
    let (status, purged) = api
        .call(Method::DELETE, &format!("/v1/dlq?subscription_id={}", globex.id), Some(ADMIN), None)
        .await;
    assert_eq!((status, purged["purged"].as_u64()), (200, Some(2)));
    let (_, left) = api.get("/v1/dlq", ADMIN).await;
    assert_eq!(left, json!([]));
    // An unprocessable event's entry cannot be redelivered: 422.
    w.publish_raw(&w.names.event("order.created"), b"{broken".to_vec()).await;
    let entries = w.wait_for_dlq(None, 1).await;
    let (status, body) =
        api.post(&format!("/v1/dlq/{}/redeliver", entries[0].sequence), ADMIN, json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("not_redeliverable")));
    app.stop().await;
}

#[tokio::test]
async fn lifecycle_events_are_published_on_plain_nats_without_secrets() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let client = w.nats.client().await;
    let mut sub = client.subscribe(format!("{}.lifecycle.>", w.prefix)).await.unwrap();
    client.flush().await.unwrap();
    let (_, created) =
        api.post("/v1/subscriptions", ADMIN, json!({"url": w.receiver.url("/l")})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    api.call(
        Method::PATCH,
        &format!("/v1/subscriptions/{id}"),
        Some(ADMIN),
        Some(json!({"description": "d"})),
    )
    .await;
    api.post(&format!("/v1/subscriptions/{id}/deactivate"), ADMIN, json!({})).await;
    api.post(&format!("/v1/subscriptions/{id}/activate"), ADMIN, json!({})).await;
    let (_, rotated) =
        api.post(&format!("/v1/subscriptions/{id}/rotate-secret"), ADMIN, json!({})).await;
    api.call(Method::DELETE, &format!("/v1/subscriptions/{id}"), Some(ADMIN), None).await;
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let msg = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut sub))
            .await
            .expect("lifecycle event")
            .unwrap();
        let text = String::from_utf8(msg.payload.to_vec()).unwrap();
        assert!(
            !text.contains(&secret[6..])
                && !text.contains(&rotated["secret"].as_str().unwrap()[6..]),
            "no secret in {text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["subscription"]["id"], id.as_str());
        assert_eq!(
            msg.subject.as_str(),
            format!("{}.lifecycle.{}", w.prefix, v["kind"].as_str().unwrap())
        );
        seen.push(v["kind"].as_str().unwrap().to_string());
    }
    assert_eq!(
        seen,
        ["created", "updated", "deactivated", "activated", "secret_rotated", "deleted"]
    );
    app.stop().await;
}

#[tokio::test]
async fn attempt_log_records_retry_then_success_and_dead_letters_newest_first() {
    let w = World::start().await;
    let flaky = w.subscribe("/att-flaky", &[], Some("acme")).await;
    let dead = w.subscribe("/att-dead", &[], None).await;
    w.receiver.script("/att-flaky", vec![Reply::Status(500)]);
    w.receiver.set_default("/att-dead", Reply::Status(502));
    let app = w.start_app(w.config("\"0s\", \"200ms\"")).await;
    let api = Api::new(&app);
    w.publish("order.created", "evt_att", None).await;
    w.wait_for_dlq(Some(&dead.id), 1).await;
    let page = eventually(WAIT, "4 attempt records", || async {
        let (_, page) = api.get("/v1/attempts?event_id=evt_att", ADMIN).await;
        (page["items"].as_array().map(Vec::len) == Some(4)).then_some(page)
    })
    .await;
    let items = page["items"].as_array().unwrap();
    let mut flaky_records: Vec<&Value> =
        items.iter().filter(|r| r["subscription_id"] == flaky.id.as_str()).collect();
    flaky_records.reverse(); // oldest first
    assert_eq!(
        flaky_records.iter().map(|r| r["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["failed", "succeeded"]
    );
    let first = flaky_records[0];
    assert_eq!(
        (first["attempt"].as_u64(), first["http_status"].as_u64(), first["event_type"].as_str()),
        (Some(1), Some(500), Some("order.created"))
    );
    assert!(first["next_retry_at"].is_string() && first["error"].as_str().unwrap().contains("500"));
    assert!(
        first["duration_ms"].is_u64() && first["attempt_id"].as_str().unwrap().starts_with("att_")
    );
    assert_eq!(
        (flaky_records[1]["attempt"].as_u64(), flaky_records[1]["http_status"].as_u64()),
        (Some(2), Some(200))
    );
    let (_, dl) = api
        .get(&format!("/v1/attempts?subscription_id={}&status=dead_lettered", dead.id), ADMIN)
        .await;
    let dl = dl["items"].as_array().unwrap();
    assert_eq!(
        (dl.len(), dl[0]["attempt"].as_u64(), dl[0]["http_status"].as_u64()),
        (1, Some(2), Some(502))
    );
    // Newest first and paginated: two pages of two.
    let (_, p1) = api.get("/v1/attempts?event_id=evt_att&limit=2", ADMIN).await;
    let cursor = p1["next_cursor"].as_u64().expect("a next page");
    let (_, p2) =
        api.get(&format!("/v1/attempts?event_id=evt_att&limit=2&before={cursor}"), ADMIN).await;
    let all: Vec<Value> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .cloned()
        .collect();
    // Newest first is the order attempts ended in; attempts of two endpoints made at the same
    // moment may end in either order, so the order is checked per subscription.
    for sub in [&flaky.id, &dead.id] {
        let times: Vec<&str> = all
            .iter()
            .filter(|r| r["subscription_id"] == sub.as_str())
            .map(|r| r["at"].as_str().unwrap())
            .collect();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!((times.len(), &times), (2, &sorted), "newest first for {sub}");
    }
    assert_eq!(all.len(), 4);
    // Every record, and successes alone, come from the stream read backwards, paginated too.
    let (_, everything) = api.get("/v1/attempts", ADMIN).await;
    let ids = |p: &Value| {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["attempt_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&everything).len(), 4);
    let (_, s1) = api.get("/v1/attempts?limit=3", ADMIN).await;
    let cursor = s1["next_cursor"].as_u64().expect("a next page");
    let (_, s2) = api.get(&format!("/v1/attempts?limit=3&before={cursor}"), ADMIN).await;
    assert!(s2["next_cursor"].is_null(), "{s2}");
    assert_eq!([ids(&s1), ids(&s2)].concat(), ids(&everything));
    let (_, ok) = api.get("/v1/attempts?status=succeeded", ADMIN).await;
    let ok = ok["items"].as_array().unwrap();
    assert_eq!((ok.len(), ok[0]["subscription_id"].as_str()), (1, Some(flaky.id.as_str())));
    let (_, failed) = api.get("/v1/attempts?status=failed", ADMIN).await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 2);
    // A tenant token sees its tenant's attempts only.
    let (_, acme) = api.get("/v1/attempts?event_id=evt_att", ACME).await;
    assert!(
        acme["items"].as_array().unwrap().iter().all(|r| r["subscription_id"] == flaky.id.as_str())
    );
    assert_eq!(acme["items"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn replay_by_id_and_by_time_range_reaches_endpoints_that_already_had_the_events() {
    let w = World::start().await;
    let a = w.subscribe("/replay-a", &["order.*"], None).await;
    w.subscribe("/replay-b", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let t0 = time::OffsetDateTime::now_utc();
    w.publish("order.created", "evt_rp1", None).await;
    w.publish("invoice.paid", "evt_rp2", None).await;
    w.receiver.wait_for_requests("/replay-b", 2, WAIT).await;
    w.receiver.wait_for_requests("/replay-a", 1, WAIT).await;

    let (status, r) = api.post("/v1/replay", ADMIN, json!({"event_id": "evt_rp1"})).await;
    assert_eq!((status, r["queued"].as_u64()), (202, Some(2)), "{r}");
    w.receiver.wait_for_requests("/replay-a", 2, WAIT).await;
    let since = (t0 - time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, r) =
        api.post("/v1/replay", ADMIN, json!({"since": since, "subscription_id": a.id})).await;
    assert_eq!(
        (status, r["queued"].as_u64()),
        (202, Some(2)),
        "named subscription gets every event of the range"
    );
    let (status, r) = api
        .post("/v1/replay", ADMIN, json!({"since": since, "event_types": ["invoice.paid"]}))
        .await;
    assert_eq!((status, r["queued"].as_u64()), (202, Some(1)));
    eventually_true(WAIT, "replays delivered", || async {
        w.receiver.count("/replay-a") == 4 && w.receiver.count("/replay-b") == 4
    })
    .await;
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    let ids = |p: &str| {
        let mut v: Vec<String> = w
            .receiver
            .requests_for(p)
            .iter()
            .map(|r| r.header("webhook-id").unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("/replay-a"), ["evt_rp1", "evt_rp1", "evt_rp1", "evt_rp2"]);
    assert_eq!(ids("/replay-b"), ["evt_rp1", "evt_rp1", "evt_rp2", "evt_rp2"]);
    let rfc =
        |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let (_, none) = api
        .post(
            "/v1/replay",
            ADMIN,
            json!({"since": rfc(later), "until": rfc(later + time::Duration::minutes(1))}),
        )
        .await;
    assert_eq!(none["queued"].as_u64(), Some(0), "{none}");
    app.stop().await;
}
