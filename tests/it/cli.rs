//! The `hookline` binary's subcommands: subscriptions, publish, dlq, verify, config errors.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::harness::receiver::Reply;
use crate::world::{WAIT, World, assert_signed};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "command failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", stdout(o)))
}

#[tokio::test]
async fn subscriptions_can_be_created_listed_updated_deactivated_and_deleted_from_the_cli() {
    let w = World::start().await;
    let url = w.receiver.url("/cli");
    let created = json(
        &w.cli(&[
            "subscriptions",
            "create",
            "--url",
            &url,
            "--event-type",
            "order.*",
            "--event-type",
            "invoice.paid",
            "--tenant",
            "acme",
            "--description",
            "orders",
            "--output",
            "json",
        ])
        .await,
    );
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert!(hookline::Secret::parse(secret).is_ok());
    assert_eq!(created["event_types"], serde_json::json!(["invoice.paid", "order.*"]));

    let text = w.cli(&["subscriptions", "create", "--url", &url]).await;
    assert!(text.status.success());
    assert!(
        stdout(&text).contains("id:") && stdout(&text).contains("secret:      whsec_"),
        "{}",
        stdout(&text)
    );

    let got = json(&w.cli(&["subscriptions", "get", &id, "--output", "json"]).await);
    assert_eq!(
        (got["url"].as_str(), got["tenant_id"].as_str(), got["active"].as_bool()),
        (Some(url.as_str()), Some("acme"), Some(true))
    );
    assert!(got.get("secret").is_none(), "get never shows the secret");
    let list = json(&w.cli(&["subscriptions", "list", "--output", "json"]).await);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!stdout(&w.cli(&["subscriptions", "list"]).await).contains("whsec_"));

    let updated = json(
        &w.cli(&[
            "subscriptions",
            "update",
            &id,
            "--url",
            "https://example.com/new",
            "--event-type",
            "a.>",
            "--output",
            "json",
        ])
        .await,
    );
    assert_eq!(
        (updated["url"].as_str(), updated["event_types"].clone()),
        (Some("https://example.com/new"), serde_json::json!(["a.>"]))
    );
    assert!(w.cli(&["subscriptions", "deactivate", &id]).await.status.success());
    assert_eq!(
        json(&w.cli(&["subscriptions", "get", &id, "--output", "json"]).await)["active"],
        false
    );
    assert!(w.cli(&["subscriptions", "activate", &id]).await.status.success());
    assert_eq!(
        json(&w.cli(&["subscriptions", "get", &id, "--output", "json"]).await)["active"],
        true
    );
    // The index follows the update: the old filter no longer matches, the new one does.
    let store = w.store().await;
    assert!(
        store.matching("order.created", Some("acme")).await.unwrap().iter().all(|s| s.id != id)
    );
    assert!(store.matching("a.b.c", Some("acme")).await.unwrap().iter().any(|s| s.id == id));

    assert!(w.cli(&["subscriptions", "delete", &id]).await.status.success());
    let gone = w.cli(&["subscriptions", "get", &id]).await;
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("not found"), "{}", stderr(&gone));
    assert!(store.matching("a.b.c", None).await.unwrap().iter().all(|s| s.id != id));
}

