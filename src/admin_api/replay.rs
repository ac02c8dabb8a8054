//! `POST /v1/replay`: replay one event by id, or every event in a time range (optionally of
//! some types), to all matching subscriptions or one named subscription.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiResult, ApiState, Caller};
use crate::replay::{ReplayError, ReplaySelection};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/replay", post(replay))
}

/// Body of `POST /v1/replay`: `event_id`, or `since` (+ optional `until`, `event_types`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub event_id: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub since: Option<time::OffsetDateTime>,
    /// Default: now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<time::OffsetDateTime>,
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Only to this subscription (default: every matching one).
    pub subscription_id: Option<String>,
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
    let selection = match (body.event_id, body.since) {
        (Some(id), None) => ReplaySelection::Event(id),
        (None, Some(since)) => {
            for t in &body.event_types {
                if !crate::event::valid_event_type(t) {
                    return Err(ApiError::bad_field(
                        "event_types",
                        format!("{t:?} is not an event type"),
                    ));
                }
            }
            let until = body.until.unwrap_or_else(time::OffsetDateTime::now_utc);
            if since >= until {
                return Err(ApiError::bad_field("since", "must be before until"));
            }
            ReplaySelection::Range { since, until, event_types: body.event_types }
        }
        _ => {
            return Err(ApiError::bad_field(
                "event_id",
                "give either `event_id` or `since` (with optional `until`)",
            ));
        }
    };
    let queued = crate::replay::replay(
        &state.ctx,
        &selection,
        body.subscription_id.as_deref(),
        caller.tenant(),
    )
    .await
    .map_err(|e| match e {
        ReplayError::EventNotFound(_) | ReplayError::SubscriptionNotFound(_) => {
            ApiError::not_found(e.to_string())
        }
        ReplayError::Invalid(m) => ApiError::bad_field("subscription_id", m),
        ReplayError::Failed(m) => ApiError::internal(m),
    })?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(ReplayResult { queued })))
}
