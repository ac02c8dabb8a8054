//! SSRF protection end to end: subscriptions to internal addresses are refused (API 400 and CLI
//! exit 2, naming `url`); a delivery whose destination is blocked opens no connection and ends
//! in the DLQ saying `ssrf_blocked`; the shared HTTP client connects only to addresses its
//! resolver checked (tested with a resolver the test controls), honours the allow-list,
//! `https_only` and the egress proxy.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookline::config::Config;
use hookline::egress::{Cidr, EgressPolicy, Lookup};
use hookline::store::subscriptions::SubscriptionInput;

use crate::harness::{eventually_true, http_client};
use crate::world::{ADMIN, WAIT, World};

/// A TCP listener on 127.0.0.1 that counts the connections it accepts (and drops them).
struct AcceptCounter {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl AcceptCounter {
    async fn start() -> AcceptCounter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        AcceptCounter { port, accepted, task }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for AcceptCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A resolver the test controls: answers per name, in turn (the last answer repeats), and counts
/// the lookups.
#[derive(Default)]
struct ScriptedDns {
    answers: HashMap<String, Vec<Vec<IpAddr>>>,
    asked: std::sync::Mutex<HashMap<String, usize>>,
    lookups: Arc<AtomicUsize>,
}

impl ScriptedDns {
    fn answer(mut self, host: &str, answers: &[&[&str]]) -> ScriptedDns {
        let parsed =
            answers.iter().map(|a| a.iter().map(|ip| ip.parse().expect("ip")).collect()).collect();
        self.answers.insert(host.to_string(), parsed);
        self
    }
}

impl Lookup for ScriptedDns {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let n = {
            let mut asked = self.asked.lock().unwrap();
            let n = asked.entry(host.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let answer = self.answers.get(&host).map(|list| list[n.min(list.len() - 1)].clone());
        Box::pin(async move {
            answer.ok_or_else(|| std::io::Error::other(format!("{host}: no such host")))
        })
    }
}

fn strict_config(w: &World) -> Config {
    let mut config = w.config("\"0s\", \"100ms\"");
    config.egress.allow_cidrs.clear();
    config
}

fn client(policy: EgressPolicy) -> reqwest::Client {
    let config = Config::with_overrides("[delivery]\nrequest_timeout = \"3s\"\nack_wait = \"10s\"")
        .expect("config");
    hookline::egress::client::http_client(&config.delivery, Arc::new(policy))
        .expect("client builds")
}

/// The full error text of a failed request (every source), as the attempt log would show it.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[tokio::test]
async fn blocked_destination_opens_no_connection_and_is_dead_lettered_as_ssrf_blocked() {
    let w = World::start().await;
    let target = AcceptCounter::start().await;
    // Created while 127.0.0.0/8 was allowed; the running process no longer allows it (the
    // policy tightened, or the name now points inside).
    let by_name = w
        .store()
        .await
        .create(SubscriptionInput {
            url: Some(format!("http://localhost:{}/in", target.port)),
            ..Default::default()
        })
        .await
        .unwrap();
    let by_literal = w
        .store()
        .await
        .create(SubscriptionInput {
            url: Some(format!("http://127.0.0.1:{}/in", target.port)),
            ..Default::default()
        })
        .await
        .unwrap();
    let app = w.start_app(strict_config(&w)).await;
    w.publish("order.created", "evt_ssrf", None).await;
    let entries = w.wait_for_dlq(None, 2).await;
    for sub in [&by_name, &by_literal] {
        let entry = entries
            .iter()
            .find(|e| e.subscription_id == sub.id)
            .expect("dlq entry per subscription");
        assert!(
            entry.detail.contains("ssrf_blocked")
                && entry.detail.contains("loopback (127.0.0.0/8)"),
            "{entry:?}"
        );
        assert_eq!(
            (entry.reason.as_str(), entry.attempts),
            ("ssrf_blocked", 1),
            "dead-lettered at once, no retries"
        );
        assert_eq!(entry.last_status, None, "no HTTP exchange");
    }
    assert_eq!(target.accepted(), 0, "no connection was opened to the blocked address");
    app.stop().await;
}

#[tokio::test]
async fn allow_listed_name_is_resolved_and_delivered() {
    let w = World::start().await;
    let sub = w
        .store()
        .await
        .create(SubscriptionInput {
            url: Some(format!("http://localhost:{}/named", w.receiver.port())),
            ..Default::default()
        })
        .await
        .unwrap();
    let app = w.start_app(w.config("\"0s\"")).await;
    w.publish("order.created", "evt_named", None).await;
    let reqs = w.receiver.wait_for_requests("/named", 1, WAIT).await;
    crate::world::assert_signed(&reqs[0], &sub);
    app.stop().await;
}

#[tokio::test]
async fn api_and_cli_refuse_internal_endpoints_naming_url() {
    let w = World::start().await;
    let existing = w.subscribe("/ok", &[], None).await;
    let app = w.start_app(strict_config(&w)).await;
    let http = http_client();
    let bad = [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://127.0.0.1:{}/x", w.receiver.port()),
        format!("http://localhost:{}/x", w.receiver.port()),
        "http://[::ffff:10.0.0.1]/".to_string(),
        "http://[fd00::1]/".to_string(),
        "http://100.64.0.1/".to_string(),
        "http://0x7f000001/".to_string(),
        "ftp://example.com/".to_string(),
    ];
    for url in &bad {
        let resp = http
            .post(format!("{}/v1/subscriptions", app.api))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{url}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
        let patch = http
            .patch(format!("{}/v1/subscriptions/{}", app.api, existing.id))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(patch.status(), 400, "update to {url}");
    }
    let resp = http
        .post(format!("{}/v1/subscriptions", app.api))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"url": "http://169.254.169.254/"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("ssrf_blocked") && message.contains("link-local"), "{message}");
    assert_eq!(w.store().await.list().await.unwrap().len(), 1, "nothing was created");
    app.stop().await;

