//! Custom headers: they arrive with every delivery, forbidden ones are refused naming the
//! header, and their values are never shown (API, lifecycle events) nor stored in the clear.

use reqwest::Method;
use serde_json::json;

use hookline::config::Config;

use crate::api::Api;
use crate::world::{ADMIN, WAIT, World};

#[tokio::test]
async fn custom_headers_arrive_and_forbidden_ones_are_refused_naming_the_header() {
    let w = World::start().await;
    // With an encryption key, header values are sealed in the bucket like the secrets.
    let key = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let toml = format!("{}[secrets]\nencryption_key = \"{key}\"\n", w.toml("\"0s\""));
    let app = w.start_app(Config::with_overrides(&toml).unwrap()).await;
    let api = Api::new(&app);
    let headers = json!({"X-Api-Key": "k-123 secret", "Authorization": "Bearer abc"});
    let (status, created) = api
        .post(
            "/v1/subscriptions",
            ADMIN,
            json!({"url": w.receiver.url("/h"), "event_types": ["order.created"], "headers": headers}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["headers"],
        json!({"Authorization": "[redacted]", "X-Api-Key": "[redacted]"}),
        "values are never shown"
    );
    let (_, got) = api.get(&format!("/v1/subscriptions/{id}"), ADMIN).await;
    assert_eq!(got["headers"]["X-Api-Key"], "[redacted]");
    let kv = w.js().await.get_key_value(w.names.subscriptions_bucket()).await.unwrap();
    let raw = String::from_utf8(kv.get(&id).await.unwrap().unwrap().to_vec()).unwrap();
    assert!(raw.contains("\"headers\":\"enc:v1:k1:"), "sealed: {raw}");
    assert!(!raw.contains("k-123") && !raw.contains("Bearer abc"), "no value in the clear");

    w.publish("order.created", "evt_h1", None).await;
    let reqs = w.receiver.wait_for_requests("/h", 1, WAIT).await;
    assert_eq!(reqs[0].header("x-api-key"), Some("k-123 secret"));
    assert_eq!(reqs[0].header("authorization"), Some("Bearer abc"));
    assert!(reqs[0].header("webhook-signature").is_some());

    for (name, value) in [
        ("webhook-signature", "v1,forged"),
        ("Content-Type", "text/plain"),
        ("Host", "evil.example"),
        ("Transfer-Encoding", "chunked"),
        ("X-Signature", "abc"),
        ("Bad Name", "v"),
        ("X-Ok", "line\nbreak"),
    ] {
        let (status, err) = api
            .post(
                "/v1/subscriptions",
                ADMIN,
                json!({"url": w.receiver.url("/x"), "headers": {name: value}}),
            )
            .await;
        assert_eq!(status, 400, "{name}: {err}");
        assert_eq!(err["error"]["field"], "headers", "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(name), "{err}");
    }

    // Update replaces the set; {} removes it.
    let path = format!("/v1/subscriptions/{id}");
    let (status, updated) =
        api.call(Method::PATCH, &path, Some(ADMIN), Some(json!({"headers": {"X-B": "2"}}))).await;
    assert_eq!((status, updated["headers"].clone()), (200, json!({"X-B": "[redacted]"})));
    let (status, err) = api
        .call(Method::PATCH, &path, Some(ADMIN), Some(json!({"headers": {"Upgrade": "h2c"}})))
        .await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("headers")));
    let (_, cleared) =
        api.call(Method::PATCH, &path, Some(ADMIN), Some(json!({"headers": {}}))).await;
    assert!(cleared.get("headers").is_none(), "{cleared}");
    app.stop().await;
}
