//! The CloudEvents webhook validation handshake (`validation: cloudevents`): `OPTIONS <url>`
//! with `WebHook-Request-Origin` before first use; active only when the endpoint allows the
//! origin; its `WebHook-Allowed-Rate` becomes a rate limit; every delivery carries the origin.

use std::time::Duration;

use hookline::config::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::Api;
use crate::harness::receiver::Reply;
use crate::world::{ADMIN, WAIT, World};

const ORIGIN: &str = "hooks.test.example";

/// The world's config with `delivery.webhook_origin` set to [`ORIGIN`].
fn config(w: &World) -> Config {
    let toml = w
        .toml("\"0s\"")
        .replace("[delivery]\n", &format!("[delivery]\nwebhook_origin = \"{ORIGIN}\"\n"));
    Config::with_overrides(&toml).expect("test config is valid")
}

/// An answer allowing [`ORIGIN`] (or `*`), with these extra headers.
fn allow(origin: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("webhook-allowed-origin".to_string(), origin.to_string())];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Reply::StatusWithHeaders(200, headers)
}

async fn create(api: &Api, body: Value) -> Value {
    let (status, created) = api.post("/v1/subscriptions", ADMIN, body).await;
    assert_eq!(status, 201, "a handshake's outcome never fails the create: {created}");
    created
}

