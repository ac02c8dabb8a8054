//! `GET /v1/live`, the console's live feed (server-sent events): attempts as they happen and a
//! summary each second, limited to the token's tenant, and its 4xx for bad input.

use serde_json::{Value, json};

use super::config;
use crate::api::Api;
use crate::harness::http_client;
use crate::world::{ACME, ADMIN, RunningApp, WAIT, World};

/// An open feed, read event by event.
struct Feed {
    resp: reqwest::Response,
    buf: String,
}

impl Feed {
    async fn open(app: &RunningApp, query: &str, token: &str) -> Feed {
        let resp = http_client()
            .get(format!("{}/v1/live{query}", app.api))
            .bearer_auth(token)
            .send()
            .await
            .expect("the feed answers");
        assert_eq!(resp.status(), 200);
        let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Feed { resp, buf: String::new() }
    }

    /// The next event: (name, data).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if !data.is_empty() {
                    return (name, serde_json::from_str(&data).expect("data is JSON"));
                }
                continue;
            }
            let chunk = self.resp.chunk().await.expect("stream reads").expect("stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// Reads until `want` holds for an event, within the deadline; returns the events read.
    async fn until(
        &mut self,
        what: &str,
        want: impl Fn(&str, &Value) -> bool,
    ) -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let (name, data) = self.next().await;
                let hit = want(&name, &data);
                seen.push((name, data));
                if hit {
                    return;
                }
            }
        })
        .await;
        assert!(found.is_ok(), "{what}: not seen in {seen:?}");
        seen
    }
}

#[tokio::test]
async fn the_feed_streams_attempts_as_they_happen_and_counts_them_each_second() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/live-feed", &["order.*"], None).await;
    let mut feed = Feed::open(&app, "", ADMIN).await;
    w.publish("order.created", "evt_live_1", None).await;
    let seen =
        feed.until("the attempt", |n, d| n == "attempt" && d["event_id"] == "evt_live_1").await;
    let (_, attempt) = seen.last().unwrap();
    assert_eq!(attempt["subscription_id"], sub.id.as_str());
    assert_eq!(attempt["status"], "succeeded");
    assert_eq!(attempt["http_status"], 200);
    // The second it happened in is summed up in a tick (this one or the next).
    let ticks = feed.until("a tick counting it", |n, d| n == "tick" && d["succeeded"] == 1).await;
    let (_, tick) = ticks.last().unwrap();
    assert!(tick["latency_p50_ms"].is_u64(), "{tick}");
    assert_eq!(tick["dropped"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_follows_only_its_own_attempts_and_not_another_tenants_subscription() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let own = w.subscribe("/acme-live", &["order.*"], Some("acme")).await;
    let other = w.subscribe("/globex-live", &["order.*"], Some("globex")).await;
    let mut feed = Feed::open(&app, "", ACME).await;
    w.publish("order.created", "evt_live_globex", Some("globex")).await;
    w.receiver.wait_for_requests("/globex-live", 1, WAIT).await;
    w.publish("order.created", "evt_live_acme", Some("acme")).await;
    let seen = feed
        .until("acme's attempt", |n, d| n == "attempt" && d["event_id"] == "evt_live_acme")
        .await;
    let attempts: Vec<&Value> =
        seen.iter().filter(|(n, _)| n == "attempt").map(|(_, d)| d).collect();
    assert!(
        attempts.iter().all(|a| a["subscription_id"] == own.id.as_str()),
        "only acme's attempts: {attempts:?}"
    );
    let api = Api::new(&app);
    let (status, body) = api.get(&format!("/v1/live?subscription_id={}", other.id), ACME).await;
    assert_eq!(status, 404, "another tenant's subscription is not found: {body}");
    app.stop().await;
}

#[tokio::test]
async fn failures_only_passes_on_failures_and_bad_queries_name_the_field() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let ok = w.subscribe("/live-ok", &["order.*"], None).await;
    let bad = w.subscribe("/live-bad", &["invoice.*"], None).await;
    w.receiver.set_default("/live-bad", crate::harness::receiver::Reply::Status(500));
    let mut feed = Feed::open(&app, "?failures=true", ADMIN).await;
    w.publish("order.created", "evt_live_ok", None).await;
    w.receiver.wait_for_requests("/live-ok", 1, WAIT).await;
    w.publish("invoice.paid", "evt_live_bad", None).await;
    let seen =
        feed.until("the failure", |n, d| n == "attempt" && d["event_id"] == "evt_live_bad").await;
    assert!(
        seen.iter().all(|(n, d)| n != "attempt" || d["subscription_id"] == bad.id.as_str()),
        "no success of {} passed on: {seen:?}",
        ok.id
    );
    let api = Api::new(&app);
    for (query, field) in
        [("?subscription_id=not%20an%20id", "subscription_id"), ("?failures=maybe", "failures")]
    {
        let (status, body) = api.get(&format!("/v1/live{query}"), ADMIN).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], json!(field), "{query}: {body}");
    }
    let (status, _) = api.call(reqwest::Method::GET, "/v1/live", None, None).await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test]
async fn every_record_of_a_message_written_in_one_batch_reaches_the_feed() {
    use hookline::attempt_log::{AttemptStatus, write_batch};
    let w = World::start().await;
    let config = config(&w);
    let app = w.start_app(config.clone()).await;
    let sub = w.subscribe("/live-batch", &["order.*"], None).await;
    let mut feed = Feed::open(&app, "", ADMIN).await;
    // Three records of one subscription in one batch: one JSON Lines message.
    let records = (0..3)
        .map(|n| crate::api::attempt_batches::record(n, ("live", &sub), AttemptStatus::Succeeded))
        .collect();
    let mut redis = hookline::store::connect(&config.redis).await.expect("redis connects");
    let js = w.js().await;
    write_batch(&js, &mut redis, &w.names, std::time::Duration::from_secs(60), records).await;
    assert_eq!(w.stream_messages(&w.names.attempts_stream()).await, 1, "one message");
    let seen = feed
        .until("the third record", |n, d| n == "attempt" && d["attempt_id"] == "att_live_2")
        .await;
    let ids: Vec<&str> = seen
        .iter()
        .filter(|(n, _)| n == "attempt")
        .map(|(_, d)| d["attempt_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["att_live_0", "att_live_1", "att_live_2"]);
    app.stop().await;
}
