//! The publisher and receiver examples in examples/, run as a user runs them: the Python ones
//! (nats-py, standardwebhooks) with the venv scripts/ensure-deps.sh makes, the Node ones
//! (@nats-io/transport-node, standardwebhooks) with examples/node's packages. Each language
//! publishes a WebhookEvent and a CloudEvent in both NATS binding modes, each with its own
//! traceparent, to a real hookline; its receiver verifies every delivery with the official
//! Standard Webhooks library and refuses a forged one.

use std::path::{Path, PathBuf};

use hookline::store::subscriptions::SubscriptionInput;
use serde_json::{Value, json};

use crate::harness::{eventually, free_port};
use crate::world::{WAIT, World};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Clone, Copy)]
enum Lang {
    Python,
    Node,
}

impl Lang {
    fn command(self, script: &str) -> tokio::process::Command {
        let (program, path) = match self {
            Lang::Python => (
                PathBuf::from(ROOT).join(".deps/python-examples/bin/python"),
                format!("{ROOT}/examples/python/{script}.py"),
            ),
            Lang::Node => (PathBuf::from("node"), format!("{ROOT}/examples/node/{script}.mjs")),
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg(path);
        cmd
    }
}

struct ExampleReceiver {
    _child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl ExampleReceiver {
    async fn start(lang: Lang, dir: &Path, secret: &str) -> ExampleReceiver {
        let port = free_port();
        let log = dir.join(format!("receiver-{port}.jsonl"));
        let child = lang
            .command("receiver")
            .args(["--port", &port.to_string(), "--secret", secret, "--log"])
            .arg(&log)
            .kill_on_drop(true)
            .spawn()
            .expect("the example receiver starts (scripts/ensure-deps.sh installs its packages)");
        eventually(WAIT, "example receiver listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()
        })
        .await;
        ExampleReceiver { _child: child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/webhooks", self.port)
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        eventually(WAIT, "example receiver log lines", || async {
            let lines: Vec<Value> = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            (lines.len() >= n).then_some(lines)
        })
        .await
    }
}

fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or_default()
}

fn span_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(2).unwrap_or_default()
}

async fn examples_publish_and_verify(lang: Lang, tag: &str) {
    let w = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = w.store().await;
    let sub = store
        .create(SubscriptionInput {
            url: Some("http://placeholder/".into()),
            event_types: Some(vec!["order.created".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    let receiver = ExampleReceiver::start(lang, dir.path(), &sub.current_secret().expose()).await;
    let update = SubscriptionInput { url: Some(receiver.url()), ..Default::default() };
    store.update(&sub.id, update).await.unwrap();
    let app = w.start_app(w.config("\"0s\"")).await;

    let formats = ["webhook", "cloudevent-binary", "cloudevent-structured"];
    let mut sent = Vec::new();
    for (i, format) in formats.iter().enumerate() {
        let id = format!("evt_{tag}_{i}");
        let traceparent = format!("00-{:032x}-{:016x}-01", 0xabc0 + i as u128 + 1, 0x5150 + i + 1);
        let payload = json!({"order": i, "lang": tag, "note": "naïve ☃"});
        let out = lang
            .command("publish")
            .args(["--nats", &w.nats.url(), "--prefix", &w.prefix, "--type", "order.created"])
            .args(["--id", &id, "--format", format, "--traceparent", &traceparent])
            .args(["--payload", &payload.to_string()])
            .output()
            .await
            .expect("the example publisher runs");
        assert!(out.status.success(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        let ack: Value = serde_json::from_slice(&out.stdout).expect("the publisher prints its ack");
        assert_eq!(ack["duplicate"], false, "{ack}");
        sent.push((id, traceparent, payload));
    }

    let lines = receiver.wait_for(formats.len()).await;
    assert_eq!(lines.len(), formats.len(), "one delivery per event: {lines:?}");
    for (id, traceparent, payload) in &sent {
        let got = lines.iter().find(|l| l["id"] == id.as_str()).unwrap_or_else(|| {
            panic!("{id} delivered: {lines:?}");
        });
        assert_eq!(got["ok"], true, "verified by standardwebhooks: {got}");
        assert_eq!(got["event"]["data"], *payload, "data intact: {got}");
        assert_eq!(got["event"]["type"], "order.created", "{got}");
        let delivered = got["traceparent"].as_str().unwrap_or_else(|| panic!("traceparent: {got}"));
        assert_eq!(trace_id(delivered), trace_id(traceparent), "the publisher's trace: {got}");
        assert_ne!(span_id(delivered), span_id(traceparent), "a span of its own: {got}");
    }

    // The check can fail: a request signed with another secret is refused with 400.
    let forged = reqwest::Client::new()
        .post(receiver.url())
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", time::OffsetDateTime::now_utc().unix_timestamp().to_string())
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJlIG9mIHRoaXMgYm9keQ==")
        .body(r#"{"type":"order.created","data":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let lines = receiver.wait_for(formats.len() + 1).await;
    let refused =
        lines.iter().find(|l| l["id"] == "msg_forged").expect("the forged request logged");
    assert_eq!(refused["ok"], false, "{refused}");
    app.stop().await;
}

#[tokio::test]
async fn python_examples_publish_webhook_and_cloud_events_and_verify_with_standard_webhooks() {
    examples_publish_and_verify(Lang::Python, "py").await;
}

#[tokio::test]
async fn node_examples_publish_webhook_and_cloud_events_and_verify_with_standard_webhooks() {
    examples_publish_and_verify(Lang::Node, "node").await;
}
