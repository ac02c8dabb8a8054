//! The console in a real browser, second part: the live overview and tail, replay of a time
//! range, the DLQ's reason filter, keyboard use and phone width (scenarios in
//! `tests/browser/`, run as in `browser`).

use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

use super::browser::{link, node, scenario, shots};
use super::config;
use crate::api::Api;
use crate::harness::eventually_true;
use crate::harness::receiver::Reply;
use crate::world::{ADMIN, WAIT, World};

/// Waits for the scenario to print `line`.
async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, line: &str) {
    let seen = tokio::time::timeout(WAIT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l == line {
                return true;
            }
        }
        false
    });
    assert!(seen.await.unwrap_or(false), "the scenario reached {line:?}");
}

#[tokio::test]
async fn the_overview_and_the_live_tail_update_from_the_live_feed_without_reloading() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    w.subscribe("/tail", &["order.*"], None).await;
    let (dir, _keep) = shots();
    let url = link(&app, json!({})).await;
    let mut child = node("live.mjs", &[&url, "evt_tail", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    expect_line(&mut lines, "ready").await;
    for i in 0..5 {
        w.publish("order.created", &format!("evt_overview_{i}"), None).await;
    }
    expect_line(&mut lines, "tail").await;
    w.publish("order.created", "evt_tail", None).await;
    let exit = tokio::time::timeout(2 * WAIT, child.wait()).await.expect("in time").unwrap();
    let rest = lines.next_line().await.ok().flatten().unwrap_or_default();
    assert!(exit.success() && rest == "ok", "the live views updated ({rest})");
    app.stop().await;
}

#[tokio::test]
async fn a_time_range_is_replayed_to_one_subscription_from_the_console() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let target = w.subscribe("/range-target", &["order.*"], None).await;
    w.subscribe("/range-bystander", &["order.*"], None).await;
    w.publish("order.created", "evt_range", None).await;
    w.receiver.wait_for_requests("/range-target", 1, WAIT).await;
    w.receiver.wait_for_requests("/range-bystander", 1, WAIT).await;
    let url = link(&app, json!({})).await;
    scenario("replay.mjs", &[&url, target.id.as_str()]).await;
    eventually_true(WAIT, "the replayed event reaches the chosen endpoint again", || async {
        w.receiver.count("/range-target") == 2
    })
    .await;
    assert_eq!(w.receiver.count("/range-bystander"), 1, "the other endpoint gets nothing");
    app.stop().await;
}

#[tokio::test]
async fn the_dlq_is_filtered_by_reason_and_only_the_entries_shown_are_redelivered() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let exhausted = w.subscribe("/exhausted", &["order.*"], None).await;
    let gone = w.subscribe("/gone", &["invoice.*"], None).await;
    w.receiver.set_default("/exhausted", Reply::Status(500));
    w.receiver.set_default("/gone", Reply::Status(410));
    w.publish("order.created", "evt_exhausted", None).await;
    w.publish("invoice.paid", "evt_gone", None).await;
    let kept = w.wait_for_dlq(Some(exhausted.id.as_str()), 1).await.remove(0);
    let shown = w.wait_for_dlq(Some(gone.id.as_str()), 1).await.remove(0);
    assert_eq!(
        (kept.reason.as_str(), shown.reason.as_str()),
        ("retries_exhausted", "endpoint_gone")
    );
    let url = link(&app, json!({})).await;
    let (seq, other) = (shown.sequence.to_string(), kept.sequence.to_string());
    scenario("dlq-reason.mjs", &[&url, "endpoint_gone", &seq, &other]).await;
    let left: Vec<u64> = w.dlq(None).await.iter().map(|d| d.sequence).collect();
    assert!(left.contains(&kept.sequence), "the entry not shown stays: {left:?}");
    assert!(!left.contains(&shown.sequence), "the entry shown was redelivered: {left:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_console_is_used_with_the_keyboard_alone() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/keys", &["order.*"], None).await;
    let url = link(&app, json!({})).await;
    scenario("keyboard.mjs", &[&url, sub.id.as_str()]).await;
    let (_, got) = Api::new(&app).get(&format!("/v1/subscriptions/{}", sub.id), ADMIN).await;
    assert_eq!(got["active"], false, "deactivated from the keyboard: {got}");
    app.stop().await;
}

#[tokio::test]
async fn every_view_fits_a_phones_width() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/phone", &["order.*"], None).await;
    w.publish("order.created", "evt_phone", None).await;
    w.receiver.wait_for_requests("/phone", 1, WAIT).await;
    let (dir, _keep) = shots();
    let url = link(&app, json!({})).await;
    scenario("phone.mjs", &[&url, sub.id.as_str(), dir.to_str().unwrap()]).await;
    app.stop().await;
}

#[tokio::test]
async fn a_test_event_is_sent_from_the_console_and_its_outcome_shown() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let ok = w.subscribe("/test-ok", &["order.*"], Some("acme")).await;
    let broken = w.subscribe("/test-broken", &["order.*"], None).await;
    w.receiver.set_default("/test-broken", Reply::StatusWithBody(500, "not today".into()));
    // The tenant portal tests its own endpoint; the operator one that fails.
    let tenant = link(&app, json!({"tenant_id": "acme"})).await;
    scenario("test-event.mjs", &[&tenant, ok.id.as_str(), "Test event delivered: HTTP 200"]).await;
    let admin = link(&app, json!({})).await;
    scenario("test-event.mjs", &[&admin, broken.id.as_str(), "not today"]).await;
    let got = w.receiver.requests_for("/test-ok");
    assert_eq!(got.len(), 1, "one test request");
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "webhook.test", "{body}");
    assert!(w.dlq(None).await.is_empty(), "a failed test is not dead-lettered");
    app.stop().await;
}

#[tokio::test]
async fn filter_retry_schedule_and_headers_are_set_from_the_console() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/features", &["order.*"], Some("acme")).await;
    let url = link(&app, json!({"tenant_id": "acme"})).await;
    let signed_url = w.receiver.url("/ed25519");
    scenario("features.mjs", &[&url, sub.id.as_str(), &signed_url]).await;
    let (_, got) = Api::new(&app).get(&format!("/v1/subscriptions/{}", sub.id), ADMIN).await;
    assert_eq!(got["filter"], json!({"amount": {"$gt": 100}}), "{got}");
    assert_eq!(got["retry_schedule"], json!(["0s", "5s"]), "{got}");
    assert!(got["headers"].get("X-Api-Key").is_some(), "{got}");
    // The endpoint made in the console is acme's (the tenant link's) and signs with ed25519.
    let (_, page) = Api::new(&app).get("/v1/subscriptions?tenant_id=acme", ADMIN).await;
    let made: Vec<&serde_json::Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["url"] == signed_url.as_str())
        .collect();
    assert_eq!(made.len(), 1, "{page}");
    assert_eq!(made[0]["key_type"], "ed25519", "{page}");
    assert!(made[0]["public_key"].as_str().unwrap().starts_with("whpk_"), "{page}");
    app.stop().await;
}
