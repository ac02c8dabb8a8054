//! The admin HTTP API: every route's happy path, authentication, tenant isolation and each 4xx,
//! plus the OpenAPI document matching the routes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::receiver::Reply;
use crate::harness::{eventually, eventually_true, http_client};
use crate::world::{ACME, ADMIN, GLOBEX, RunningApp, WAIT, World};

/// A tiny client for the admin API.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(app: &RunningApp) -> Api {
        Api { base: app.api.clone(), http: http_client() }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("api answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
}

fn error_field(v: &Value) -> Option<&str> {
    v["error"]["field"].as_str()
}

#[tokio::test]
async fn subscription_routes_cover_create_get_list_update_activate_rotate_and_delete() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let (status, created) = api
        .post("/v1/subscriptions", ADMIN, json!({"url": w.receiver.url("/a"), "event_types": ["order.*"], "tenant_id": "acme",
            "description": "orders", "metadata": {"team": "shop"}, "signature_schemes": ["webhook_sha256"], "body_format": "payload"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        (created["metadata"]["team"].as_str(), created["body_format"].as_str()),
        (Some("shop"), Some("payload"))
    );
    let (status, got) = api.get(&format!("/v1/subscriptions/{id}"), ADMIN).await;
    assert_eq!((status, got["id"].as_str(), got.get("secret")), (200, Some(id.as_str()), None));

    api.post(
        "/v1/subscriptions",
        ADMIN,
        json!({"url": w.receiver.url("/b"), "tenant_id": "globex", "active": false}),
    )
    .await;
    let (_, page) = api.get("/v1/subscriptions?limit=1", ADMIN).await;
    assert_eq!(
        (page["items"].as_array().unwrap().len(), page["next_offset"].as_u64()),
        (1, Some(1))
    );
    let (_, page2) = api.get("/v1/subscriptions?limit=1&offset=1", ADMIN).await;
    assert_eq!(
        (page2["items"].as_array().unwrap().len(), page2["next_offset"].as_u64()),
        (1, None)
    );
    let (_, active) = api.get("/v1/subscriptions?active=false", ADMIN).await;
    assert_eq!(active["items"][0]["tenant_id"], "globex");
    let (_, by_type) = api.get("/v1/subscriptions?event_type=order.created", ADMIN).await;
    assert_eq!(
        by_type["items"].as_array().unwrap().len(),
        2,
        "a subscription without filters receives every type"
    );
    let (_, by_type) =
        api.get("/v1/subscriptions?event_type=invoice.paid&tenant_id=acme", ADMIN).await;
    assert_eq!(by_type["items"].as_array().unwrap().len(), 0);

    let (status, updated) = api
        .call(
            Method::PATCH,
            &format!("/v1/subscriptions/{id}"),
            Some(ADMIN),
            Some(json!({"url": "https://example.com/x", "event_types": []})),
        )
        .await;
    assert_eq!(
        (status, updated["url"].as_str(), updated["event_types"].clone()),
        (200, Some("https://example.com/x"), json!([]))
    );
    let (status, _) =
        api.post(&format!("/v1/subscriptions/{id}/deactivate"), ADMIN, json!({})).await;
    assert_eq!(status, 200);
    let (status, conflict) =
        api.post(&format!("/v1/subscriptions/{id}/deactivate"), ADMIN, json!({})).await;
    assert_eq!((status, conflict["error"]["code"].as_str()), (409, Some("conflict")));
    let (status, _) = api.post(&format!("/v1/subscriptions/{id}/activate"), ADMIN, json!({})).await;
    assert_eq!(status, 200);
    let (status, rotated) =
        api.post(&format!("/v1/subscriptions/{id}/rotate-secret"), ADMIN, json!({})).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["secret"], created["secret"]);
    let (status, _) =
        api.call(Method::DELETE, &format!("/v1/subscriptions/{id}"), Some(ADMIN), None).await;
    assert_eq!(status, 204);
    let (status, body) = api.get(&format!("/v1/subscriptions/{id}"), ADMIN).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_and_health_needs_none() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let (status, body) = api.call(Method::GET, "/v1/subscriptions", token, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{token:?}"
        );
    }
    let (status, _) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
    let (status, ready) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((status, ready["ready"].as_bool()), (200, Some(true)), "{ready}");
    app.stop().await;
}