#[tokio::test]
async fn an_allowed_handshake_activates_the_subscription_and_deliveries_carry_the_origin() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let api = Api::new(&app);
    w.receiver.script("/ok", vec![allow(ORIGIN, &[])]);
    let sub = create(
        &api,
        json!({"url": w.receiver.url("/ok"), "event_types": ["order.created"], "validation": "cloudevents"}),
    )
    .await;
    assert_eq!(
        (&sub["active"], &sub["validation"], &sub["validation_status"]),
        (&json!(true), &json!("cloudevents"), &json!("allowed")),
        "{sub}"
    );
    assert!(sub["disabled_reason"].is_null() && sub["allowed_rate_per_minute"].is_null(), "{sub}");
    let plain =
        create(&api, json!({"url": w.receiver.url("/plain"), "event_types": ["order.created"]}))
            .await;
    assert_eq!((&plain["validation"], &plain["validation_status"]), (&json!("none"), &Value::Null));
    assert_eq!(w.receiver.count("/plain"), 0, "no handshake without validation");

    let options = &w.receiver.requests_for("/ok")[0];
    assert_eq!(options.method, "OPTIONS");
    assert_eq!(options.header("webhook-request-origin"), Some(ORIGIN));
    assert_eq!(options.header("webhook-request-rate"), None, "no rate limit: no rate asked");

    w.publish("order.created", "evt_hs1", None).await;
    let posts = w.receiver.wait_for_requests("/ok", 2, WAIT).await;
    assert_eq!(posts[1].method, "POST");
    assert_eq!(posts[1].header("webhook-request-origin"), Some(ORIGIN));
    assert!(posts[1].header("webhook-signature").is_some());
    let plain_post = &w.receiver.wait_for_requests("/plain", 1, WAIT).await[0];
    assert_eq!(plain_post.header("webhook-request-origin"), None, "only validated ones carry it");

    // A new url asks again: refused there, the subscription waits inactive with the reason.
    w.receiver.set_default("/moved", Reply::Status(405));
    let id = sub["id"].as_str().unwrap();
    let (status, moved) = api
        .call(
            Method::PATCH,
            &format!("/v1/subscriptions/{id}"),
            Some(ADMIN),
            Some(json!({"url": w.receiver.url("/moved")})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!((&moved["active"], &moved["validation_status"]), (&json!(false), &json!("refused")));
    assert_eq!(w.receiver.requests_for("/moved")[0].method, "OPTIONS");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_handshake_leaves_the_subscription_inactive_with_the_reason_and_undelivered() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let api = Api::new(&app);
    w.receiver.set_default("/no", Reply::Status(405));
    w.receiver.set_default("/other", allow("someone-else.example", &[]));
    let types = json!(["order.created"]);
    let no = create(
        &api,
        json!({"url": w.receiver.url("/no"), "event_types": types, "validation": "cloudevents"}),
    )
    .await;
    let other = create(
        &api,
        json!({"url": w.receiver.url("/other"), "event_types": types, "validation": "cloudevents"}),
    )
    .await;
    for (sub, says) in [(&no, "405"), (&other, "someone-else.example")] {
        assert_eq!((&sub["active"], &sub["validation_status"]), (&json!(false), &json!("refused")));
        let reason = sub["disabled_reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("handshake refused: ") && reason.contains(says), "{sub}");
    }
    // The reason is visible in get and list alike.
    let no_id = no["id"].as_str().unwrap().to_string();
    let (_, got) = api.get(&format!("/v1/subscriptions/{no_id}"), ADMIN).await;
    assert_eq!(got["disabled_reason"], no["disabled_reason"]);
    let (_, page) = api.get("/v1/subscriptions?active=false", ADMIN).await;
    let listed = page["items"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{page}");
    assert!(listed.iter().all(|s| s["validation_status"] == "refused"), "{page}");

    // No deliveries: an unvalidated subscription receives the event, the refused ones nothing.
    create(&api, json!({"url": w.receiver.url("/witness"), "event_types": types})).await;
    w.publish("order.created", "evt_hs2", None).await;
    w.receiver.wait_for_requests("/witness", 1, WAIT).await;
    for path in ["/no", "/other"] {
        let reqs = w.receiver.requests_for(path);
        assert!(reqs.iter().all(|r| r.method == "OPTIONS"), "{path}: {reqs:?}");
    }

    // Activating asks again: still refused is a conflict naming the reason; allowed activates.
    let activate = format!("/v1/subscriptions/{no_id}/activate");
    let (status, err) = api.post(&activate, ADMIN, json!({})).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("handshake_refused")), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("405"), "{err}");
    assert_eq!(w.receiver.count("/no"), 2, "one more validation request");
    w.receiver.set_default("/no", allow("*", &[]));
    let (status, active) = api.post(&activate, ADMIN, json!({})).await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(
        (&active["active"], &active["validation_status"]),
        (&json!(true), &json!("allowed"))
    );
    assert!(active["disabled_reason"].is_null(), "{active}");
    w.publish("order.created", "evt_hs3", None).await;
    let reqs = w.receiver.wait_for_requests("/no", 4, WAIT).await;
    assert_eq!(
        (reqs[3].method.as_str(), reqs[3].header("webhook-request-origin")),
        ("POST", Some(ORIGIN))
    );
    assert_eq!(reqs[3].header("webhook-id"), Some("evt_hs3"), "evt_hs2 was never delivered");
    app.stop().await;
}

#[tokio::test]
async fn the_allowed_rate_becomes_the_subscriptions_rate_limit() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let api = Api::new(&app);
    // max_rps 2 asks for 120 a minute; the endpoint grants 60 (one a second).
    w.receiver.script("/slow", vec![allow("*", &[("webhook-allowed-rate", "60")])]);
    let sub = create(
        &api,
        json!({"url": w.receiver.url("/slow"), "event_types": ["order.created"],
               "validation": "cloudevents", "max_rps": 2}),
    )
    .await;
    assert_eq!(
        (&sub["active"], &sub["allowed_rate_per_minute"]),
        (&json!(true), &json!(60)),
        "{sub}"
    );
    let options = &w.receiver.requests_for("/slow")[0];
    assert_eq!(options.header("webhook-request-rate"), Some("120"));

    for i in 0..3 {
        w.publish("order.created", &format!("evt_rate{i}"), None).await;
    }
    let reqs = w.receiver.wait_for_requests("/slow", 4, Duration::from_secs(30)).await;
    let posts: Vec<_> = reqs.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3);
    for pair in posts.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        // max_rps alone would allow 500 ms.
        assert!(gap >= Duration::from_millis(850), "requests {gap:?} apart");
    }

    // A malformed grant refuses (here on a url change).
    w.receiver.set_default("/bad", allow(ORIGIN, &[("webhook-allowed-rate", "lots")]));
    let id = sub["id"].as_str().unwrap();
    let (_, changed) = api
        .call(
            Method::PATCH,
            &format!("/v1/subscriptions/{id}"),
            Some(ADMIN),
            Some(json!({"url": w.receiver.url("/bad")})),
        )
        .await;
    assert_eq!(changed["validation_status"], "refused", "{changed}");
    assert!(changed["disabled_reason"].as_str().unwrap().contains("WebHook-Allowed-Rate"));
    assert!(changed["allowed_rate_per_minute"].is_null(), "{changed}");
    app.stop().await;
}

#[tokio::test]
async fn cli_creates_a_validated_subscription_and_shows_the_refusal() {
    let w = World::start().await;
    w.receiver.set_default("/cli", Reply::Status(404));
    let url = w.receiver.url("/cli");
    let out = w
        .cli(&[
            "subscriptions",
            "create",
            "--url",
            &url,
            "--validation",
            "cloudevents",
            "--output",
            "json",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sub: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&sub["active"], &sub["validation_status"]), (&json!(false), &json!("refused")));
    let options = &w.receiver.requests_for("/cli")[0];
    assert_eq!(
        (options.method.as_str(), options.header("webhook-request-origin")),
        ("OPTIONS", Some("hookline"))
    );
    let out = w.cli(&["subscriptions", "get", sub["id"].as_str().unwrap()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("handshake refused: ") && text.contains("404"), "{text}");
    assert!(text.contains("validation:  cloudevents, refused"), "{text}");
}