#[tokio::test]
async fn invalid_url_or_filter_is_exit_code_2_and_stores_nothing() {
    let w = World::start().await;
    let cases: [&[&str]; 4] = [
        &["subscriptions", "create", "--url", "ftp://example.com/"],
        &["subscriptions", "create", "--url", "not a url"],
        &["subscriptions", "create", "--url", "https://example.com/", "--event-type", "order.>.x"],
        &["subscriptions", "create", "--url", "https://example.com/", "--event-type", "a..b"],
    ];
    for args in cases {
        let out = w.cli(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("url") || stderr(&out).contains("filter"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        json(&w.cli(&["subscriptions", "list", "--output", "json"]).await),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn publish_command_reaches_subscribers_and_dlq_commands_list_redeliver_and_purge() {
    let w = World::start().await;
    let ok = w.subscribe("/ok", &["order.*"], None).await;
    let bad = w.subscribe("/bad", &["order.*"], None).await;
    w.receiver.set_default("/bad", Reply::Status(500));
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;

    let out =
        w.cli(&["publish", "order.created", r#"{"order_id": 42}"#, "--event-id", "evt_cli"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("published evt_cli"));
    let dup =
        w.cli(&["publish", "order.created", r#"{"order_id": 42}"#, "--event-id", "evt_cli"]).await;
    assert_eq!(dup.status.code(), Some(4), "a duplicate id is a conflict: {}", stderr(&dup));
    assert!(stderr(&dup).contains("evt_cli was already published"), "{}", stderr(&dup));
    let bad_json = w.cli(&["publish", "order.created", "{oops"]).await;
    assert_eq!(bad_json.status.code(), Some(2));

    let reqs = w.receiver.wait_for_requests("/ok", 1, WAIT).await;
    assert_eq!(reqs[0].body_json()["data"], serde_json::json!({"order_id": 42}));
    assert_signed(&reqs[0], &ok);
    w.wait_for_dlq(Some(&bad.id), 1).await;

    let listed =
        json(&w.cli(&["dlq", "list", "--subscription", &bad.id, "--output", "json"]).await);
    let entry = &listed[0];
    assert_eq!(
        (
            entry["event_id"].as_str(),
            entry["reason"].as_str(),
            entry["attempts"].as_u64(),
            entry["last_status"].as_u64()
        ),
        (Some("evt_cli"), Some("retries_exhausted"), Some(2), Some(500))
    );
    let table = stdout(&w.cli(&["dlq", "list"]).await);
    assert!(
        table.contains("SEQ") && table.contains("evt_cli") && table.contains("retries_exhausted"),
        "{table}"
    );

    w.receiver.set_default("/bad", Reply::Status(204));
    let seq = entry["sequence"].as_u64().unwrap().to_string();
    let redeliver = w.cli(&["dlq", "redeliver", &seq]).await;
    assert!(redeliver.status.success(), "{}", stderr(&redeliver));
    crate::harness::eventually_true(WAIT, "redelivered to /bad", || async {
        w.receiver
            .requests_for("/bad")
            .last()
            .map(|r| r.header("webhook-id") == Some("evt_cli"))
            .unwrap_or(false)
            && w.receiver.count("/bad") == 3
    })
    .await;
    assert!(w.dlq(None).await.is_empty());
    let missing = w.cli(&["dlq", "redeliver", "999999"]).await;
    assert!(
        !missing.status.success() && stderr(&missing).contains("not found"),
        "{}",
        stderr(&missing)
    );

    // Purge: a fresh failure, then purge by subscription.
    w.receiver.set_default("/bad", Reply::Status(500));
    w.publish("order.paid", "evt_cli2", None).await;
    w.wait_for_dlq(Some(&bad.id), 1).await;
    let purge = w.cli(&["dlq", "purge", "--subscription", &bad.id]).await;
    assert!(stdout(&purge).contains("purged 1"), "{}", stdout(&purge));
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn redeliver_all_requeues_every_entry_of_a_subscription() {
    let w = World::start().await;
    let bad = w.subscribe("/all-bad", &[], None).await;
    w.receiver.set_default("/all-bad", Reply::Status(500));
    let app = w.start_app(w.config("\"0s\"")).await;
    for i in 0..3 {
        w.publish("x.y", &format!("evt_all{i}"), None).await;
    }
    w.wait_for_dlq(Some(&bad.id), 3).await;
    w.receiver.set_default("/all-bad", Reply::Status(200));
    let out = w.cli(&["dlq", "redeliver", "--all", "--subscription", &bad.id]).await;
    assert!(stdout(&out).contains("3 re-queued, 0 failed"), "{}", stdout(&out));
    crate::harness::eventually_true(WAIT, "all redelivered", || async {
        w.receiver.count("/all-bad") == 6
    })
    .await;
    assert!(w.dlq(None).await.is_empty());
    app.stop().await;
}

async fn verify(args: &[&str], body: &[u8]) -> std::process::Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("verify")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).await.unwrap();
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn verify_command_exits_0_for_a_valid_signature_and_1_otherwise() {
    let secret = hookline::Secret::generate();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = br#"{"type":"a","timestamp":"2024-01-01T00:00:00Z","data":{}}"#;
    let sig = secret.sign("msg_1", now, body);
    let other = hookline::Secret::generate().sign("msg_1", now, body);
    let header = format!("{other} {sig}");
    let ts = now.to_string();
    let s = secret.expose();
    let ok = verify(
        &["--secret", &s, "--id", "msg_1", "--timestamp", &ts, "--signature", &header],
        body,
    )
    .await;
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let tampered =
        verify(&["--secret", &s, "--id", "msg_1", "--timestamp", &ts, "--signature", &sig], b"{}")
            .await;
    assert_eq!(tampered.status.code(), Some(1));
    assert!(stderr(&tampered).contains("signature invalid"));
    let old = (now - 600).to_string();
    let stale = verify(
        &[
            "--secret",
            &s,
            "--id",
            "msg_1",
            "--timestamp",
            &old,
            "--signature",
            &secret.sign("msg_1", now - 600, body),
        ],
        body,
    )
    .await;
    assert_eq!(stale.status.code(), Some(1), "outside the default 5 min tolerance");
    // The Standard Webhooks test vector, with a tolerance wide enough for its 2021 timestamp.
    let vector = verify(
        &[
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "--timestamp",
            "1614265330",
            "--signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "--tolerance",
            "10000000000",
        ],
        br#"{"test": 2432232314}"#,
    )
    .await;
    assert_eq!(vector.status.code(), Some(0), "{}", stderr(&vector));
}

#[tokio::test]
async fn bad_configuration_is_exit_code_2_naming_the_key() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["subscriptions", "list"])
        .env("HOOKLINE_RETRY__SCHEDULE", "[]")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("retry.schedule"), "{}", stderr(&out));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["--config", "/nonexistent/hookline.toml", "subscriptions", "list"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
}

#[tokio::test]
async fn cli_covers_rotation_attempts_replay_dlq_get_and_signature_options() {
    let w = World::start().await;
    let url = w.receiver.url("/parity");
    let created = json(
        &w.cli(&[
            "subscriptions",
            "create",
            "--url",
            &url,
            "--signature-scheme",
            "webhook-sha256",
            "--signature-scheme",
            "x-signature",
            "--body-format",
            "payload",
            "--metadata",
            "team=shop",
            "--output",
            "json",
        ])
        .await,
    );
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["signature_schemes"],
        serde_json::json!(["webhook_sha256", "x_signature_canonical"])
    );
    assert_eq!(
        (created["body_format"].as_str(), created["metadata"]["team"].as_str()),
        (Some("payload"), Some("shop"))
    );
    let rotated = json(&w.cli(&["subscriptions", "rotate-secret", &id, "--output", "json"]).await);
    assert_ne!(rotated["secret"], created["secret"]);
    let stored = w.store().await.require(&id).await.unwrap();
    assert_eq!(stored.secrets.len(), 2, "the old secret is kept for the grace window");

    w.receiver.script("/parity", vec![Reply::Status(500), Reply::Status(500)]);
    let app = w.start_app(w.config("\"0s\", \"100ms\"")).await;
    w.publish("order.created", "evt_par", None).await;
    let entries = w.wait_for_dlq(Some(&id), 1).await;
    let got = stdout(&w.cli(&["dlq", "get", &entries[0].sequence.to_string()]).await);
    assert!(got.contains("evt_par") && got.contains("retries_exhausted"), "{got}");
    let attempts = crate::harness::eventually(WAIT, "two attempts logged", || async {
        let page =
            json(&w.cli(&["attempts", "list", "--subscription", &id, "--output", "json"]).await);
        (page["items"].as_array().map(Vec::len) == Some(2)).then_some(page)
    })
    .await;
    assert_eq!(attempts["items"][0]["status"], "dead_lettered");
    assert_eq!(attempts["items"][1]["status"], "failed");
    let table = stdout(&w.cli(&["attempts", "list", "--event-id", "evt_par"]).await);
    assert!(table.contains("dead_lettered") && table.contains("evt_par"), "{table}");
    let bad = w.cli(&["attempts", "list", "--status", "exploded"]).await;
    assert_eq!(bad.status.code(), Some(2));

    let replayed = w.cli(&["replay", "--event-id", "evt_par"]).await;
    assert!(stdout(&replayed).contains("queued 1"), "{} {}", stdout(&replayed), stderr(&replayed));
    let reqs = w.receiver.wait_for_requests("/parity", 3, WAIT).await;
    assert_eq!(reqs[2].body_json(), serde_json::json!({"n": "evt_par"}), "bare payload body");
    assert!(
        reqs[2].header("x-signature").is_some()
            && reqs[2].header("x-webhook-signature").unwrap().starts_with("sha256=")
    );
    let since = (time::OffsetDateTime::now_utc() - time::Duration::minutes(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let range = w.cli(&["replay", "--since", &since, "--subscription", &id]).await;
    assert!(stdout(&range).contains("queued 1"), "{}", stderr(&range));
    let bad_time = w.cli(&["replay", "--since", "yesterday"]).await;
    assert_eq!(bad_time.status.code(), Some(2));
    app.stop().await;
}

#[tokio::test]
async fn subscription_list_filters_and_stats_command_work_from_the_cli() {
    let w = World::start().await;
    let acme = w.subscribe("/f-acme", &["order.*"], Some("acme")).await;
    let other = w.subscribe("/f-other", &["invoice.paid"], None).await;
    w.store().await.set_active(&other.id, false).await.unwrap();
    let ids = |v: serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(json(&w.cli(&["subscriptions", "list", "--tenant", "acme", "--output", "json"]).await)),
        vec![acme.id.clone()]
    );
    assert_eq!(
        ids(json(
            &w.cli(&["subscriptions", "list", "--active", "false", "--output", "json"]).await
        )),
        vec![other.id.clone()]
    );
    assert_eq!(
        ids(json(
            &w.cli(&["subscriptions", "list", "--event-type", "order.created", "--output", "json"])
                .await
        )),
        vec![acme.id.clone()]
    );
    let app = w.start_app(w.config("\"0s\"")).await;
    w.publish("order.created", "evt_stats", None).await;
    w.receiver.wait_for_requests("/f-acme", 1, WAIT).await;
    let stats = crate::harness::eventually(WAIT, "stats count the delivery", || async {
        let v = json(&w.cli(&["stats", "--subscription", &acme.id, "--output", "json"]).await);
        (v["windows"]["5m"]["succeeded"] == 1).then_some(v)
    })
    .await;
    assert_eq!(stats["windows"]["5m"]["success_rate"], 1.0);
    let missing = w.cli(&["stats", "--subscription", "sub_nope"]).await;
    assert_eq!(missing.status.code(), Some(3), "not found: {}", stderr(&missing));
    app.stop().await;
}
