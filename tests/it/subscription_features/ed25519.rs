//! Standard Webhooks v1a (ed25519): deliveries verified by an independent implementation
//! written from the spec text (Python `cryptography`, `tests/it/python/v1a_verify.py`), during
//! a rotation (both keys sign) and after it (only the new key does); the public keys through
//! the API, and verification through the library and `hookline verify`.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::api::Api;
use crate::harness::eventually_true;
use crate::harness::receiver::Recorded;
use crate::world::{ADMIN, WAIT, World, python_json};

/// Which of `keys` verify each delivery, according to the Python verifier.
async fn python_verifies(deliveries: &[&Recorded], keys: &[&str]) -> Vec<Vec<String>> {
    let input: Vec<Value> = deliveries
        .iter()
        .map(|r| {
            json!({
                "id": r.header("webhook-id").unwrap(),
                "timestamp": r.header("webhook-timestamp").unwrap(),
                "signature": r.header("webhook-signature").unwrap(),
                "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
                "public_keys": keys,
            })
        })
        .collect();
    let what =
        "v1a_verify.py failed (needs python3 `cryptography`: scripts/ensure-deps.sh installs it)";
    let out = python_json("python3", "v1a_verify.py", &json!(input), what).await;
    serde_json::from_value(out).unwrap()
}

async fn public_keys(api: &Api, id: &str) -> Vec<String> {
    let (status, keys) = api.get(&format!("/v1/subscriptions/{id}/public-key"), ADMIN).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["public_key"], keys["public_keys"][0]);
    serde_json::from_value(keys["public_keys"].clone()).unwrap()
}

async fn delivered(w: &World, n: usize) -> Recorded {
    eventually_true(WAIT, "the delivery", || async { w.receiver.count("/v1a") >= n }).await;
    w.receiver.requests_for("/v1a")[n - 1].clone()
}

/// `hookline verify` with `key`, the body on stdin; true when it exits 0.
async fn cli_verifies(req: &Recorded, key: &str) -> bool {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["verify", "--secret", key])
        .args(["--id", req.header("webhook-id").unwrap()])
        .args(["--timestamp", req.header("webhook-timestamp").unwrap()])
        .args(["--signature", req.header("webhook-signature").unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&req.body).await.unwrap();
    drop(stdin);
    child.wait().await.unwrap().success()
}

#[tokio::test]
async fn v1a_signatures_verify_with_an_independent_ed25519_during_and_after_a_rotation() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let body = json!({"url": w.receiver.url("/v1a"), "event_types": ["order.created"], "key_type": "ed25519"});
    let (status, created) = api.post("/v1/subscriptions", ADMIN, body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["key_type"], "ed25519");
    assert!(created.get("secret").is_none(), "no secret to show: {created}");
    let pk1 = created["public_key"].as_str().unwrap().to_string();
    assert!(pk1.starts_with("whpk_"), "{pk1}");
    assert!(!created.to_string().contains("whsk_"), "the signing key is never shown");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(public_keys(&api, &id).await, [pk1.as_str()]);
    let (_, got) = api.get(&format!("/v1/subscriptions/{id}"), ADMIN).await;
    assert_eq!(got["public_key"], pk1.as_str());

    w.publish("order.created", "evt_v1a_1", None).await;
    let first = delivered(&w, 1).await;
    let header = first.header("webhook-signature").unwrap();
    assert!(header.starts_with("v1a,") && !header.contains(' '), "{header}");

    // During the grace window both keys sign.
    let (status, rotated) =
        api.post(&format!("/v1/subscriptions/{id}/rotate-secret"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated.get("secret").is_none());
    let pk2 = rotated["public_key"].as_str().unwrap().to_string();
    assert_ne!(pk1, pk2);
    assert_eq!(public_keys(&api, &id).await, [pk2.clone(), pk1.clone()]);
    w.publish("order.created", "evt_v1a_2", None).await;
    let during = delivered(&w, 2).await;
    assert_eq!(during.header("webhook-signature").unwrap().split(' ').count(), 2);

    // After the window (a rotation with no grace) only the newest key signs.
    let store = w.store().await;
    let after = store.rotate_secret(&id, Duration::ZERO).await.unwrap();
    let pk3 = after.public_key.clone().unwrap();
    assert_eq!(public_keys(&api, &id).await, [pk3.as_str()]);
    w.publish("order.created", "evt_v1a_3", None).await;
    let last = delivered(&w, 3).await;

    let keys = [pk1.as_str(), pk2.as_str(), pk3.as_str()];
    let verified = python_verifies(&[&first, &during, &last], &keys).await;
    assert_eq!(
        verified,
        vec![vec![pk1.clone()], vec![pk1.clone(), pk2.clone()], vec![pk3.clone()]]
    );

    // The library and `hookline verify` accept v1a given a whpk_ key.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let lib = |req: &Recorded, key: &str| {
        hookline::verify(
            &hookline::signing::PublicKey::parse(key).unwrap(),
            req.header("webhook-id").unwrap(),
            req.header("webhook-timestamp").unwrap(),
            req.header("webhook-signature").unwrap(),
            &req.body,
            now,
            300,
        )
    };
    assert_eq!(lib(&during, &pk2), Ok(()));
    assert!(lib(&last, &pk1).is_err());
    assert!(cli_verifies(&last, &pk3).await);
    assert!(!cli_verifies(&last, &pk2).await);

    // The key type is fixed; v1a has no HMAC schemes; an hmac subscription has no public key.
    let path = format!("/v1/subscriptions/{id}");
    let (status, err) =
        api.call(Method::PATCH, &path, Some(ADMIN), Some(json!({"key_type": "hmac"}))).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("key_type")), "{err}");
    let (status, err) = api
        .post(
            "/v1/subscriptions",
            ADMIN,
            json!({"url": w.receiver.url("/x"), "key_type": "ed25519", "signature_schemes": ["webhook_sha256"]}),
        )
        .await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("signature_schemes")));
    let (_, hmac) =
        api.post("/v1/subscriptions", ADMIN, json!({"url": w.receiver.url("/x")})).await;
    assert_eq!(hmac["key_type"], "hmac");
    assert!(hmac["secret"].as_str().unwrap().starts_with("whsec_"));
    let hmac_id = hmac["id"].as_str().unwrap();
    let (status, err) = api.get(&format!("/v1/subscriptions/{hmac_id}/public-key"), ADMIN).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("no_public_key")));
    app.stop().await;
}
