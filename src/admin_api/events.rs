//! `POST /v1/events`: publish an event over HTTP, for stacks without a NATS client. Same
//! validation and dedupe as the NATS path; 202 once JetStream has stored it, 409 when the event
//! id was already published inside the duplicate window. The body is a WebhookEvent
//! (`application/json`) or a structured CloudEvent (`application/cloudevents+json`), which is
//! published as a structured CloudEvent.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiJson, ApiResult, ApiState, Caller};
use crate::cloudevents;
use crate::event::InvalidEvent;
use crate::ids::{EventId, EventType, TenantId};
use crate::ingest::{EventFormat, Published};
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

/// A structured-mode CloudEvent 1.0 (JSON event format), for the OpenAPI document; read by
/// [`cloudevents::parse_structured`]. Other members are extension attributes (names of
/// lower-case letters and digits; string, number or boolean values).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CloudEvent {
    /// Only "1.0".
    #[schema(pattern = "^1\\.0$")]
    pub specversion: String,
    /// The event id (also the dedupe key).
    #[schema(value_type = EventId)]
    pub id: String,
    /// URI-reference of the producer.
    #[schema(min_length = 1, max_length = 128)]
    pub source: String,
    /// The event type.
    #[schema(value_type = EventType, rename = "type")]
    pub kind: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub time: Option<String>,
    /// Media type of `data` (JSON when absent).
    pub datacontenttype: Option<String>,
    pub dataschema: Option<String>,
    pub subject: Option<String>,
    /// The payload.
    pub data: Option<serde_json::Value>,
    /// Non-JSON data, base64 (instead of `data`).
    pub data_base64: Option<String>,
    /// Extension: the tenant (forced to the caller's tenant for tenant tokens).
    #[schema(value_type = Option<TenantId>)]
    pub tenantid: Option<String>,
}

/// Publish an event.
///
/// A valid W3C `traceparent` header (with its `tracestate`) is published with the event and
/// carried to every webhook request it causes; an invalid one is ignored.
#[utoipa::path(post, path = "/v1/events", tag = "events", operation_id = "publish_event",
    request_body(content((PublishEvent = "application/json"), (CloudEvent = "application/cloudevents+json"))),
    params(
        ("traceparent" = Option<String>, Header, description = "W3C trace context of the event (version 00, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01); ignored when invalid"),
        ("tracestate" = Option<String>, Header, description = "W3C vendor trace state, carried unchanged with a valid traceparent"),
    ),
    responses((status = 202, body = Published), (status = 400, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 413, body = super::ErrorBody), (status = 415, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn publish(
    State(state): State<ApiState>,
    caller: Caller,
    request: Request,
) -> ApiResult<(StatusCode, Json<Published>)> {
    let trace = trace_of(request.headers());
    let structured = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(cloudevents::is_structured);
    let event = if structured {
        cloudevent_body(&state, request, trace).await?
    } else {
        let ApiJson(body) = ApiJson::<PublishEvent>::from_request(request, &state).await?;
        NewEvent {
            event_id: body.event_id,
            event_type: body.event_type,
            payload: body.payload,
            occurred_at: body.occurred_at,
            source: body.source,
            tenant_id: body.tenant_id,
            format: EventFormat::Webhook,
            cloudevent: None,
            trace,
        }
    };
    let published = state.ops.publish(&caller, event).await?;
    Ok((StatusCode::ACCEPTED, Json(published)))
}

/// Reads a structured CloudEvent body; a bad one is a 400 naming the attribute at fault.
async fn cloudevent_body(
    state: &ApiState,
    request: Request,
    trace: Option<TraceContext>,
) -> ApiResult<NewEvent> {
    let bytes = Bytes::from_request(request, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(r.status(), "body_too_large", "request body is over the limit")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text())
        }
    })?;
    let limit = state.ops.config().delivery.max_payload_bytes;
    let event = cloudevents::parse_structured(&bytes, None, limit).map_err(cloudevent_error)?;
    Ok(NewEvent {
        event_id: Some(event.event_id),
        event_type: event.event_type,
        payload: event.payload,
        occurred_at: event.occurred_at,
        source: event.source,
        tenant_id: event.tenant_id,
        format: EventFormat::Cloudevents,
        cloudevent: event.cloudevent,
        trace,
    })
}

/// A bad CloudEvent as an API error: 413 over the size limit, else 400 naming the attribute.
fn cloudevent_error(e: InvalidEvent) -> ApiError {
    let field = match &e {
        InvalidEvent::TooLarge { .. } => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "event_too_large", e.to_string());
        }
        InvalidEvent::CeMissingAttribute(name) => name,
        InvalidEvent::CeSpecVersion(_) => "specversion",
        InvalidEvent::BadEventId(_) => "id",
        InvalidEvent::BadEventType(_) => "type",
        InvalidEvent::CeDataNotJson { .. } => "data",
        InvalidEvent::TooLong { field } => field,
        InvalidEvent::BadField(_) => "tenantid",
        _ => "body",
    };
    ApiError::bad_field(field, e.to_string())
}

/// The request's W3C trace context; absent, unreadable or invalid means none.
fn trace_of(headers: &HeaderMap) -> Option<TraceContext> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(text(TRACEPARENT)?, text(TRACESTATE))
}