#[tokio::test]
async fn readyz_reports_redis_down_with_503() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let mut w = w;
    w.redis.kill().await;
    let (status, ready) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, ready["redis"].as_bool(), ready["nats"].as_bool()),
        (503, Some(false), Some(true))
    );
    w.redis.restart().await;
    eventually_true(WAIT, "ready again", || async {
        api.call(Method::GET, "/readyz", None, None).await.0 == 200
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn tenant_tokens_see_and_change_only_their_tenant() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let (status, mine) =
        api.post("/v1/subscriptions", ACME, json!({"url": w.receiver.url("/acme")})).await;
    assert_eq!(
        (status, mine["tenant_id"].as_str()),
        (201, Some("acme")),
        "tenant is forced to the token's"
    );
    let (status, body) = api
        .post(
            "/v1/subscriptions",
            ACME,
            json!({"url": w.receiver.url("/x"), "tenant_id": "globex"}),
        )
        .await;
    assert_eq!((status, error_field(&body)), (400, Some("tenant_id")));
    let (_, theirs) =
        api.post("/v1/subscriptions", GLOBEX, json!({"url": w.receiver.url("/globex")})).await;
    let (mine_id, theirs_id) = (mine["id"].as_str().unwrap(), theirs["id"].as_str().unwrap());

    let (_, list) = api.get("/v1/subscriptions", ACME).await;
    let ids: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine_id]);
    for (method, path) in [
        (Method::GET, format!("/v1/subscriptions/{theirs_id}")),
        (Method::PATCH, format!("/v1/subscriptions/{theirs_id}")),
        (Method::DELETE, format!("/v1/subscriptions/{theirs_id}")),
        (Method::POST, format!("/v1/subscriptions/{theirs_id}/deactivate")),
        (Method::POST, format!("/v1/subscriptions/{theirs_id}/rotate-secret")),
        (Method::GET, format!("/v1/attempts?subscription_id={theirs_id}")),
        (Method::GET, format!("/v1/dlq?subscription_id={theirs_id}")),
    ] {
        let (status, body) = api.call(method.clone(), &path, Some(ACME), Some(json!({}))).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, _) = api.get(&format!("/v1/subscriptions/{theirs_id}"), ADMIN).await;
    assert_eq!(status, 200, "the admin sees every tenant");
    let (status, body) = api
        .post(
            "/v1/events",
            ACME,
            json!({"event_type": "a.b", "payload": {}, "tenant_id": "globex"}),
        )
        .await;
    assert_eq!((status, error_field(&body)), (400, Some("tenant_id")));
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_naming_the_field() {
    let w = World::start().await;
    let mut config = w.config("\"0s\"");
    config.api.body_limit_bytes = 2048;
    config.delivery.max_payload_bytes = 1024;
    let app = w.start_app(config).await;
    let api = Api::new(&app);
    let cases = [
        (json!({"url": "ftp://x/"}), "url"),
        (json!({"url": "https://x/", "event_types": ["a..b"]}), "event_types"),
        (json!({"url": "https://x/", "tenant_id": "bad tenant"}), "tenant_id"),
        (json!({"event_types": []}), "url"),
        (json!({"url": "https://x/", "colour": "red"}), "colour"),
        (json!({"url": 7}), "url"),
        (json!({"url": "https://x/", "signature_schemes": ["md5"]}), "signature_schemes"),
    ];
    for (body, field) in cases {
        let (status, resp) = api.post("/v1/subscriptions", ADMIN, body.clone()).await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(error_field(&resp), Some(field), "{body}: {resp}");
        assert!(resp["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, resp) = api.get("/v1/subscriptions?limit=0", ADMIN).await;
    assert_eq!((status, error_field(&resp)), (400, Some("limit")));
    let (status, resp) = api.get("/v1/attempts?status=weird", ADMIN).await;
    assert_eq!((status, error_field(&resp)), (400, Some("status")));
    let (status, resp) =
        api.post("/v1/events", ADMIN, json!({"event_type": "bad type", "payload": 1})).await;
    assert_eq!((status, error_field(&resp)), (400, Some("event_type")));
    let (status, resp) = api
        .post(
            "/v1/events",
            ADMIN,
            json!({"event_id": "no spaces", "event_type": "a", "payload": 1}),
        )
        .await;
    assert_eq!((status, error_field(&resp)), (400, Some("event_id")));
    let (status, resp) = api
        .post("/v1/events", ADMIN, json!({"event_type": "a", "payload": "x".repeat(1500)}))
        .await;
    assert_eq!((status, resp["error"]["code"].as_str()), (413, Some("event_too_large")));
    let (status, resp) = api
        .post("/v1/events", ADMIN, json!({"event_type": "a", "payload": "x".repeat(4000)}))
        .await;
    assert_eq!((status, resp["error"]["code"].as_str()), (413, Some("body_too_large")));
    let (status, resp) = api.get("/v1/nothing-here", ADMIN).await;
    assert_eq!((status, resp["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, resp) = api.post("/v1/replay", ADMIN, json!({})).await;
    assert_eq!((status, error_field(&resp)), (400, Some("event_id")));
    let (status, _) = api.post("/v1/replay", ADMIN, json!({"event_id": "evt_never"})).await;
    assert_eq!(status, 404);
    let (status, resp) = api.post("/v1/dlq/redeliver", ADMIN, json!({})).await;
    assert_eq!((status, error_field(&resp)), (400, Some("sequences")));
    app.stop().await;
}

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
async fn openapi_document_lists_every_route_and_each_answers() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let (status, doc) = api.get("/openapi.json", ADMIN).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
        ("post", "/v1/subscriptions"),
        ("get", "/v1/subscriptions"),
        ("get", "/v1/subscriptions/{id}"),
        ("patch", "/v1/subscriptions/{id}"),
        ("delete", "/v1/subscriptions/{id}"),
        ("post", "/v1/subscriptions/{id}/activate"),
        ("post", "/v1/subscriptions/{id}/deactivate"),
        ("post", "/v1/subscriptions/{id}/rotate-secret"),
        ("post", "/v1/events"),
        ("get", "/v1/attempts"),
        ("get", "/v1/dlq"),
        ("delete", "/v1/dlq"),
        ("get", "/v1/dlq/{seq}"),
        ("post", "/v1/dlq/{seq}/redeliver"),
        ("post", "/v1/dlq/redeliver"),
        ("post", "/v1/replay"),
        ("get", "/metrics"),
        ("get", "/v1/stats"),
        ("get", "/v1/subscriptions/{id}/stats"),
    ];
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut want: Vec<(String, String)> =
        expected.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    want.sort();
    assert_eq!(documented, want);
    // Every documented operation is a real route: unauthenticated it answers 401 (health 200),
    // never the 404 of an unknown route.
    for (method, path) in &want {
        let concrete = path.replace("{id}", "sub_0123").replace("{seq}", "1");
        let (status, body) = api
            .call(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                &concrete,
                None,
                Some(json!({})),
            )
            .await;
        let expected = if path.starts_with("/v1/") || path == "/openapi.json" { 401 } else { 200 };
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
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
