//! What a Redis loss costs now that subscriptions live in the JetStream bucket: a Redis restarted
//! empty mid-run or flushed while running loses no subscription and no event (the index is
//! rebuilt from the bucket, fan-out holds events meanwhile); a change that reached the bucket but
//! not Redis heals through the watch; a concurrent change loses the compare-and-set; the
//! subscriptions of the earlier Redis-only layout are imported; `hookline admin reindex` rebuilds.

use std::collections::BTreeSet;
use std::time::Duration;

use hookline::store::subscriptions::{SubscriptionError, SubscriptionInput};
use serde_json::Value;

use crate::api::Api;
use crate::harness::{eventually_true, http_client};
use crate::world::{ADMIN, RunningApp, WAIT, World, assert_signed};

/// Events may wait out a rebuild and a Redis reconnect: a longer bound than `WAIT`.
const RECOVERY: Duration = Duration::from_secs(60);

/// The event ids delivered to `path`.
fn delivered(w: &World, path: &str) -> BTreeSet<String> {
    w.receiver
        .requests_for(path)
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect()
}

async fn publish_batch(w: &World, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = format!("evt_{tag}{i}");
        w.publish("order.created", &id, None).await;
        ids.push(id);
    }
    ids
}

async fn all_delivered(w: &World, paths: &[&str], ids: &[String]) {
    for path in paths {
        eventually_true(RECOVERY, &format!("every event at {path}"), || async {
            let got = delivered(w, path);
            ids.iter().all(|id| got.contains(id))
        })
        .await;
    }
}

async fn listed(app: &RunningApp) -> usize {
    let (_, page) = Api::new(app).get("/v1/subscriptions", ADMIN).await;
    page["items"].as_array().map_or(0, Vec::len)
}

