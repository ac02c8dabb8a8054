//! The web console (`GET /console` and `/console/assets/{file}`): a small vanilla JS/HTML/CSS
//! single page over the public admin API, embedded in the binary (no CDN, no build step, works
//! offline). Unauthenticated like the health routes: the page holds no data; its link's token
//! (in the URL fragment, see [`crate::console_link`]) is sent by the page as a bearer token to
//! the `/v1` routes, which enforce the tenant's rights.
//!
//! Every answer carries a Content-Security-Policy (scripts, styles and requests to this origin
//! only, images also from `api.console_logo_url`, `frame-ancestors` from
//! `api.console_frame_ancestors`), `Referrer-Policy: no-referrer` and no cookie. The theme
//! colour is served as `theme.css`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, ApiState};
use crate::config::ApiConfig;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const LIVE_SCRIPT: &str = include_str!("console/live.js");
const STYLE: &str = include_str!("console/console.css");

pub fn routes() -> Router<ApiState> {
    Router::new().route("/console", get(page)).route("/console/assets/{file}", get(asset))
}

/// The console's page (its data comes from the API with the link's token).
#[utoipa::path(get, path = "/console", tag = "console", operation_id = "console_page",
    responses((status = 200, description = "The console's HTML page", content_type = "text/html; charset=utf-8", body = String)))]
async fn page(State(state): State<ApiState>) -> Response {
    let api = &state.ctx.config.api;
    // The logo URL was validated as an http(s) URL without quotes, so it is safe in an attribute.
    let html = INDEX.replace("{{LOGO_URL}}", &api.console_logo_url);
    respond(api, "text/html; charset=utf-8", html)
}

/// The console's asset files.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: the handler matches the file name itself
enum ConsoleAssetName {
    #[serde(rename = "console.js")]
    ConsoleJs,
    #[serde(rename = "live.js")]
    LiveJs,
    #[serde(rename = "console.css")]
    ConsoleCss,
    #[serde(rename = "theme.css")]
    ThemeCss,
}

/// One of the console's assets: `console.js`, `live.js`, `console.css` or `theme.css`.
#[utoipa::path(get, path = "/console/assets/{file}", tag = "console", operation_id = "console_asset",
    params(("file" = inline(ConsoleAssetName), Path, description = "console.js, live.js, console.css or theme.css")),
    responses((status = 200, description = "The asset", content((String = "text/javascript; charset=utf-8"), (String = "text/css; charset=utf-8"))), (status = 404, body = super::ErrorBody)))]
async fn asset(State(state): State<ApiState>, Path(file): Path<String>) -> Response {
    let api = &state.ctx.config.api;
    match file.as_str() {
        "console.js" => respond(api, "text/javascript; charset=utf-8", SCRIPT.to_string()),
        "live.js" => respond(api, "text/javascript; charset=utf-8", LIVE_SCRIPT.to_string()),
        "console.css" => respond(api, "text/css; charset=utf-8", STYLE.to_string()),
        "theme.css" => {
            let css = format!(":root {{ --accent: {}; }}\n", api.console_theme_color);
            respond(api, "text/css; charset=utf-8", css)
        }
        _ => ApiError::not_found(format!("no console asset {file:?}")).into_response(),
    }
}

fn respond(api: &ApiConfig, content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_SECURITY_POLICY, csp(api)),
            (header::REFERRER_POLICY, "no-referrer".into()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
            (header::CACHE_CONTROL, "no-cache".into()),
        ],
        body,
    )
        .into_response()
}

/// The page's policy: everything from this origin only, the logo's URL as an image source.
pub fn csp(api: &ApiConfig) -> String {
    let ancestors = api.console_frame_ancestors.join(" ");
    let logo = if api.console_logo_url.is_empty() { "" } else { api.console_logo_url.as_str() };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data: {logo}; base-uri 'none'; form-action 'none'; \
         frame-ancestors {ancestors}"
    )
}
