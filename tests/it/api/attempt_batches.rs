//! The attempt log writes one message per subscription and batch (JSON Lines): every record of
//! such a message is found by every query (by subscription, event, tenant, status, and the
//! stream read backwards), once, newest first, across pages.

use std::collections::HashSet;
use std::time::Duration;

use hookline::attempt_log::{AttemptRecord, AttemptStatus, write_batch};
use hookline::store::subscriptions::Subscription;
use serde_json::Value;
use time::OffsetDateTime;

use super::Api;
use crate::world::{ACME, ADMIN, World};

/// Record `n` of `sub` (its attempt id `att_<name>_<n>`, event `evt_batch_<n>`).
pub fn record(
    n: usize,
    (name, sub): (&str, &Subscription),
    status: AttemptStatus,
) -> AttemptRecord {
    AttemptRecord {
        attempt_id: format!("att_{name}_{n}"),
        subscription_id: sub.id.clone(),
        event_id: format!("evt_batch_{n}"),
        event_type: "order.created".into(),
        tenant_id: sub.tenant_id.clone(),
        attempt: 1,
        status,
        http_status: Some(if status == AttemptStatus::Succeeded { 204 } else { 500 }),
        duration_ms: 1,
        error: None,
        error_kind: None,
        // Big enough that the records of one subscription need several messages.
        response_body: Some(format!("{n}\n{}", "x".repeat(600))),
        next_retry_at: None,
        at: OffsetDateTime::UNIX_EPOCH + Duration::from_millis(n as u64),
        test: false,
    }
}

/// Every page of `path` (which ends in a query string), following `next_cursor`.
async fn all_pages(api: &Api, path: &str, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<u64> = None;
    for _ in 0..100 {
        let url = match cursor {
            Some(c) => format!("{path}&before={c}"),
            None => path.to_string(),
        };
        let (status, page) = api.get(&url, token).await;
        assert_eq!(status, 200, "{url}: {page}");
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["attempt_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_u64() {
            Some(c) => cursor = Some(c),
            None => return ids,
        }
    }
    panic!("{path}: more than 100 pages");
}

#[tokio::test]
async fn records_written_together_are_each_found_once_newest_first() {
    let w = World::start().await;
    let config = w.config("\"0s\"");
    let app = w.start_app(config.clone()).await;
    let api = Api::new(&app);
    let js = w.js().await;
    let mut redis = hookline::store::connect(&config.redis).await.expect("redis connects");
    let a = w.subscribe("/a", &["order.created"], None).await;
    let b = w.subscribe("/b", &["order.created"], Some("acme")).await;
    // 1,100 records of one subscription (every 100th a failure), 3 of another, in one batch.
    let mut records: Vec<AttemptRecord> = (0..1100)
        .map(|n| {
            let status =
                if n % 100 == 0 { AttemptStatus::Failed } else { AttemptStatus::Succeeded };
            record(n, ("a", &a), status)
        })
        .collect();
    records.extend((0..3).map(|n| record(n, ("b", &b), AttemptStatus::Succeeded)));
    write_batch(&js, &mut redis, &w.names, Duration::from_secs(3600), records).await;

    // Few messages: 1,100 records of ~700 bytes need three messages of at most 256 KiB (and
    // 1,024 records), the other subscription's three records one.
    let messages = w.stream_messages(&w.names.attempts_stream()).await;
    assert!((2..=6).contains(&messages), "{messages} messages for 1,103 records");
    let raw = js
        .get_stream(w.names.attempts_stream())
        .await
        .unwrap()
        .direct_get_last_for_subject(w.names.attempts(&b.id))
        .await
        .unwrap();
    let lines: Vec<Value> =
        raw.payload.split(|b| *b == b'\n').map(|l| serde_json::from_slice(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "one JSON record per line");
    assert_eq!(lines[2]["attempt_id"], "att_b_2");

    let newest_first: Vec<String> = (0..1100).rev().map(|n| format!("att_a_{n}")).collect();
    // By subscription (its index), pages of 170 across message boundaries.
    let path = format!("/v1/attempts?subscription_id={}&limit=170", a.id);
    let by_sub = all_pages(&api, &path, ADMIN).await;
    assert_eq!(by_sub, newest_first);
    // The stream read backwards (every record), pages of 300.
    let every = all_pages(&api, "/v1/attempts?limit=300", ADMIN).await;
    assert_eq!(every.len(), 1103, "each record once");
    assert_eq!(every.iter().collect::<HashSet<_>>().len(), 1103);
    let every_a: Vec<String> = every.into_iter().filter(|id| id.starts_with("att_a_")).collect();
    assert_eq!(every_a, newest_first);
    // By status (failures: their index), by event, by tenant.
    let failed = all_pages(&api, "/v1/attempts?status=failed&limit=4", ADMIN).await;
    let expect: Vec<String> = (0..11).rev().map(|n| format!("att_a_{}", n * 100)).collect();
    assert_eq!(failed, expect);
    let by_event = all_pages(&api, "/v1/attempts?event_id=evt_batch_1&limit=1", ADMIN).await;
    // Records of one batch are written subscription by subscription (in id order): the later
    // message holds the newer positions.
    let expect = if a.id < b.id { ["att_b_1", "att_a_1"] } else { ["att_a_1", "att_b_1"] };
    assert_eq!(by_event, expect);
    let tenant = all_pages(&api, "/v1/attempts?limit=2", ACME).await;
    assert_eq!(tenant, ["att_b_2", "att_b_1", "att_b_0"]);
    app.stop().await;
}
