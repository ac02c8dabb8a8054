//! `/console` is served from the binary with its Content-Security-Policy, the configured frame
//! ancestors, theme colour and logo, and no cookie.

use super::config;
use crate::harness::http_client;
use crate::world::World;

#[tokio::test]
async fn the_console_page_carries_its_policy_theme_and_logo_and_sets_no_cookie() {
    let w = World::start().await;
    let mut c = config(&w);
    c.api.console_frame_ancestors = vec!["'self'".into(), "https://app.example.com".into()];
    c.api.console_theme_color = "#ff6600".into();
    c.api.console_logo_url = "https://cdn.example.com/logo.svg".into();
    let app = w.start_app(c).await;
    let http = http_client();
    let resp = http.get(format!("{}/console", app.api)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'self' https://app.example.com"), "{csp}");
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("img-src 'self' data: https://cdn.example.com/logo.svg"),
        "{csp}"
    );
    assert!(headers.get("set-cookie").is_none());
    let html = resp.text().await.unwrap();
    assert!(html.contains("src=\"https://cdn.example.com/logo.svg\""), "{html}");
    assert!(!html.contains("https://cdn.jsdelivr") && !html.contains("unpkg"), "no CDN");

    let theme = http.get(format!("{}/console/assets/theme.css", app.api)).send().await.unwrap();
    assert!(theme.text().await.unwrap().contains("--accent: #ff6600"));
    let js = http.get(format!("{}/console/assets/console.js", app.api)).send().await.unwrap();
    assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
    let missing = http.get(format!("{}/console/assets/nope.js", app.api)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}
