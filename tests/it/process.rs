//! hookline as a child process: kill -9 mid-run, restart during a backoff, graceful SIGTERM,
//! start-up refusals (server too old, stream that cannot be updated, a placeholder admin token).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::stream;
use hookline::store::subscriptions::SubscriptionInput;
use redis::AsyncCommands;

use crate::harness::receiver::Reply;
use crate::harness::{eventually, eventually_true, free_port};
use crate::world::{WAIT, World};

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("child is running");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn hookline_killed_with_sigkill_mid_run_and_restarted_loses_nothing() {
    let w = World::start().await;
    let paths = ["/k1", "/k2", "/k3"];
    let mut subs = Vec::new();
    for p in paths {
        // Two requests in flight per endpoint at 50 ms each: ~120 pairs/s in all, so every
        // round below finds work left (450 pairs) however fast the rest of the pipeline is.
        let input = SubscriptionInput {
            url: Some(w.receiver.url(p)),
            max_in_flight: Some(2),
            ..Default::default()
        };
        subs.push(w.store().await.create(input).await.unwrap());
        w.receiver.set_default(p, Reply::Delay(Duration::from_millis(50)));
    }
    let config = w.config_file("\"0s\", \"200ms\"");
    let mut child = w.spawn_hookline(&config).await;
    const EVENTS: usize = 150;
    for i in 0..EVENTS {
        w.publish("order.created", &format!("evt_{i}"), None).await;
    }
    // Kill in the middle of the work, twice, restarting each time.
    for round in 1..=2 {
        let seen = w.receiver.requests().len();
        eventually_true(WAIT, "some progress before the kill", || async {
            w.receiver.requests().len() > seen + 20
        })
        .await;
        child.kill().await.expect("sigkill");
        tracing::info!(round, delivered = w.receiver.requests().len(), "killed hookline");
        child = w.spawn_hookline(&config).await;
    }
    let delivered_by_last = w.receiver.requests().len();
    let expected = EVENTS * paths.len();
    eventually_true(
        Duration::from_secs(60),
        "every (event, subscription) pair delivered",
        || async {
            let mut pairs = std::collections::HashSet::new();
            for r in w.receiver.requests() {
                pairs.insert((
                    r.path.clone(),
                    r.header("webhook-id").unwrap_or_default().to_string(),
                ));
            }
            pairs.len() == expected
        },
    )
    .await;
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for r in w.receiver.requests() {
        *counts
            .entry((r.path.clone(), r.header("webhook-id").unwrap_or_default().to_string()))
            .or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    tracing::info!(
        pairs = counts.len(),
        duplicates,
        "kill -9 test finished (duplicates are allowed only across a crash)"
    );
    assert_eq!(counts.len(), expected);
    assert!(w.dlq(None).await.is_empty(), "nothing dead-lettered");
    assert!(
        delivered_by_last < expected,
        "the last process had work to do (so it was up before the SIGTERM)"
    );
    sigterm(&child);
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").expect("wait");
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

#[tokio::test]
async fn restart_during_a_backoff_still_retries_when_due() {
    let w = World::start().await;
    w.subscribe("/later", &[], None).await;
    w.receiver.script("/later", vec![Reply::Status(500)]);
    let config = w.config_file("\"0s\", \"3s\"");
    let mut child = w.spawn_hookline(&config).await;
    w.publish("order.created", "evt_backoff", None).await;
    w.receiver.wait_for_requests("/later", 1, WAIT).await;
    // The retry waits in JetStream as a message schedule on <p>.retry.>, not in the process.
    let js = w.js().await;
    eventually_true(WAIT, "retry scheduled in the stream", || async {
        let s = js.get_stream(w.names.deliveries_stream()).await.unwrap();
        let mut subjects = s.info_with_subjects(w.names.retry_wildcard()).await.unwrap();
        matches!(futures::StreamExt::next(&mut subjects).await, Some(Ok((_, 1))))
    })
    .await;
    child.kill().await.expect("sigkill");
    let child = w.spawn_hookline(&config).await;
    let reqs = w.receiver.wait_for_requests("/later", 2, WAIT).await;
    let gap = reqs[1].received_at - reqs[0].received_at;
    assert!(gap >= Duration::from_millis(2500), "retry came when due, after {gap:?}");
    assert_eq!(reqs[1].header("webhook-id"), Some("evt_backoff"));
    eventually_true(WAIT, "deliveries drained", || async {
        w.stream_messages(&w.names.deliveries_stream()).await == 0
    })
    .await;
    drop(child);
}

#[tokio::test]
async fn sigterm_lets_the_in_flight_delivery_finish_then_exits_zero() {
    let w = World::start().await;
    let sub = w.subscribe("/slow", &[], None).await;
    w.receiver.set_default("/slow", Reply::Delay(Duration::from_millis(1500)));
    let config = w.config_file("\"0s\", \"200ms\"");
    let mut child = w.spawn_hookline(&config).await;
    w.publish("order.created", "evt_slow", None).await;
    w.receiver.wait_for_requests("/slow", 1, WAIT).await;
    sigterm(&child);
    let status =
        tokio::time::timeout(WAIT, child.wait()).await.expect("exits in time").expect("wait");
    assert!(status.success(), "exit status {status}");
    // The in-flight POST completed and was recorded and acked before the exit.
    let mut redis = w.redis.connection().await;
    let key = format!("{}:{{{}}}:delivered:evt_slow", w.prefix, sub.id);
    let marked: Option<String> = redis.get(&key).await.unwrap();
    assert_eq!(marked.as_deref(), Some("1"), "delivery recorded before exit");
    assert_eq!(w.stream_messages(&w.names.deliveries_stream()).await, 0, "acked before exit");
}

#[tokio::test]
async fn nats_server_too_old_for_schedules_is_refused_with_a_clear_message() {
    let debian = std::path::Path::new("/usr/sbin/nats-server");
    assert!(
        debian.exists(),
        "Debian's nats-server 2.9 is needed for this test: scripts/ensure-deps.sh installs it"
    );
    let w = World::start().await;
    let port = free_port();
    let store = tempfile::tempdir().unwrap();
    let _old = tokio::process::Command::new(debian)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store.path())
        .kill_on_drop(true)
        .spawn()
        .expect("old nats-server starts");
    eventually_true(WAIT, "old nats-server listening", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    let file = w.config_file("\"0s\"");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .env("HOOKLINE_NATS__URL", format!("nats://127.0.0.1:{port}"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("too old") && stderr.contains("2.9"), "{stderr}");
}

#[tokio::test]
async fn stream_that_cannot_be_updated_in_place_is_a_clear_startup_error() {
    let w = World::start().await;
    // An operator made the deliveries stream by hand with limits retention, which cannot be
    // changed to work-queue in place.
    w.js()
        .await
        .create_stream(stream::Config {
            name: w.names.deliveries_stream(),
            subjects: vec![w.names.deliver_wildcard()],
            retention: stream::RetentionPolicy::Limits,
            ..Default::default()
        })
        .await
        .unwrap();
    let err =
        hookline::app::App::build(w.config("\"0s\""), &[]).await.err().expect("start-up fails");
    let message = format!("{err:#}");
    assert!(message.contains(&w.names.deliveries_stream()), "{message}");
}

#[tokio::test]
async fn topology_is_created_idempotently_with_schedules_on_the_deliveries_stream() {
    let w = World::start().await;
    for _ in 0..2 {
        hookline::app::App::build(w.config("\"0s\""), &[]).await.expect("builds again");
    }
    let js = w.js().await;
    let info = eventually(WAIT, "deliveries stream info", || async {
        js.get_stream(w.names.deliveries_stream()).await.ok()?.info().await.ok().cloned()
    })
    .await;
    assert!(info.config.allow_message_schedules);
    assert_eq!(info.config.retention, stream::RetentionPolicy::WorkQueue);
    for name in [w.names.events_stream(), w.names.dlq_stream()] {
        assert!(js.get_stream(&name).await.is_ok(), "{name} exists");
    }
    let consumers = [
        (w.names.events_stream(), w.names.fanout_consumer()),
        (w.names.deliveries_stream(), w.names.deliver_consumer()),
    ];
    for (stream, consumer) in consumers {
        let s = js.get_stream(&stream).await.unwrap();
        assert!(s.consumer_info(&consumer).await.is_ok(), "{consumer} exists");
    }
}

/// Starts a nats-server on a free port with `args`, and waits until it accepts connections.
async fn spawn_nats_server(
    args: &[String],
    store: &std::path::Path,
) -> (tokio::process::Child, u16) {
    let port = free_port();
    let child = tokio::process::Command::new(crate::harness::nats::nats_server_binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server starts");
    eventually_true(WAIT, "nats-server listening", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
    })
    .await;
    (child, port)
}

#[tokio::test]
async fn cluster_nodes_down_at_start_up_are_not_reported_as_jetstream_disabled() {
    let w = World::start().await;
    let store = tempfile::tempdir().unwrap();
    // One node of a 3-node cluster whose two peers are down: JetStream is enabled but has no
    // quorum, so it cannot answer.
    let (route, peers) = (free_port(), [free_port(), free_port()]);
    let node_args: Vec<String> = [
        "-js",
        "--server_name",
        "n0",
        "--cluster_name",
        "hookline-no-quorum",
        "--cluster",
        &format!("nats://127.0.0.1:{route}"),
        "--routes",
        &format!("nats://127.0.0.1:{},nats://127.0.0.1:{}", peers[0], peers[1]),
    ]
    .map(String::from)
    .to_vec();
    let (_node, port) = spawn_nats_server(&node_args, &store.path().join("n0")).await;
    let mut config = w.config("\"0s\"");
    config.nats.url = format!("nats://127.0.0.1:{port}");
    config.nats.request_timeout = Duration::from_secs(2);
    let err = hookline::app::App::build(config.clone(), &[]).await.err().expect("start-up fails");
    let message = format!("{err:#}");
    assert!(!message.contains("not enabled"), "{message}");
    assert!(
        message.contains(&format!("JetStream at nats://127.0.0.1:{port} is not available")),
        "{message}"
    );

    // A server without JetStream is still told so.
    let (_plain, port) = spawn_nats_server(&[], &store.path().join("plain")).await;
    config.nats.url = format!("nats://127.0.0.1:{port}");
    let err = hookline::app::App::build(config, &[]).await.err().expect("start-up fails");
    let message = format!("{err:#}");
    assert!(message.contains("JetStream is not enabled") && message.contains("-js"), "{message}");
}

#[tokio::test]
async fn serve_refuses_to_start_with_the_placeholder_admin_token_of_compose() {
    // What compose/ used to pass when HOOKLINE_ADMIN_TOKEN was unset.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("serve")
        .env("HOOKLINE_API__ADMIN_TOKENS", r#"["change-me-0123456789"]"#)
        // Nothing listens there: were the token accepted, start-up would fail otherwise (exit 1).
        .env("HOOKLINE_NATS__URL", format!("nats://127.0.0.1:{}", free_port()))
        .env("HOOKLINE_REDIS__URL", format!("redis://127.0.0.1:{}/", free_port()))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "an invalid configuration: {stderr}");
    assert!(
        stderr.contains("api.admin_tokens") && stderr.contains("HOOKLINE_ADMIN_TOKEN"),
        "names the key and the variable: {stderr}"
    );
}
