//! Console links carry exactly their tenant's rights until they expire; altered or expired
//! ones are refused; only admins make them; bad input names the field or the config key.

use serde_json::{Value, json};

use super::{LINK_KEY, config, token_of};
use crate::api::Api;
use crate::harness::eventually_true;
use crate::world::{ACME, ADMIN, WAIT, World};

async fn link(api: &Api, body: Value) -> (u16, Value) {
    api.post("/v1/console-links", ADMIN, body).await
}

async fn create_sub(api: &Api, w: &World, tenant: &str) -> String {
    let body = json!({"url": w.receiver.url("/x"), "tenant_id": tenant});
    let (status, created) = api.post("/v1/subscriptions", ADMIN, body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_tenant_link_sees_only_its_tenant_and_an_admin_link_everything() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let api = Api::new(&app);
    let acme = create_sub(&api, &w, "acme").await;
    let globex = create_sub(&api, &w, "globex").await;

    let (status, made) = link(&api, json!({"tenant_id": "acme", "ttl": "10m"})).await;
    assert_eq!(status, 201, "{made}");
    let url = made["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/console#t=hlc1.", app.api)), "{url}");
    assert!(made["expires_at"].as_str().unwrap().ends_with('Z'), "{made}");
    let tenant = token_of(url);

    let (status, page) = api.get("/v1/subscriptions", &tenant).await;
    let ids: Vec<_> = page["items"].as_array().unwrap().iter().map(|s| s["id"].clone()).collect();
    assert_eq!((status, ids), (200, vec![json!(acme)]));
    assert_eq!(api.get(&format!("/v1/subscriptions/{acme}"), &tenant).await.0, 200);
    assert_eq!(api.get(&format!("/v1/subscriptions/{globex}"), &tenant).await.0, 404);
    let (status, _) =
        api.post(&format!("/v1/subscriptions/{globex}/deactivate"), &tenant, json!({})).await;
    assert_eq!(status, 404, "another tenant's id is not found, not changed");
    assert_eq!(api.get("/v1/stats", &tenant).await.0, 404, "overall stats are the admin's");
    let (status, _) = api.post("/v1/console-links", &tenant, json!({})).await;
    assert_eq!(status, 404, "a tenant link cannot make links");

    let (_, made) = link(&api, json!({})).await;
    let admin = token_of(made["url"].as_str().unwrap());
    let (status, page) = api.get("/v1/subscriptions", &admin).await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 2));
    assert_eq!(api.get("/v1/stats", &admin).await.0, 200);
    // A static tenant token still works beside the links.
    assert_eq!(api.get(&format!("/v1/subscriptions/{acme}"), ACME).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn expired_and_altered_links_are_refused_with_401() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let api = Api::new(&app);

    let (_, made) = link(&api, json!({"tenant_id": "acme", "ttl": "10m"})).await;
    let token = token_of(made["url"].as_str().unwrap());
    let globex = base64_url("globex");
    let altered = token.replacen(&base64_url("acme"), &globex, 1);
    assert_ne!(altered, token);
    assert_eq!(api.get("/v1/subscriptions", &altered).await.0, 401);
    let mut flipped = token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(api.get("/v1/subscriptions", &flipped).await.0, 401);
    let other_key =
        hookline::console_link::sign("another-key-of-32-characters-long!", None, i64::MAX);
    assert_eq!(api.get("/v1/subscriptions", &other_key).await.0, 401);

    let (_, made) = link(&api, json!({"ttl": "1s"})).await;
    let short = token_of(made["url"].as_str().unwrap());
    eventually_true(WAIT, "the 1s link expires", || async {
        api.get("/v1/subscriptions", &short).await.0 == 401
    })
    .await;
    let expired = hookline::console_link::sign(LINK_KEY, None, 1);
    assert_eq!(api.get("/v1/subscriptions", &expired).await.0, 401);
    app.stop().await;
}

#[tokio::test]
async fn link_requests_with_bad_input_name_the_field_and_links_off_name_the_key() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let api = Api::new(&app);
    let (status, err) = link(&api, json!({"ttl": "soon"})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("ttl")), "{err}");
    let (status, err) = link(&api, json!({"ttl": "400d"})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("ttl")), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("api.console_link_max_ttl"));
    let (status, err) = link(&api, json!({"tenant_id": "bad tenant"})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("tenant_id")), "{err}");
    app.stop().await;

    let app = w.start_app(w.config("\"0s\"")).await;
    let (status, err) = link(&Api::new(&app), json!({})).await;
    assert_eq!(status, 422, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("api.console_link_key"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn the_cli_prints_a_link_the_api_accepts() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("--config")
        .arg(w.config_file("\"0s\""))
        .args(["console-link", "--tenant", "acme", "--ttl", "5m", "--base-url", &app.api])
        .env("HOOKLINE_API__CONSOLE_LINK_KEY", LINK_KEY)
        .output()
        .await
        .expect("hookline runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    let url = stdout.lines().next().unwrap();
    assert!(url.starts_with(&format!("{}/console#t=", app.api)), "{stdout}");
    let api = Api::new(&app);
    assert_eq!(api.get("/v1/subscriptions", &token_of(url)).await.0, 200);
    assert_eq!(api.get("/v1/stats", &token_of(url)).await.0, 404, "tenant rights only");

    let out = w.cli(&["console-link"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("api.console_link_key"), "{stderr}");
    app.stop().await;
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
