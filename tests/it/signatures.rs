//! Signatures as receivers check them: seed-compatible schemes verified by a Python receiver
//! using those libraries' algorithm, the bare-payload body, and secret rotation with a grace
//! window.

use std::path::PathBuf;
use std::time::Duration;

use hookline::store::subscriptions::{
    BodyFormat, SignatureScheme, Subscription, SubscriptionInput,
};
use serde_json::Value;

use crate::harness::{eventually, free_port};
use crate::world::{WAIT, World};

struct PythonReceiver {
    _child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl PythonReceiver {
    async fn start(dir: &std::path::Path, secret: &str, schemes: &[&str]) -> PythonReceiver {
        let port = free_port();
        let log = dir.join(format!("seed-{port}.jsonl"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/python/seed_receiver.py");
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(script).args(["--port", &port.to_string(), "--secret", secret, "--log"]).arg(&log);
        for s in schemes {
            cmd.args(["--scheme", s]);
        }
        let child = cmd.kill_on_drop(true).spawn().expect("python3 runs the seed receiver");
        eventually(WAIT, "python receiver listening", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()
        })
        .await;
        PythonReceiver { _child: child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        eventually(WAIT, "python receiver log lines", || async {
            let lines = self.lines();
            (lines.len() >= n).then_some(lines)
        })
        .await
    }
}

async fn subscribe(
    w: &World,
    url: String,
    schemes: Vec<SignatureScheme>,
    format: BodyFormat,
) -> Subscription {
    let input = SubscriptionInput {
        url: Some(url),
        signature_schemes: Some(schemes),
        body_format: Some(format),
        ..Default::default()
    };
    w.store().await.create(input).await.unwrap()
}

#[tokio::test]
async fn seed_compatible_signatures_verify_with_a_python_receiver_using_their_algorithm() {
    let w = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Subscriptions first (the receivers need their secrets), pointing at ports chosen now.
    let both = subscribe(
        &w,
        "http://placeholder/".into(),
        vec![SignatureScheme::WebhookSha256, SignatureScheme::XSignatureCanonical],
        BodyFormat::Envelope,
    )
    .await;
    let bare = subscribe(
        &w,
        "http://placeholder/".into(),
        vec![SignatureScheme::XSignatureCanonical],
        BodyFormat::Payload,
    )
    .await;
    let wrong = subscribe(
        &w,
        "http://placeholder/".into(),
        vec![SignatureScheme::WebhookSha256],
        BodyFormat::Envelope,
    )
    .await;
    let r_both = PythonReceiver::start(
        dir.path(),
        &both.current_secret().expose(),
        &["webhook_sha256", "x_signature"],
    )
    .await;
    let r_bare =
        PythonReceiver::start(dir.path(), &bare.current_secret().expose(), &["x_signature"]).await;
    let r_wrong = PythonReceiver::start(
        dir.path(),
        &hookline::Secret::generate().expose(),
        &["webhook_sha256"],
    )
    .await;
    let store = w.store().await;
    for (sub, r) in [(&both, &r_both), (&bare, &r_bare), (&wrong, &r_wrong)] {
        store
            .update(&sub.id, SubscriptionInput { url: Some(r.url()), ..Default::default() })
            .await
            .unwrap();
    }
    let app = w.start_app(w.config("\"0s\"")).await;
    let payload = serde_json::json!({"zeta": 1, "alpha": {"é": "naïve ☃", "b": [3, 1, {"y": true, "x": null}]}, "big": 12345678901234_i64});
    let event = hookline::event::WebhookEvent {
        event_id: "evt_seed".parse().unwrap(),
        event_type: "order.created".parse().unwrap(),
        payload: payload.clone(),
        occurred_at: None,
        source: None,
        tenant_id: None,
        cloudevent: None,
    };
    hookline::ingest::publish_event(&w.js().await, &w.names, &event, 1 << 20).await.unwrap();

    let lines = r_both.wait_for(1).await;
    assert_eq!(lines[0]["ok"], true, "{}", lines[0]);
    let body: Value = serde_json::from_str(lines[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!((body["type"].as_str(), &body["data"]), (Some("order.created"), &payload));
    let bare_lines = r_bare.wait_for(1).await;
    assert_eq!(bare_lines[0]["ok"], true, "{}", bare_lines[0]);
    let bare_body: Value = serde_json::from_str(bare_lines[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(bare_body, payload, "the bare payload is the whole body");
    // The check can fail: a receiver holding another secret rejects the delivery.
    let wrong_lines = r_wrong.wait_for(1).await;
    assert_eq!(wrong_lines[0]["ok"], false);
    assert_eq!(wrong_lines[0]["results"]["webhook_sha256"][1], "signature mismatch");
    app.stop().await;
}

#[tokio::test]
async fn after_rotation_the_old_secret_verifies_during_the_grace_window_and_not_after() {
    let w = World::start().await;
    let sub = w.subscribe("/rotating", &[], None).await;
    let old = sub.current_secret().clone();
    let mut config = w.config("\"0s\"");
    config.api.secret_rotation_grace_hours = 3.0 / 3600.0; // three seconds
    let app = w.start_app(config.clone()).await;
    let rotated =
        w.store().await.rotate_secret(&sub.id, config.api.rotation_grace()).await.unwrap();
    let new = rotated.current_secret().clone();
    assert_ne!(new, old);
    let verify = |req: &crate::harness::receiver::Recorded, secret: &hookline::Secret| {
        hookline::verify(
            secret,
            req.header("webhook-id").unwrap(),
            req.header("webhook-timestamp").unwrap(),
            req.header("webhook-signature").unwrap(),
            &req.body,
            time::OffsetDateTime::now_utc().unix_timestamp(),
            300,
        )
    };
    w.publish("order.created", "evt_during", None).await;
    let during = w.receiver.wait_for_requests("/rotating", 1, WAIT).await;
    assert_eq!(
        during[0].header("webhook-signature").unwrap().split(' ').count(),
        2,
        "one signature per live secret"
    );
    assert!(verify(&during[0], &old).is_ok() && verify(&during[0], &new).is_ok());

    let window_end = std::time::Instant::now() + Duration::from_secs(3);
    eventually(Duration::from_secs(10), "grace window over", || async {
        (std::time::Instant::now() > window_end).then_some(())
    })
    .await;
    w.publish("order.created", "evt_after", None).await;
    let after = w.receiver.wait_for_requests("/rotating", 2, WAIT).await;
    assert_eq!(after[1].header("webhook-id"), Some("evt_after"));
    assert_eq!(after[1].header("webhook-signature").unwrap().split(' ').count(), 1);
    assert!(verify(&after[1], &new).is_ok());
    assert_eq!(verify(&after[1], &old), Err(hookline::signing::SignatureError::NoMatch));
    app.stop().await;
}
