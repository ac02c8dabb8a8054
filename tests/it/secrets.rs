//! Signing secrets never leave the places meant for them (the create/rotate response, the
//! CLI's stdout on create/rotate, Redis): a hookline process run with `RUST_LOG=debug` through
//! create, rotate, successful and failing deliveries and a DLQ entry logs none of them, and
//! neither do the CLI's stderr, attempt records, DLQ entries, lifecycle events, the API's
//! subscription views or `Debug` output.

use std::process::Stdio;

use futures::StreamExt;

use crate::harness::receiver::Reply;
use crate::harness::{eventually, http_client};
use crate::world::{ADMIN, WAIT, World, assert_signed};

/// Every form a secret could leak in: the `whsec_...` text and its base64 key alone.
fn forms(secret: &str) -> [String; 2] {
    [secret.to_string(), secret.trim_start_matches("whsec_").to_string()]
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(!text.contains(&form), "a secret appears in {what}");
        }
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_errors_attempt_records_lifecycle_events_or_debug() {
    let w = World::start().await;
    let log_path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let log = std::fs::File::create(&log_path).unwrap();
    let config = w.config_file("\"0s\", \"100ms\"");
    let mut lifecycle =
        w.nats.client().await.subscribe(format!("{}.lifecycle.>", w.prefix)).await.unwrap();
    let _child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let api = eventually(WAIT, "the child's admin api address in its log", || async {
        let text = std::fs::read_to_string(&log_path).ok()?;
        let line = text.lines().find(|l| l.contains("admin api listening"))?;
        let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
        Some(format!("http://{addr}"))
    })
    .await;
    let http = http_client();
    let create = |path: &'static str| {
        let http = http.clone();
        let (api, url) = (api.clone(), w.receiver.url(path));
        async move {
            let body: serde_json::Value = http
                .post(format!("{api}/v1/subscriptions"))
                .bearer_auth(ADMIN)
                .json(&serde_json::json!({"url": url}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body["id"].as_str().unwrap().to_string(), body["secret"].as_str().unwrap().to_string())
        }
    };
    let (ok_id, first) = create("/ok").await;
    let (_failing_id, failing_secret) = create("/fails").await;
    w.receiver.set_default("/fails", Reply::Status(500));
    w.publish("order.created", "evt_s1", None).await;
    w.receiver.wait_for_requests("/ok", 1, WAIT).await;
    let rotated: serde_json::Value = http
        .post(format!("{api}/v1/subscriptions/{ok_id}/rotate-secret"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = rotated["secret"].as_str().unwrap().to_string();
    w.publish("order.created", "evt_s2", None).await;
    let reqs = w.receiver.wait_for_requests("/ok", 2, WAIT).await;
    assert_signed(&reqs[1], &w.store().await.require(&ok_id).await.unwrap());
    w.wait_for_dlq(None, 2).await;

    // The CLI: create and rotate print the secret on stdout, by design; stderr stays clean.
    let cli = |args: &'static [&'static str], extra: Option<String>| {
        let config = config.clone();
        async move {
            let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"));
            cmd.arg("--config").arg(&config).args(args).env("RUST_LOG", "debug");
            if let Some(extra) = extra {
                cmd.arg(extra);
            }
            cmd.output().await.unwrap()
        }
    };
    let created = cli(
        &["subscriptions", "create", "--output", "json", "--url"],
        Some(w.receiver.url("/cli")),
    )
    .await;
    let created_json: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let cli_secret = created_json["secret"].as_str().unwrap().to_string();
    let cli_id = created_json["id"].as_str().unwrap().to_string();
    let rotated_cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(&config)
        .args(["subscriptions", "rotate-secret", &cli_id])
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    let rotated_cli_stdout = String::from_utf8_lossy(&rotated_cli.stdout).to_string();
    let cli_rotated_secret = rotated_cli_stdout
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .expect("rotate prints the new secret")
        .to_string();

    let secrets = vec![first, second, failing_secret, cli_secret, cli_rotated_secret];
    assert_clean("the CLI's stderr (create)", &String::from_utf8_lossy(&created.stderr), &secrets);
    assert_clean(
        "the CLI's stderr (rotate-secret)",
        &String::from_utf8_lossy(&rotated_cli.stderr),
        &secrets,
    );
    let get = |path: String| {
        let http = http.clone();
        async move { http.get(path).bearer_auth(ADMIN).send().await.unwrap().text().await.unwrap() }
    };
    assert_clean("attempt records", &get(format!("{api}/v1/attempts?limit=1000")).await, &secrets);
    assert_clean("dlq entries", &get(format!("{api}/v1/dlq")).await, &secrets);
    assert_clean("the subscription list", &get(format!("{api}/v1/subscriptions")).await, &secrets);
    assert_clean("a subscription", &get(format!("{api}/v1/subscriptions/{ok_id}")).await, &secrets);
    let mut events = Vec::new();
    while let Ok(Some(msg)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), lifecycle.next()).await
    {
        events.push(String::from_utf8_lossy(&msg.payload).to_string());
    }
    assert!(events.len() >= 5, "created x3, secret_rotated x2: {events:?}");
    assert_clean("lifecycle events", &events.join("\n"), &secrets);
    let sub = w.store().await.require(&ok_id).await.unwrap();
    assert_eq!(sub.secrets.len(), 2, "both secrets live during the grace window");
    assert_clean("Debug of a subscription", &format!("{sub:?} {:?}", sub.secrets), &secrets);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("DEBUG"), "the run logged at debug level");
    assert!(log.contains("evt_s2"), "the log covers the deliveries");
    assert_clean("hookline's log (RUST_LOG=debug)", &log, &secrets);
}
