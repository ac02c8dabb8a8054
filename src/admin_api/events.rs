//! `POST /v1/events`: publish an event over HTTP, for stacks without a NATS client. Same
//! validation and dedupe as the NATS path; 202 once JetStream has stored it, 409 when the event
//! id was already published inside the duplicate window.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiJson, ApiResult, ApiState, Caller};
use crate::ids::{EventId, EventType, TenantId};
use crate::ingest::Published;
use crate::ops::NewEvent;
use crate::trace_context::{TRACEPARENT, TRACESTATE, TraceContext};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/events", post(publish))
}

/// Body of `POST /v1/events` (the WebhookEvent; `event_id` is generated when absent).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    pub event_id: Option<EventId>,
    pub event_type: EventType,
    /// Any JSON; delivered as `data` (the whole event is limited to
    /// `delivery.max_payload_bytes`, 413 over it).
    pub payload: serde_json::Value,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub occurred_at: Option<time::OffsetDateTime>,
    #[schema(max_length = 128)]
    pub source: Option<String>,
    /// Forced to the caller's tenant for tenant tokens.
    pub tenant_id: Option<TenantId>,
}

/// Publish an event.
///
/// A valid W3C `traceparent` header (with its `tracestate`) is published with the event and
/// carried to every webhook request it causes; an invalid one is ignored.
#[utoipa::path(post, path = "/v1/events", tag = "events", operation_id = "publish_event", request_body = PublishEvent,
    params(
        ("traceparent" = Option<String>, Header, description = "W3C trace context of the event (version 00, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01); ignored when invalid"),
        ("tracestate" = Option<String>, Header, description = "W3C vendor trace state, carried unchanged with a valid traceparent"),
    ),
    responses((status = 202, body = Published), (status = 400, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 413, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn publish(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PublishEvent>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    let event = NewEvent {
        event_id: body.event_id,
        event_type: body.event_type,
        payload: body.payload,
        occurred_at: body.occurred_at,
        source: body.source,
        tenant_id: body.tenant_id,
        trace: trace_of(&headers),
    };
    let published = state.ops.publish(&caller, event).await?;
    Ok((StatusCode::ACCEPTED, Json(published)))
}

/// The request's W3C trace context; absent, unreadable or invalid means none.
fn trace_of(headers: &HeaderMap) -> Option<TraceContext> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(text(TRACEPARENT)?, text(TRACESTATE))
}
