//! `POST /v1/events`: publish an event over HTTP, for stacks without a NATS client. Same
//! validation and dedupe as the NATS path; 202 once JetStream has stored it, 409 when the event
//! id was already published inside the duplicate window.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiJson, ApiResult, ApiState, Caller};
use crate::event::{InvalidEvent, WebhookEvent};
use crate::ingest::{PublishError, Published};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/events", post(publish))
}

/// Body of `POST /v1/events` (the WebhookEvent; `event_id` is generated when absent).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    pub event_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub occurred_at: Option<time::OffsetDateTime>,
    pub source: Option<String>,
    /// Forced to the caller's tenant for tenant tokens.
    pub tenant_id: Option<String>,
}

fn invalid(e: InvalidEvent) -> ApiError {
    let field = match &e {
        InvalidEvent::BadEventId(_) => "event_id",
        InvalidEvent::BadEventType(_) => "event_type",
        InvalidEvent::TooLong { field } => field,
        InvalidEvent::TooLarge { .. } => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "event_too_large", e.to_string());
        }
        _ => "payload",
    };
    ApiError::bad_field(field, e.to_string())
}

/// Publish an event.
#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = PublishEvent,
    responses((status = 202, body = Published), (status = 400, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 413, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn publish(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<PublishEvent>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    let tenant_id = caller.scope_tenant(body.tenant_id, "publish events")?;
    let event = WebhookEvent {
        event_id: body.event_id.unwrap_or_else(crate::ingest::new_event_id),
        event_type: body.event_type,
        payload: body.payload,
        occurred_at: Some(body.occurred_at.unwrap_or_else(time::OffsetDateTime::now_utc)),
        source: body.source,
        tenant_id,
    };
    let ctx = &state.ctx;
    let published = crate::ingest::publish_event(
        &ctx.js,
        &ctx.names,
        &event,
        ctx.config.delivery.max_payload_bytes,
    )
    .await
    .map_err(|e| match e {
        PublishError::Invalid(i) => invalid(i),
        other => ApiError::internal(other),
    })?;
    if published.duplicate {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_event",
            format!("event {} was already published", published.event_id),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(published)))
}
