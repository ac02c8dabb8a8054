//! `GET /v1/attempts`: the attempt log, newest first, paginated, by subscription, event id or
//! status. A tenant token sees only its tenant's attempts.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiQuery, ApiResult, ApiState, Caller, parse_opt};
use crate::attempt_log::{AttemptPage, AttemptStatus};
use crate::ids::{EventId, SubscriptionId};
use crate::ops::AttemptFilter;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/attempts", get(list))
}

/// Query of `GET /v1/attempts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    /// Only attempts to this subscription.
    #[param(value_type = Option<SubscriptionId>)]
    pub subscription_id: Option<String>,
    /// Only attempts of this event.
    #[param(value_type = Option<EventId>)]
    pub event_id: Option<String>,
    /// Only attempts with this outcome.
    #[param(value_type = Option<AttemptStatus>)]
    pub status: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Cursor from a previous page's `next_cursor` (a record position, opaque: pass it back).
    #[param(minimum = 0)]
    pub before: Option<i64>,
}

/// Attempts, newest first.
#[utoipa::path(get, path = "/v1/attempts", tag = "attempts", operation_id = "list_attempts", params(AttemptsQuery),
    responses((status = 200, body = AttemptPage), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> ApiResult<Json<AttemptPage>> {
    let status = match q.status.as_deref() {
        Some(s) => Some(crate::ops::parse_status("status", s)?),
        None => None,
    };
    let before = match q.before {
        Some(b) if b < 0 => {
            return Err(ApiError::bad_field("before", "before must not be negative"));
        }
        b => b.map(|b| b as u64),
    };
    let filter = AttemptFilter {
        subscription_id: parse_opt("subscription_id", q.subscription_id.as_deref())?,
        event_id: parse_opt("event_id", q.event_id.as_deref())?,
        status,
        limit: q.limit.unwrap_or(50),
        before,
    };
    Ok(Json(state.ops.attempts(&caller, filter).await?))
}
