//! Metrics, stats and `hookline tail` after a scripted run: counts exactly, percentiles
//! plausibly.

use std::process::Stdio;

use tokio::io::AsyncBufReadExt;

use crate::api::Api;
use crate::harness::receiver::Reply;
use crate::harness::{eventually, free_port, http_client};
use crate::world::{ACME, ADMIN, WAIT, World};

/// Scripted run: /ok always 200, /flaky one 500 then 200, /dead always 500 (2 attempts).
/// Two events: 4 succeeded, 3 failed, 2 dead-lettered.
async fn scripted(w: &World) -> (String, String) {
    w.subscribe("/ok", &[], None).await;
    w.subscribe("/flaky", &[], Some("acme")).await;
    let dead = w.subscribe("/dead", &[], None).await;
    w.receiver.script("/flaky", vec![Reply::Status(500)]);
    w.receiver.set_default("/dead", Reply::Status(500));
    w.publish("order.created", "evt_o1", None).await;
    w.publish("order.created", "evt_o2", None).await;
    w.wait_for_dlq(Some(&dead.id), 2).await;
    (
        dead.id,
        w.store()
            .await
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.tenant_id.is_some())
            .unwrap()
            .id,
    )
}

#[tokio::test]
async fn stats_count_a_scripted_run_exactly_and_percentiles_plausibly() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    let (dead, flaky) = scripted(&w).await;
    let api = Api::new(&app);
    let stats = eventually(WAIT, "stats of 9 attempts", || async {
        let (_, s) = api.get("/v1/stats", ADMIN).await;
        let w5 = &s["windows"]["5m"];
        (w5["succeeded"] == 4 && w5["failed"] == 3 && w5["dead_lettered"] == 2).then_some(s)
    })
    .await;
    let w5 = &stats["windows"]["5m"];
    assert!((w5["success_rate"].as_f64().unwrap() - 4.0 / 9.0).abs() < 1e-9);
    assert_eq!(w5["failures_by_type"], serde_json::json!({"5xx": 5}));
    let (p50, p99) =
        (w5["latency_p50_ms"].as_f64().unwrap(), w5["latency_p99_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= 2500.0, "p50 {p50} p99 {p99}");
    assert_eq!(
        stats["windows"]["24h"]["succeeded"], 4,
        "the longer windows include the same attempts"
    );
    assert_eq!((stats["dlq_messages"].as_u64(), stats["backlog"].as_u64()), (Some(2), Some(0)));

    let (_, one) = api.get(&format!("/v1/subscriptions/{dead}/stats"), ADMIN).await;
    assert_eq!(
        (
            one["windows"]["1h"]["success_rate"].as_f64(),
            one["windows"]["1h"]["dead_lettered"].as_u64()
        ),
        (Some(0.0), Some(2))
    );
    assert_eq!(one["health"], "healthy");
    let (status, mine) = api.get(&format!("/v1/subscriptions/{flaky}/stats"), ACME).await;
    assert_eq!(
        (
            status,
            mine["windows"]["5m"]["succeeded"].as_u64(),
            mine["windows"]["5m"]["failed"].as_u64()
        ),
        (200, Some(2), Some(1))
    );
    let (status, _) = api.get(&format!("/v1/subscriptions/{dead}/stats"), ACME).await;
    assert_eq!(status, 404, "another tenant's stats are not revealed");
    let (status, _) = api.get("/v1/stats", ACME).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn prometheus_metrics_of_a_hookline_process_count_the_run() {
    let w = World::start().await;
    let port = free_port();
    let config = w.config_file("\"0s\", \"100ms\"");
    let _child = w
        .spawn_hookline_with_env(&config, &[("HOOKLINE_API__LISTEN", format!("127.0.0.1:{port}"))])
        .await;
    scripted(&w).await;
    let http = http_client();
    let text = eventually(WAIT, "metrics of the run", || async {
        let text = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let dl = text.contains(
            "hookline_deliveries_total{outcome=\"dead_lettered\",status_class=\"5xx\"} 2",
        );
        let ok = text
            .contains("hookline_deliveries_total{outcome=\"succeeded\",status_class=\"2xx\"} 4");
        (dl && ok).then_some(text)
    })
    .await;
    assert!(
        text.contains("hookline_deliveries_total{outcome=\"failed\",status_class=\"5xx\"} 3"),
        "{text}"
    );
    assert!(text.contains("hookline_attempt_duration_seconds_count 9"), "{text}");
    assert!(text.contains("hookline_dlq_messages 2"));
    assert!(text.contains("hookline_dead_letters_total{reason=\"retries_exhausted\"} 2"));
    assert!(
        text.contains("hookline_subscriptions 3")
            && text.contains("hookline_subscriptions_disabled 0")
    );
    assert!(text.contains("hookline_fanout_lag 0") && text.contains("hookline_in_flight 0"));
}

/// `hookline tail ARGS` against this world, once it says on stderr that it is subscribed.
async fn start_tail(w: &World, args: &[&str]) -> tokio::process::Child {
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(w.config_file("\"0s\""))
        .arg("tail")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut err = tokio::io::BufReader::new(tail.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, err.next_line()).await.unwrap().unwrap().unwrap();
    assert!(first.contains("following"), "{first}");
    // Keep reading what else it says, so that its stderr never meets a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
    tail
}

#[tokio::test]
async fn tail_prints_failures_live() {
    let w = World::start().await;
    let dead = w.subscribe("/tail-dead", &[], None).await;
    w.subscribe("/tail-ok", &[], None).await;
    w.receiver.set_default("/tail-dead", Reply::Status(503));
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    let tail = start_tail(&w, &["--failures", "--count", "2"]).await;
    w.publish("order.created", "evt_tail", None).await;
    let out = tokio::time::timeout(WAIT, tail.wait_with_output())
        .await
        .expect("tail stops after 2 lines")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("failed")
            && lines[0].contains(&dead.id)
            && lines[0].contains("evt_tail")
            && lines[0].contains("503"),
        "{text}"
    );
    assert!(lines[1].contains("dead_lettered"), "{text}");
    assert!(
        !text.contains("/tail-ok") && !text.contains("succeeded"),
        "--failures hides successes: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_fresh_process_exposes_every_known_counter_at_zero() {
    let w = World::start().await;
    let port = free_port();
    let config = w.config_file("\"0s\"");
    let _child = w
        .spawn_hookline_with_env(&config, &[("HOOKLINE_API__LISTEN", format!("127.0.0.1:{port}"))])
        .await;
    let http = http_client();
    let text = eventually(WAIT, "metrics of a fresh process", || async {
        let response = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.ok()?;
        response.status().is_success().then_some(())?;
        response.text().await.ok()
    })
    .await;
    for series in [
        "hookline_deferrals_total{reason=\"breaker_open\"} 0",
        "hookline_deferrals_total{reason=\"in_flight_limit\"} 0",
        "hookline_deferrals_total{reason=\"rate_limited\"} 0",
        "hookline_deferrals_total{reason=\"http_429\"} 0",
        "hookline_breaker_opened_total 0",
        "hookline_transient_errors_total{role=\"deliver\",backend=\"nats\"} 0",
        "hookline_transient_errors_total{role=\"deliver\",backend=\"redis\"} 0",
        "hookline_transient_errors_total{role=\"fanout\",backend=\"nats\"} 0",
        "hookline_transient_errors_total{role=\"fanout\",backend=\"redis\"} 0",
        "hookline_subscriptions_disabled_total{reason=\"failing\"} 0",
        "hookline_subscriptions_disabled_total{reason=\"gone\"} 0",
        "hookline_dead_letters_total{reason=\"retries_exhausted\"} 0",
    ] {
        assert!(text.lines().any(|l| l == series), "{series} missing from\n{text}");
    }
}

#[tokio::test]
async fn tail_prints_every_record_of_a_message_written_in_one_batch() {
    use hookline::attempt_log::{AttemptStatus, write_batch};
    let w = World::start().await;
    let sub = w.subscribe("/tail-batch", &[], None).await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let tail = start_tail(&w, &["--count", "3"]).await;
    let records = (0..3)
        .map(|n| crate::api::attempt_batches::record(n, ("tail", &sub), AttemptStatus::Succeeded))
        .collect();
    let config = w.config("\"0s\"");
    let mut redis = hookline::store::connect(&config.redis).await.expect("redis connects");
    let js = w.js().await;
    write_batch(&js, &mut redis, &w.names, std::time::Duration::from_secs(60), records).await;
    let out = tokio::time::timeout(WAIT, tail.wait_with_output())
        .await
        .expect("tail stops after 3 lines")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<bool> = (0..3).map(|n| text.contains(&format!("evt_batch_{n}"))).collect();
    assert_eq!((text.lines().count(), events), (3, vec![true; 3]), "{text}");
    app.stop().await;
}
