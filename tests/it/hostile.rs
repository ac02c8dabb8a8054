//! Endpoints that fight back, as raw TCP servers: a response body that never ends (read up to
//! `delivery.response_body_limit`, then the connection is dropped: memory cannot grow with it),
//! and slowloris endpoints that dribble their status line or body (cut by
//! `delivery.request_timeout`, 2 s in the test config, whatever they still send).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hookline::attempt_log::AttemptRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{eventually, eventually_true, http_client};
use crate::world::{ADMIN, WAIT, World};

/// How a hostile endpoint answers.
#[derive(Clone, Copy)]
enum Hostility {
    /// Status line and headers at once, then an endless chunked body.
    EndlessBody(u16),
    /// The status line one byte at a time, forever.
    SlowHeaders,
    /// Headers at once (claiming a long body), then one byte at a time.
    SlowBody(u16),
}

/// What the endpoint saw and did.
#[derive(Default)]
struct Tally {
    connections: AtomicU64,
    bytes_written: AtomicU64,
    /// Set once the client hung up on a response in progress.
    cut_off: AtomicBool,
}

async fn hostile_endpoint(how: Hostility) -> (u16, Arc<Tally>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tally = Arc::new(Tally::default());
    let t = tally.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            t.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, how, t.clone()));
        }
    });
    (port, tally)
}

async fn serve(mut stream: tokio::net::TcpStream, how: Hostility, tally: Arc<Tally>) {
    let mut request = vec![0u8; 64 * 1024];
    let _ = stream.read(&mut request).await;
    let dribble = |bytes: &'static [u8]| bytes.iter().copied().cycle();
    let result: std::io::Result<()> = async {
        match how {
            Hostility::EndlessBody(status) => {
                let head = format!("HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                loop {
                    stream.write_all(chunk.as_bytes()).await?;
                    tally.bytes_written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            }
            Hostility::SlowHeaders => {
                for byte in dribble(b"HTTP/1.1 200 OK\r\nx-slow: ") {
                    stream.write_all(&[byte]).await?;
                    tally.bytes_written.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(())
            }
            Hostility::SlowBody(status) => {
                let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 100000000\r\n\r\n");
                stream.write_all(head.as_bytes()).await?;
                for byte in dribble(b"slow ") {
                    stream.write_all(&[byte]).await?;
                    tally.bytes_written.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(())
            }
        }
    }
    .await;
    if result.is_err() {
        tally.cut_off.store(true, Ordering::SeqCst);
    }
}

/// The attempt records of one subscription, oldest first, once `n` exist.
async fn attempts(api: &str, subscription: &str, n: usize) -> Vec<AttemptRecord> {
    let http = http_client();
    eventually(WAIT, &format!("{n} attempt records"), || async {
        let resp = http
            .get(format!("{api}/v1/attempts?subscription_id={subscription}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .ok()?;
        let page: serde_json::Value = resp.json().await.ok()?;
        let mut items: Vec<AttemptRecord> = serde_json::from_value(page["items"].clone()).ok()?;
        items.reverse();
        (items.len() >= n).then_some(items)
    })
    .await
}

async fn subscribe_to(
    w: &World,
    port: u16,
    path: &str,
) -> hookline::store::subscriptions::Subscription {
    let input = hookline::store::subscriptions::SubscriptionInput {
        url: Some(format!("http://127.0.0.1:{port}{path}")),
        ..Default::default()
    };
    w.store().await.create(input).await.unwrap()
}

#[tokio::test]
async fn an_endless_response_body_is_read_up_to_the_cap_and_the_connection_dropped() {
    let w = World::start().await;
    let (ok_port, ok_tally) = hostile_endpoint(Hostility::EndlessBody(200)).await;
    let (err_port, err_tally) = hostile_endpoint(Hostility::EndlessBody(500)).await;
    let ok = subscribe_to(&w, ok_port, "/endless").await;
    let failing = subscribe_to(&w, err_port, "/endless").await;
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    w.publish("order.created", "evt_endless", None).await;

    let record = &attempts(&app.api, &ok.id, 1).await[0];
    assert_eq!(record.http_status, Some(200));
    assert_eq!(
        serde_json::to_value(record.status).unwrap(),
        "succeeded",
        "a 2xx counts even if the body never ends"
    );
    assert!(record.duration_ms < 2000, "not held until the timeout: {} ms", record.duration_ms);
    assert!(record.response_body.as_deref().unwrap_or_default().len() <= 1024);

    let records = attempts(&app.api, &failing.id, 2).await;
    for r in &records {
        assert_eq!(r.http_status, Some(500));
        assert!(r.response_body.as_deref().unwrap_or_default().len() <= 1024);
        assert!(r.error.as_deref().unwrap_or_default().len() < 1200, "error text is bounded too");
    }
    let entries = w.wait_for_dlq(Some(&failing.id), 1).await;
    assert!(entries[0].detail.len() < 1200);
    for tally in [&ok_tally, &err_tally] {
        eventually_true(WAIT, "hookline hung up on the endless body", || async {
            tally.cut_off.load(Ordering::SeqCst)
        })
        .await;
        // What was written went into socket buffers, not into hookline's memory; it stops there.
        let written = tally.bytes_written.load(Ordering::SeqCst);
        assert!(written < 64 << 20, "{written} bytes written before the hang-up");
    }
    app.stop().await;
}

#[tokio::test]
async fn slowloris_endpoints_are_cut_by_the_request_timeout() {
    let w = World::start().await;
    let (headers_port, headers_tally) = hostile_endpoint(Hostility::SlowHeaders).await;
    let (body_port, body_tally) = hostile_endpoint(Hostility::SlowBody(500)).await;
    let slow_headers = subscribe_to(&w, headers_port, "/slow").await;
    let slow_body = subscribe_to(&w, body_port, "/slow").await;
    // The fan-out waits out the first attempt's timeout instead of handing it over, which would
    // add an attempt (see hookline::pipeline::deliver::FirstAttempt).
    let mut config = w.config("\"0s\", \"100ms\"");
    config.delivery.first_attempt_deadline = Duration::from_secs(3);
    let app = w.start_app(config).await;
    w.publish("order.created", "evt_slowloris", None).await;

    for (sub, tally) in [(&slow_headers, &headers_tally), (&slow_body, &body_tally)] {
        let records = attempts(&app.api, &sub.id, 2).await;
        for r in &records {
            assert!(serde_json::to_value(r.status).unwrap() != "succeeded", "{r:?}");
            // request_timeout is 2 s; the endpoint would go on forever.
            assert!((1800..4000).contains(&r.duration_ms), "attempt cut at {} ms", r.duration_ms);
            assert!(
                r.error.as_deref().unwrap_or_default().contains("timeout")
                    || r.error.as_deref().unwrap_or_default().contains("timed out"),
                "{r:?}"
            );
        }
        w.wait_for_dlq(Some(&sub.id), 1).await;
        // Each attempt had its own connection, and hookline hung up on it: the endpoint's next
        // write fails (it would otherwise dribble on for the whole test).
        assert_eq!(tally.connections.load(Ordering::SeqCst), records.len() as u64);
        eventually_true(WAIT, "hookline hung up on the slow endpoint", || async {
            tally.cut_off.load(Ordering::SeqCst)
        })
        .await;
    }
    app.stop().await;
}