    let file = w.config_file("\"0s\"");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(&file)
        .args(["subscriptions", "create", "--url", "http://192.168.1.1/hook"])
        .env("HOOKLINE_EGRESS__ALLOW_CIDRS", "[]")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("url") && stderr.contains("ssrf_blocked") && stderr.contains("RFC 1918"),
        "{stderr}"
    );
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(&file)
        .args(["subscriptions", "create", "--url", "http://example.com/hook"])
        .env("HOOKLINE_EGRESS__HTTPS_ONLY", "true")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("https"), "{stderr}");
}

#[tokio::test]
async fn client_connects_only_to_checked_addresses_of_a_controlled_resolver() {
    let w = World::start().await;
    let port = w.receiver.port();
    let dns = ScriptedDns::default()
        // Two answers: one blocked (metadata), one allowed: only the allowed one is used.
        .answer("mixed.test", &[&["169.254.169.254", "127.0.0.1"]])
        // A rebinding name: allowed now; below, a fresh lookup answers an internal address.
        .answer("rebind.test", &[&["127.0.0.1"]])
        .answer("metadata.test", &[&["169.254.169.254"]]);
    let lookups = dns.lookups.clone();
    let policy = EgressPolicy::default()
        .allowing(Cidr::parse("127.0.0.0/8").unwrap())
        .with_lookup(Arc::new(dns));
    let http = client(policy);

    let resp = http
        .post(format!("http://mixed.test:{port}/mixed"))
        .body("{}")
        .send()
        .await
        .expect("delivered to the allowed address");
    assert_eq!(resp.status(), 200);
    assert_eq!(lookups.load(Ordering::SeqCst), 1, "one lookup for the connection, no second one");

    let err = http.post(format!("http://metadata.test:{port}/meta")).send().await.unwrap_err();
    assert!(
        chain(&err)
            .contains("ssrf_blocked: metadata.test (resolves to 169.254.169.254) is link-local"),
        "{}",
        chain(&err)
    );

    let first = http
        .post(format!("http://rebind.test:{port}/rebind"))
        .send()
        .await
        .expect("first answer allowed");
    assert_eq!(first.status(), 200);
    // A fresh client (no pooled connection): the next lookup answers 10.0.0.7 and is refused.
    let fresh = client(
        EgressPolicy::default()
            .allowing(Cidr::parse("127.0.0.0/8").unwrap())
            .with_lookup(Arc::new(ScriptedDns::default().answer("rebind.test", &[&["10.0.0.7"]]))),
    );
    let err = fresh.post(format!("http://rebind.test:{port}/rebind")).send().await.unwrap_err();
    assert!(
        chain(&err).contains("ssrf_blocked") && chain(&err).contains("10.0.0.7"),
        "{}",
        chain(&err)
    );
    assert_eq!(w.receiver.count("/rebind"), 1);
    assert_eq!(w.receiver.count("/meta"), 0);
}

#[tokio::test]
async fn blocked_ip_literals_https_only_and_the_egress_proxy_are_enforced_by_the_client() {
    let w = World::start().await;
    let target = AcceptCounter::start().await;
    let strict = client(EgressPolicy::default());
    for url in [
        format!("http://127.0.0.1:{}/", target.port),
        format!("http://[::ffff:127.0.0.1]:{}/", target.port),
    ] {
        let err = strict.post(&url).send().await.unwrap_err();
        assert!(chain(&err).contains("ssrf_blocked: address"), "{url}: {}", chain(&err));
    }
    let https_only = client(
        EgressPolicy::from_config(
            &Config::with_overrides("[egress]\nhttps_only = true\nallow_cidrs = [\"127.0.0.0/8\"]")
                .unwrap()
                .egress,
        )
        .unwrap(),
    );
    assert!(https_only.post(format!("http://127.0.0.1:{}/", target.port)).send().await.is_err());
    assert_eq!(target.accepted(), 0, "no connection for any refused request");

    // With an egress proxy (here the test receiver, on loopback: the proxy itself is trusted),
    // names go to the proxy unresolved; blocked literals are still refused.
    let proxied = Config::with_overrides(&format!(
        "[egress]\nproxy = \"http://127.0.0.1:{}\"",
        w.receiver.port()
    ))
    .unwrap();
    let http = client(EgressPolicy::from_config(&proxied.egress).unwrap());
    let resp = http
        .post("http://hooks.partner.test/via-proxy")
        .body("{}")
        .send()
        .await
        .expect("sent through the proxy");
    assert_eq!(resp.status(), 200);
    let reqs = w.receiver.wait_for_requests("/via-proxy", 1, WAIT).await;
    assert_eq!(reqs[0].header("host"), Some("hooks.partner.test"));
    let err = http.post(format!("http://127.0.0.1:{}/", target.port)).send().await.unwrap_err();
    assert!(chain(&err).contains("ssrf_blocked"), "{}", chain(&err));
    eventually_true(WAIT, "the refused requests left no trace", || async {
        target.accepted() == 0
    })
    .await;
}