async fn readyz(api: &str) -> (u16, Value) {
    let resp = http_client().get(format!("{api}/readyz")).send().await.expect("api answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Before, during and after a Redis loss (`lose` does it), every event reaches every matching
/// subscription and none reaches the other; the subscriptions are still listed.
async fn survives(w: &mut World, lose: impl AsyncFnOnce(&mut World) -> Vec<String>) {
    w.subscribe("/orders", &["order.*"], None).await;
    w.subscribe("/all", &[], None).await;
    w.subscribe("/invoices", &["invoice.paid"], None).await;
    let app = w.start_app(w.config("\"0s\", \"300ms\"")).await;
    assert_eq!(readyz(&app.api).await.1["subscription_index"], "ready");
    let mut ids = publish_batch(w, "before").await;
    all_delivered(w, &["/orders", "/all"], &ids).await;
    ids.extend(lose(w).await);
    ids.extend(publish_batch(w, "after").await);
    all_delivered(w, &["/orders", "/all"], &ids).await;
    assert_eq!(
        w.receiver.count("/invoices"),
        0,
        "no event reached a subscription it does not match"
    );
    assert_eq!(listed(&app).await, 3, "every subscription is still listed");
    eventually_true(WAIT, "readyz reports the index ready again", || async {
        let (status, body) = readyz(&app.api).await;
        status == 200 && body["subscription_index"] == "ready"
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn redis_restarted_empty_mid_run_loses_no_subscription_and_no_event() {
    let mut w = World::start().await;
    survives(&mut w, async |w: &mut World| {
        w.redis.kill().await;
        let during = publish_batch(w, "during").await;
        // Nothing saved: it comes back empty.
        w.redis.restart().await;
        during
    })
    .await;
}

#[tokio::test]
async fn flushall_while_running_loses_no_subscription_and_no_event() {
    let mut w = World::start().await;
    survives(&mut w, async |w: &mut World| {
        let mut conn = w.redis.connection().await;
        let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        publish_batch(w, "during").await
    })
    .await;
}

#[tokio::test]
async fn a_change_in_the_bucket_that_missed_redis_reaches_it_through_the_watch() {
    let w = World::start().await;
    let sub = w.subscribe("/old", &["order.*"], None).await;
    let app = w.start_app(w.config("\"0s\", \"300ms\"")).await;
    // As if the writer crashed between its two writes: the bucket has the new url, Redis not.
    let kv = w.js().await.get_key_value(w.names.subscriptions_bucket()).await.unwrap();
    let entry = kv.entry(&sub.id).await.unwrap().unwrap();
    let mut fields: serde_json::Map<String, Value> = serde_json::from_slice(&entry.value).unwrap();
    fields.insert("url".into(), Value::String(w.receiver.url("/new")));
    kv.update(&sub.id, serde_json::to_vec(&fields).unwrap().into(), entry.revision).await.unwrap();
    let mut n = 0;
    eventually_true(WAIT, "deliveries reach the url only the bucket was told", || {
        n += 1;
        let id = format!("evt_w{n}");
        let w = &w;
        async move {
            w.publish("order.created", &id, None).await;
            w.receiver.count("/new") > 0
        }
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn of_two_changes_from_the_same_revision_one_wins_and_the_other_conflicts() {
    let w = World::start().await;
    let store = w.store().await;
    let sub = w.subscribe("/a", &["order.*"], None).await;
    let first = SubscriptionInput { description: Some("first".into()), ..Default::default() };
    let second = SubscriptionInput { description: Some("second".into()), ..Default::default() };
    let won = store.update_at(&sub.id, first, Some(sub.revision)).await.expect("the first wins");
    assert!(won.revision > sub.revision);
    let lost = store.update_at(&sub.id, second, Some(sub.revision)).await.unwrap_err();
    assert!(matches!(lost, SubscriptionError::Conflict(_)), "{lost}");
    assert_eq!(store.require(&sub.id).await.unwrap().description, "first", "nothing overwritten");
    // The API answers a conflict with 409 in the error format.
    let err = hookline::ops::OpsError::from(lost);
    assert!(matches!(err, hookline::ops::OpsError::Conflict { code: "concurrent_change", .. }));
}

#[tokio::test]
async fn subscriptions_of_the_redis_only_layout_are_imported_at_the_first_start() {
    let w = World::start().await;
    // A subscription as earlier versions stored it: only in Redis, `<p>:sub:<id>` in `<p>:subs`.
    let id = hookline::ids::SubscriptionId::generate().into_string();
    let secret = hookline::signing::Secret::generate().expose();
    let p = &w.prefix;
    let mut conn = w.redis.connection().await;
    let fields = [
        ("id", id.as_str()),
        ("url", &w.receiver.url("/legacy")),
        ("event_types", r#"["order.*"]"#),
        ("tenant_id", ""),
        ("description", "from before the bucket"),
        ("active", "1"),
        ("metadata", r#"{"team":"shop"}"#),
        ("signature_schemes", "[]"),
        ("body_format", "\"envelope\""),
        ("secrets", &format!(r#"[{{"secret":"{secret}"}}]"#)),
        ("max_in_flight", ""),
        ("max_rps", ""),
        ("disabled_reason", ""),
        ("ordering", "\"unordered\""),
        ("created_at", "2026-01-02T03:04:05Z"),
        ("updated_at", "2026-01-02T03:04:05Z"),
    ];
    let () = redis::pipe()
        .hset_multiple(format!("{p}:sub:{id}"), &fields)
        .ignore()
        .sadd(format!("{p}:subs"), &id)
        .ignore()
        .sadd(format!("{p}:idx:patterns"), "order.*")
        .ignore()
        .sadd(format!("{p}:idx:pattern:order.*"), &id)
        .ignore()
        .set(format!("{p}:subs:version"), "old")
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let app = w.start_app(w.config("\"0s\"")).await;
    let (_, got) = Api::new(&app).get(&format!("/v1/subscriptions/{id}"), ADMIN).await;
    assert_eq!(
        (got["description"].as_str(), got["metadata"]["team"].as_str()),
        (Some("from before the bucket"), Some("shop"))
    );
    let sub = w.store().await.require(&id).await.expect("in the bucket");
    assert_eq!(sub.current_secret().expose(), secret, "the secret came along");
    w.publish("order.created", "evt_legacy", None).await;
    let reqs = w.receiver.wait_for_requests("/legacy", 1, WAIT).await;
    assert_signed(&reqs[0], &sub);
    let old_keys: Vec<bool> = redis::pipe()
        .exists(format!("{p}:sub:{id}"))
        .exists(format!("{p}:subs"))
        .exists(format!("{p}:idx:pattern:order.*"))
        .exists(format!("{p}:subs:version"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(old_keys, [false; 4], "the old layout's keys are gone");
    app.stop().await;
}

#[tokio::test]
async fn admin_reindex_rebuilds_a_damaged_index_from_the_bucket() {
    let w = World::start().await;
    let store = w.store().await;
    let sub = w.subscribe("/a", &["order.*"], None).await;
    w.subscribe("/b", &["invoice.paid"], None).await;
    let mut conn = w.redis.connection().await;
    let p = &w.prefix;
    let () = redis::pipe()
        .del(format!("{p}:{{subs}}:idx:pattern:order.*"))
        .ignore()
        .del(format!("{p}:{{subs}}:sub:{}", sub.id))
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store.matching("order.created", None).await.unwrap().is_empty(), "damaged");
    let out = w.cli(&["admin", "reindex"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 subscriptions"), "{stdout}");
    let matched = store.matching("order.created", None).await.unwrap();
    assert_eq!(matched.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [sub.id.as_str()]);
    assert!(store.marker().await.unwrap().is_some(), "the marker says complete");
}

#[tokio::test]
async fn an_index_older_than_what_a_process_applied_is_rebuilt() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    // Created while the process watches: it applies (and remembers) each revision.
    let store = w.store().await;
    let mut last = 0;
    for path in ["/a", "/b", "/c"] {
        last = w.subscribe(path, &["order.*"], None).await.revision;
    }
    let marker = format!("{}:{{subs}}:rev", w.prefix);
    let mut conn = w.redis.connection().await;
    eventually_true(WAIT, "the marker reached the last revision", || async {
        store.marker().await.unwrap() == Some(last)
    })
    .await;
    // As if Redis came back from an older snapshot: the marker (and a record) went back.
    let () = redis::pipe()
        .set(&marker, 1)
        .ignore()
        .del(format!("{}:{{subs}}:all", w.prefix))
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually_true(WAIT, "the index is rebuilt up to the last revision", || async {
        let all: usize = redis::cmd("SCARD")
            .arg(format!("{}:{{subs}}:all", w.prefix))
            .query_async(&mut w.redis.connection().await)
            .await
            .unwrap();
        store.marker().await.unwrap() == Some(last) && all == 3
    })
    .await;
    app.stop().await;
}
