//! The admin HTTP API: every route's happy path, authentication, tenant isolation and each 4xx,
//! plus the OpenAPI document matching the routes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{eventually_true, http_client};
use crate::world::{ACME, ADMIN, GLOBEX, RunningApp, WAIT, World};

pub mod attempt_batches;
mod events;
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
        ("post", "/v1/subscriptions/{id}/test"),
        ("get", "/v1/subscriptions/{id}/public-key"),
        ("post", "/v1/events"),
        ("get", "/v1/attempts"),
        ("get", "/v1/live"),
        ("get", "/v1/dlq"),
        ("delete", "/v1/dlq"),
        ("get", "/v1/dlq/{seq}"),
        ("post", "/v1/dlq/{seq}/redeliver"),
        ("post", "/v1/dlq/redeliver"),
        ("post", "/v1/replay"),
        ("get", "/metrics"),
        ("get", "/v1/stats"),
        ("get", "/v1/subscriptions/{id}/stats"),
        ("post", "/v1/console-links"),
        ("get", "/console"),
        ("get", "/console/assets/{file}"),
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
        let concrete =
            path.replace("{id}", "sub_0123").replace("{seq}", "1").replace("{file}", "console.js");
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
