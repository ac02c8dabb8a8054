//! A test world: fresh nats-server and redis-server on free ports, a scriptable receiver, a
//! unique prefix, and helpers to run hookline in-process (`start_app`) or as a child process
//! (`spawn_hookline`, for kill -9 tests) and to publish, subscribe and read the DLQ.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hookline::app::App;
use hookline::config::Config;
use hookline::event::WebhookEvent;
use hookline::pipeline::dlq::{self, DlqEntry};
use hookline::store::subscriptions::{Subscription, SubscriptionInput, SubscriptionStore};
use hookline::subjects::Names;
use tokio_util::sync::CancellationToken;

use crate::harness::nats::NatsServer;
use crate::harness::receiver::Receiver;
use crate::harness::redis::RedisServer;
use crate::harness::{eventually, init, unique_prefix};

/// Bearer tokens the test config accepts.
pub const ADMIN: &str = "admin-token-0123456789";
pub const ACME: &str = "acme-token-0123456789";
pub const GLOBEX: &str = "globex-token-0123456789";

/// Default wait for anything asynchronous in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct World {
    pub nats: NatsServer,
    pub redis: RedisServer,
    pub receiver: Receiver,
    pub prefix: String,
    pub names: Names,
    dir: tempfile::TempDir,
}

/// hookline running in this test process.
pub struct RunningApp {
    /// Base URL of the admin API, e.g. `http://127.0.0.1:39123`.
    pub api: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// Cancels and waits for a clean return.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("hookline stops within the deadline");
        result.expect("hookline task joins").expect("hookline returns Ok");
    }
}

impl World {
    pub async fn start() -> World {
        Self::start_with(RedisServer::start().await).await
    }

    pub async fn start_with(redis: RedisServer) -> World {
        init();
        let nats = NatsServer::start().await;
        let receiver = Receiver::start().await;
        let prefix = unique_prefix();
        let names = Names::new(&prefix);
        let dir = tempfile::tempdir().expect("temp dir");
        World { nats, redis, receiver, prefix, names, dir }
    }

    /// TOML that points hookline at this world's servers, with a fast retry schedule; `extra`
    /// is appended (later keys in the same table must not repeat: use `config_with`).
    pub fn toml(&self, retry_schedule: &str) -> String {
        format!(
            "[nats]\nurl = \"{}\"\n[redis]\nurl = \"{}\"\n[streams]\nprefix = \"{}\"\nduplicate_window = \"30s\"\n\
             [delivery]\nrequest_timeout = \"2s\"\nack_wait = \"4s\"\nconcurrency = 32\n[retry]\nschedule = [{}]\njitter = 0.0\nmax_retry_after = \"3s\"\n\
             [api]\nlisten = \"127.0.0.1:0\"\nadmin_tokens = [\"{ADMIN}\"]\ntenant_tokens = [{{ tenant = \"acme\", token = \"{ACME}\" }}, {{ tenant = \"globex\", token = \"{GLOBEX}\" }}]\n[shutdown]\ngrace_period = \"5s\"\n[egress]\nallow_cidrs = [\"127.0.0.0/8\"]\n",
            self.nats.url(),
            self.redis.url(),
            self.prefix,
            retry_schedule
        )
    }

    /// Config with the given retry schedule, e.g. `"\"0s\", \"300ms\""`.
    pub fn config(&self, retry_schedule: &str) -> Config {
        Config::with_overrides(&self.toml(retry_schedule)).expect("test config is valid")
    }

