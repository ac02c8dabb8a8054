//! `GET /v1/attempts`: the attempt log, newest first, paginated, by subscription, event id or
//! status. A tenant token sees only its tenant's attempts.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiQuery, ApiResult, ApiState, Caller};
use crate::attempt_log::{AttemptPage, AttemptQuery, AttemptStatus};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/attempts", get(list))
}

/// Query of `GET /v1/attempts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    pub subscription_id: Option<String>,
    pub event_id: Option<String>,
    /// succeeded, failed, dead_lettered or skipped_duplicate.
    pub status: Option<String>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<usize>,
    /// Cursor from a previous page's `next_cursor`.
    pub before: Option<u64>,
}

/// Attempts, newest first.
#[utoipa::path(get, path = "/v1/attempts", tag = "attempts", params(AttemptsQuery),
    responses((status = 200, body = AttemptPage), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> ApiResult<Json<AttemptPage>> {
    let status = match q.status.as_deref() {
        Some(s) => Some(AttemptStatus::parse(s).ok_or_else(|| {
            ApiError::bad_field(
                "status",
                format!("{s:?} is not one of succeeded, failed, dead_lettered, skipped_duplicate"),
            )
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_field("limit", "must be between 1 and 500"));
    }
    if let Some(sub) = &q.subscription_id {
        super::subscriptions::visible(&state, &caller, sub).await?;
    }
    let query = AttemptQuery {
        subscription_id: q.subscription_id,
        event_id: q.event_id,
        status,
        tenant_id: caller.tenant().map(str::to_string),
        limit,
        before: q.before,
    };
    let ctx = &state.ctx;
    let page = crate::attempt_log::query(&ctx.js, &ctx.redis, &ctx.names, &query)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(page))
}
