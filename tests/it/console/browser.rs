//! The console in a real browser: each test starts hookline, makes a link and runs one
//! scenario of `tests/browser/` (`node <scenario>.mjs ...`: playwright-core driving Debian's
//! chromium, installed by `scripts/ensure-deps.sh`), then checks through the API what the
//! scenario did. Screenshots go to `docs/` when `HOOKLINE_CONSOLE_SCREENSHOTS=1` (to refresh
//! the README's), to a temp dir otherwise.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{LINK_KEY, config};
use crate::api::Api;
use crate::harness::eventually_true;
use crate::harness::receiver::Reply;
use crate::world::{ADMIN, RunningApp, WAIT, World};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Where screenshots go (kept alive by the caller).
pub(super) fn shots() -> (PathBuf, Option<tempfile::TempDir>) {
    if std::env::var_os("HOOKLINE_CONSOLE_SCREENSHOTS").is_some() {
        return (Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"), None);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    (dir.path().to_path_buf(), Some(dir))
}

pub(super) fn node(script: &str, args: &[&str]) -> tokio::process::Command {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need chromium and tests/browser/node_modules: run scripts/ensure-deps.sh"
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(&dir).arg(script).args(args).kill_on_drop(true);
    cmd
}

/// Runs a scenario to its end and asserts it passed.
pub(super) async fn scenario(script: &str, args: &[&str]) -> Output {
    let out = tokio::time::timeout(2 * WAIT, node(script, args).output())
        .await
        .unwrap_or_else(|_| panic!("{script} finishes in time"))
        .expect("node runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("ok"), "{script} failed:\n{stdout}\n{stderr}");
    out
}

pub(super) async fn link(app: &RunningApp, body: serde_json::Value) -> String {
    let (status, made) = Api::new(app).post("/v1/console-links", ADMIN, body).await;
    assert_eq!(status, 201, "{made}");
    made["url"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_admin_link_opens_the_overview_and_an_endpoint_is_created_in_the_console() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let (dir, _keep) = shots();
    let url = link(&app, json!({})).await;
    let endpoint = w.receiver.url("/made-in-console");
    scenario("admin.mjs", &[&url, &endpoint, dir.to_str().unwrap()]).await;
    let (_, page) = Api::new(&app).get("/v1/subscriptions", ADMIN).await;
    let made = &page["items"][0];
    assert_eq!(
        (made["url"].as_str(), made["description"].as_str()),
        (Some(endpoint.as_str()), Some("created in the console"))
    );
    app.stop().await;
}

/// Opens `sub`'s view, publishes `event` once it is shown, and waits for its attempt with
/// `status` (and `texts` in its row) to appear without a reload.
async fn watch_delivery(
    w: &World,
    app: &RunningApp,
    sub: &str,
    event: &str,
    status: &str,
    shot: &Path,
    texts: &[&str],
) {
    let url = link(app, json!({})).await;
    let mut args = vec![url.as_str(), sub, event, status, shot.to_str().unwrap()];
    args.extend_from_slice(texts);
    let mut child = node("delivery.mjs", &args).stdout(Stdio::piped()).spawn().expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line == "ready" {
                return true;
            }
        }
        false
    });
    assert!(ready.await.unwrap_or(false), "the subscription view is shown");
    w.publish("order.created", event, None).await;
    let exit = tokio::time::timeout(2 * WAIT, child.wait()).await.expect("in time").unwrap();
    let rest = lines.next_line().await.ok().flatten().unwrap_or_default();
    assert!(
        exit.success() && rest == "ok",
        "the {status} attempt appears without a reload ({rest})"
    );
}

#[tokio::test]
async fn a_published_event_appears_in_the_subscription_view_without_reloading() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/live", &["order.*"], None).await;
    let (dir, _keep) = shots();
    let shot = dir.join("console-subscription.png");
    watch_delivery(&w, &app, &sub.id, "evt_console_live", "succeeded", &shot, &["200"]).await;
    app.stop().await;
}

#[tokio::test]
async fn a_failing_endpoints_attempt_shows_its_status_and_response_excerpt() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/broken", &["order.*"], None).await;
    w.receiver.set_default("/broken", Reply::StatusWithBody(503, "database is down".into()));
    let shot = Path::new("-");
    watch_delivery(
        &w,
        &app,
        &sub.id,
        "evt_console_fail",
        "failed",
        shot,
        &["503", "database is down"],
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_dlq_entry_is_redelivered_from_the_console() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/flaky", &["order.*"], None).await;
    w.receiver.set_default("/flaky", Reply::Status(500));
    w.publish("order.created", "evt_console_dlq", None).await;
    let entry = w.wait_for_dlq(Some(sub.id.as_str()), 1).await.remove(0);
    let failed = w.receiver.count("/flaky");
    w.receiver.set_default("/flaky", Reply::Status(200));
    let (dir, _keep) = shots();
    let url = link(&app, json!({})).await;
    scenario("dlq.mjs", &[&url, &entry.sequence.to_string(), dir.to_str().unwrap()]).await;
    eventually_true(WAIT, "the redelivered event reaches the endpoint", || async {
        w.receiver.count("/flaky") > failed
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_link_lists_only_its_endpoints_the_api_refuses_the_others_and_it_edits_and_deletes_its_own()
 {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let own = w.subscribe("/acme-hooks", &[], Some("acme")).await;
    let other = w.subscribe("/globex-hooks", &[], Some("globex")).await;
    let url = link(&app, json!({"tenant_id": "acme"})).await;
    scenario("tenant.mjs", &[&url, &own.url, &other.url, other.id.as_str()]).await;
    let api = Api::new(&app);
    assert_eq!(api.get(&format!("/v1/subscriptions/{}", own.id), ADMIN).await.0, 404, "deleted");
    assert_eq!(api.get(&format!("/v1/subscriptions/{}", other.id), ADMIN).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_event_is_looked_up_and_replayed_from_the_console() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let sub = w.subscribe("/lookup", &["order.*"], None).await;
    w.publish("order.created", "evt_console_lookup", None).await;
    w.receiver.wait_for_requests("/lookup", 1, WAIT).await;
    let (dir, _keep) = shots();
    let shot = dir.join("console-event.png");
    let url = link(&app, json!({})).await;
    scenario("event.mjs", &[&url, "evt_console_lookup", &sub.id, shot.to_str().unwrap()]).await;
    eventually_true(WAIT, "the replayed event reaches the endpoint again", || async {
        w.receiver.count("/lookup") >= 2
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn expired_and_altered_links_show_no_data() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    w.subscribe("/secret-hooks", &[], None).await;
    let (dir, _keep) = shots();
    let expired = hookline::console_link::sign(LINK_KEY, None, 1);
    let expired = format!("{}/console#t={expired}", app.api);
    let shot = dir.join("console-link-invalid.png");
    scenario("denied.mjs", &[&expired, shot.to_str().unwrap()]).await;
    let good = link(&app, json!({"tenant_id": "acme"})).await;
    let altered = good.replacen("#t=hlc1.", "#t=hlc1.Z", 1);
    scenario("denied.mjs", &[&altered]).await;
    scenario("denied.mjs", &[&format!("{}/console", app.api)]).await;
    app.stop().await;
}