    pub async fn start_app(&self, config: Config) -> RunningApp {
        let app = App::build(config, &[]).await.expect("hookline builds");
        let api = format!("http://{}", app.api_addr().expect("the api role runs"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        RunningApp { api, shutdown, task }
    }

    pub async fn store(&self) -> SubscriptionStore {
        let config = self.config("\"0s\"");
        hookline::context::subscription_store(&config).await.expect("nats and redis connect")
    }

    pub async fn subscribe(
        &self,
        path: &str,
        types: &[&str],
        tenant: Option<&str>,
    ) -> Subscription {
        let input = SubscriptionInput {
            url: Some(self.receiver.url(path)),
            event_types: Some(types.iter().map(|s| s.to_string()).collect()),
            tenant_id: tenant.map(str::to_string),
            ..Default::default()
        };
        self.store().await.create(input).await.expect("subscription is created")
    }

    pub async fn js(&self) -> async_nats::jetstream::Context {
        self.nats.jetstream().await
    }

    /// Publishes an event the way an application would, with Nats-Msg-Id = event id.
    pub async fn publish(&self, event_type: &str, event_id: &str, tenant: Option<&str>) {
        let event = WebhookEvent {
            event_id: event_id.parse().unwrap(),
            event_type: event_type.parse().unwrap(),
            payload: serde_json::json!({"n": event_id}),
            occurred_at: None,
            source: None,
            tenant_id: tenant.map(|t| t.parse().unwrap()),
            cloudevent: None,
        };
        hookline::ingest::publish_event(&self.js().await, &self.names, &event, 1 << 20)
            .await
            .expect("event published");
    }

    /// Publishes raw bytes on a subject of this world (for malformed events).
    pub async fn publish_raw(&self, subject: &str, body: Vec<u8>) {
        self.js()
            .await
            .publish(subject.to_string(), body.into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }

    pub async fn dlq(&self, subscription: Option<&str>) -> Vec<DlqEntry> {
        dlq::list(&self.js().await, &self.names, subscription, 10_000).await.expect("dlq lists")
    }

    /// Waits until the DLQ holds `n` entries (of `subscription`, if given) and returns them.
    pub async fn wait_for_dlq(&self, subscription: Option<&str>, n: usize) -> Vec<DlqEntry> {
        eventually(WAIT, &format!("{n} dlq entries"), || async {
            let entries = self.dlq(subscription).await;
            (entries.len() >= n).then_some(entries)
        })
        .await
    }

    /// The fan-out consumer's state (pending, in flight, redelivered events).
    pub async fn fanout_consumer_info(&self) -> async_nats::jetstream::consumer::Info {
        let events = self.js().await.get_stream(self.names.events_stream()).await.unwrap();
        events.consumer_info(self.names.fanout_consumer()).await.unwrap()
    }

    /// Messages currently stored in a stream.
    pub async fn stream_messages(&self, stream: &str) -> u64 {
        let mut s = self.js().await.get_stream(stream).await.expect("stream exists");
        s.info().await.expect("stream info").state.messages
    }

    /// Waits until every published event is fanned out (acked) and every delivery message, if
    /// any was published, is consumed.
    pub async fn wait_until_idle(&self) {
        crate::harness::eventually_true(
            WAIT,
            "events fanned out and deliveries drained",
            || async {
                let info = self.fanout_consumer_info().await;
                info.num_pending == 0
                    && info.num_ack_pending == 0
                    && self.stream_messages(&self.names.deliveries_stream()).await == 0
            },
        )
        .await;
    }

    /// Writes this world's config to a file for child processes.
    pub fn config_file(&self, retry_schedule: &str) -> PathBuf {
        let path = self.dir.path().join(format!("hookline-{}.toml", rand_suffix()));
        std::fs::write(&path, self.toml(retry_schedule)).expect("config file written");
        path
    }

    /// Runs `hookline serve` as a child process (killed on drop) and waits until its streams
    /// and consumers exist.
    pub async fn spawn_hookline(&self, config_file: &PathBuf) -> tokio::process::Child {
        self.spawn_hookline_with_env(config_file, &[]).await
    }

    /// Like `spawn_hookline`, with extra environment (e.g. `HOOKLINE_API__LISTEN`).
    pub async fn spawn_hookline_with_env(
        &self,
        config_file: &PathBuf,
        env: &[(&str, String)],
    ) -> tokio::process::Child {
        let child = self.spawn_hookline_unchecked(config_file, env);
        let js = self.js().await;
        eventually(WAIT, "hookline's consumers exist", || async {
            let stream = js.get_stream(self.names.deliveries_stream()).await.ok()?;
            stream.consumer_info(self.names.deliver_consumer()).await.ok()
        })
        .await;
        child
    }

    fn spawn_hookline_unchecked(
        &self,
        config_file: &PathBuf,
        env: &[(&str, String)],
    ) -> tokio::process::Child {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg("--config")
            .arg(config_file)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("hookline binary starts")
    }

    /// Runs a hookline subcommand to completion with this world's config.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let file = self.config_file("\"0s\", \"300ms\"");
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .arg("--config")
            .arg(&file)
            .args(args)
            .output()
            .await
            .expect("hookline binary runs")
    }
}

fn rand_suffix() -> String {
    crate::harness::unique_prefix()
}

/// A delivery's signature checked as a receiver would (with the subscription's secret).
pub fn assert_signed(req: &crate::harness::receiver::Recorded, sub: &Subscription) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let result = hookline::verify(
        sub.current_secret(),
        req.header("webhook-id").expect("webhook-id header"),
        req.header("webhook-timestamp").expect("webhook-timestamp header"),
        req.header("webhook-signature").expect("webhook-signature header"),
        &req.body,
        now,
        300,
    );
    assert_eq!(result, Ok(()), "signature of {} verifies", req.path);
}

/// Runs the Python script `tests/it/python/<script>` with the interpreter `python`, the JSON
/// `input` on its stdin, and returns the JSON it prints; a failing script fails the test with
/// `what` and its stderr.
pub async fn python_json(
    python: &str,
    script: &str,
    input: &serde_json::Value,
    what: &str,
) -> serde_json::Value {
    use tokio::io::AsyncWriteExt;
    let script = format!("{}/tests/it/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = tokio::process::Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{python} runs {script} (scripts/ensure-deps.sh installs it): {e}")
        });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&serde_json::to_vec(input).unwrap()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
