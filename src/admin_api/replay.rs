//! `POST /v1/replay`: replay one event by id, or every event in a time range (optionally of
//! some types), to all matching subscriptions or one named subscription.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiResult, ApiState, Caller};
use crate::ids::{EventId, EventType, SubscriptionId};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/replay", post(replay))
}

/// Body of `POST /v1/replay`: `event_id`, or `since` (+ optional `until`, `event_types`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub event_id: Option<EventId>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<time::OffsetDateTime>,
    /// Default: now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<time::OffsetDateTime>,
    #[serde(default)]
    pub event_types: Vec<EventType>,
    /// Only to this subscription (default: every matching one).
    pub subscription_id: Option<SubscriptionId>,
}

/// How many deliveries were queued.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReplayResult {
    pub queued: u64,
}

/// Replay from the event log.
#[utoipa::path(post, path = "/v1/replay", tag = "replay", request_body = ReplayRequest,
    responses((status = 202, body = ReplayResult), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn replay(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<ReplayResult>)> {
    let request = crate::ops::ReplayRequest {
        event_id: body.event_id,
        since: body.since,
        until: body.until,
        event_types: body.event_types,
        subscription_id: body.subscription_id,
    };
    let queued = state.ops.replay(&caller, request).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(ReplayResult { queued })))
}
