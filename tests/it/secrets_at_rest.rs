//! Signing secrets sealed at rest (`[secrets]`): with a key configured no secret is in plain
//! text anywhere in Redis or the subscriptions bucket, deliveries are still signed with the right secret, a key rotation
//! (new key, old one kept for reading) keeps delivering, and `hookline admin reseal` leaves
//! nothing sealed with the old key, after which it can be dropped.

use hookline::config::Config;
use hookline::signing::Secret;

use crate::world::{ADMIN, WAIT, World};

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn config(w: &World, secrets: &str) -> Config {
    Config::with_overrides(&format!("{}[secrets]\n{secrets}\n", w.toml("\"0s\", \"300ms\"")))
        .expect("test config is valid")
}

/// Every value stored under the world's prefix in Redis and in the subscriptions bucket, and the
/// `secrets` field of every Redis hash and bucket value.
async fn redis_contents(w: &World) -> (String, Vec<String>) {
    use futures::StreamExt;
    let (mut all, mut secrets) = redis_only(w).await;
    let js = async_nats::jetstream::new(async_nats::connect(w.nats.url()).await.unwrap());
    let kv = js.get_key_value(w.names.subscriptions_bucket()).await.expect("the bucket exists");
    let keys: Vec<String> = kv.keys().await.unwrap().map(|k| k.unwrap()).collect().await;
    assert!(!keys.is_empty(), "the bucket holds the subscriptions");
    for key in keys {
        let value = kv.get(&key).await.unwrap().expect("a live key has a value");
        let fields: std::collections::BTreeMap<String, String> =
            serde_json::from_slice(&value).expect("a bucket value is a JSON object of strings");
        secrets.extend(fields.get("secrets").cloned());
        all.push_str(&fields.into_values().collect::<Vec<_>>().join("\n"));
    }
    (all, secrets)
}

/// Every value stored under the world's prefix in Redis, and the `secrets` field of every hash.
async fn redis_only(w: &World) -> (String, Vec<String>) {
    let mut conn = w.redis.connection().await;
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}:*", w.prefix)).query_async(&mut conn).await.unwrap();
    let (mut all, mut secrets) = (String::new(), Vec::new());
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
        let values: Vec<String> = match kind.as_str() {
            "hash" => {
                let fields: Vec<(String, String)> =
                    redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await.unwrap();
                secrets
                    .extend(fields.iter().filter(|(f, _)| f == "secrets").map(|(_, v)| v.clone()));
                fields.into_iter().flat_map(|(f, v)| [f, v]).collect()
            }
            "string" => vec![redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap()],
            "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut conn).await.unwrap(),
            _ => Vec::new(),
        };
        all.push_str(&values.join("\n"));
    }
    (all, secrets)
}

/// The key ids the stored secrets are sealed with ("" for a plain one).
fn sealed_with(stored: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = stored
        .iter()
        .flat_map(|field| serde_json::from_str::<Vec<serde_json::Value>>(field).unwrap())
        .map(|s| {
            let text = s["secret"].as_str().unwrap().to_string();
            hookline::secret_box::sealed_key_id(&text).unwrap_or("").to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Publishes one event and checks its delivery to `path` verifies with `secret`.
async fn delivered_and_verified(w: &World, path: &str, event_id: &str, secret: &str, n: usize) {
    w.publish("order.created", event_id, None).await;
    let reqs = w.receiver.wait_for_requests(path, n, WAIT).await;
    let req = reqs.iter().find(|r| r.header("webhook-id") == Some(event_id)).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = hookline::verify(
        &Secret::parse(secret).unwrap(),
        event_id,
        req.header("webhook-timestamp").unwrap(),
        req.header("webhook-signature").unwrap(),
        &req.body,
        now,
        300,
    );
    assert_eq!(verified, Ok(()), "the delivery of {event_id} to {path} verifies");
}

async fn create(api: &str, url: String) -> (String, String) {
    let body: serde_json::Value = crate::harness::http_client()
        .post(format!("{api}/v1/subscriptions"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"url": url, "event_types": ["order.created"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (body["id"].as_str().unwrap().to_string(), body["secret"].as_str().unwrap().to_string())
}

/// Runs a hookline subcommand with `[secrets]` given through the environment.
async fn cli(
    w: &World,
    encryption_key: &str,
    decryption_keys: &str,
    args: &[&str],
) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(w.config_file("\"0s\""))
        .args(args)
        .env("HOOKLINE_SECRETS__ENCRYPTION_KEY", encryption_key)
        .env("HOOKLINE_SECRETS__DECRYPTION_KEYS", decryption_keys)
        .output()
        .await
        .expect("hookline binary runs")
}

#[tokio::test]
async fn sealed_secrets_sign_deliveries_across_a_key_rotation_and_a_reseal() {
    let w = World::start().await;
    // Stored before encryption was turned on: plain, read as it is, sealed by the reseal.
    let old = w.subscribe("/old", &["order.created"], None).await;
    let old_secret = old.current_secret().expose();

    let app = w.start_app(config(&w, &format!("encryption_key = \"{K1}\""))).await;
    let (first, first_secret) = create(&app.api, w.receiver.url("/first")).await;
    let (text, stored) = redis_contents(&w).await;
    let forms = |s: &str| [s.to_string(), s.trim_start_matches("whsec_").to_string()];
    assert!(forms(&first_secret).iter().all(|f| !text.contains(f)), "a secret in plain text");
    assert_eq!(sealed_with(&stored), ["", "k1"], "the new one sealed, the old one still plain");
    delivered_and_verified(&w, "/first", "evt_1", &first_secret, 1).await;
    delivered_and_verified(&w, "/old", "evt_1", &old_secret, 1).await;
    app.stop().await;

    // Rotation: k2 seals, k1 still opens.
    let rotated = format!("encryption_key = \"{K2}\"\ndecryption_keys = [\"{K1}\"]");
    let app = w.start_app(config(&w, &rotated)).await;
    let (_, second_secret) = create(&app.api, w.receiver.url("/second")).await;
    delivered_and_verified(&w, "/first", "evt_2", &first_secret, 2).await;
    delivered_and_verified(&w, "/second", "evt_2", &second_secret, 1).await;
    app.stop().await;
    let (_, stored) = redis_contents(&w).await;
    assert_eq!(sealed_with(&stored), ["", "k1", "k2"]);

    // Without k1 a subscription sealed with it is reported, naming the key id.
    let out = cli(&w, K2, "[]", &["subscriptions", "get", &first]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("\"k1\""), "{stderr}");

    let keys = format!("[\"{K1}\"]");
    let out = cli(&w, K2, &keys, &["admin", "reseal"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("resealed 2 of 3 subscriptions"), "{stdout}");
    let (text, stored) = redis_contents(&w).await;
    assert_eq!(sealed_with(&stored), ["k2"], "nothing sealed with k1, nothing plain");
    for secret in [&old_secret, &first_secret, &second_secret] {
        assert!(forms(secret).iter().all(|f| !text.contains(f)), "a secret in plain text");
    }
    let out = cli(&w, K2, &keys, &["admin", "reseal", "--output", "json"]).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rewritten"], 0, "a second reseal has nothing to do: {report}");

    // k1 dropped: everything still opens and signs with the same secrets.
    let app = w.start_app(config(&w, &format!("encryption_key = \"{K2}\""))).await;
    delivered_and_verified(&w, "/old", "evt_3", &old_secret, 3).await;
    delivered_and_verified(&w, "/first", "evt_3", &first_secret, 3).await;
    delivered_and_verified(&w, "/second", "evt_3", &second_secret, 2).await;
    app.stop().await;
}
