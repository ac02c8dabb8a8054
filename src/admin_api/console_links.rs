//! `POST /v1/console-links` (admin): a signed, expiring link to the web console, for the admin
//! console or one tenant's portal. The link's token is accepted by every route as a bearer
//! token (see [`super::Caller`]).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiJson, ApiResult, ApiState, Caller};
use crate::ids::TenantId;
use crate::ops::{ConsoleLink, ConsoleLinkRequest};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/console-links", post(create))
}

/// Body of `POST /v1/console-links`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleLinkBody {
    /// The tenant whose portal the link opens; absent: the admin console.
    pub tenant_id: Option<TenantId>,
    /// Lifetime, e.g. `"15m"`, `"1h"` (default 1h, at most `api.console_link_max_ttl`).
    #[schema(example = "1h")]
    pub ttl: Option<String>,
}

/// Makes a console link (admin only).
#[utoipa::path(post, path = "/v1/console-links", tag = "console", operation_id = "create_console_link",
    request_body = ConsoleLinkBody,
    responses((status = 201, body = ConsoleLink), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConsoleLinkBody>,
) -> ApiResult<(StatusCode, Json<ConsoleLink>)> {
    let ttl = match body.ttl.as_deref() {
        Some(t) => Some(humantime::parse_duration(t).map_err(|e| {
            ApiError::bad_field("ttl", format!("ttl {t:?} is not a duration like \"1h\": {e}"))
        })?),
        None => None,
    };
    let base = base_url(&state, &headers);
    let request = ConsoleLinkRequest { tenant_id: body.tenant_id, ttl };
    Ok((StatusCode::CREATED, Json(state.ops.console_link(&caller, request, &base)?)))
}

/// `api.console_public_url`, or `http://<Host>` of the request, or the listen address.
fn base_url(state: &ApiState, headers: &HeaderMap) -> String {
    let api = &state.ctx.config.api;
    if !api.console_public_url.is_empty() {
        return api.console_public_url.clone();
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    });
    match host {
        Some(h) => format!("http://{h}"),
        None => format!("http://{}", api.listen),
    }
}
