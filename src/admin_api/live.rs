//! `GET /v1/live`: the live feed as server-sent events — `event: attempt` (an attempt record,
//! as `GET /v1/attempts` shows it) as attempts happen, and `event: tick` (a [`LiveTick`]) every
//! second. A tenant token sees only its tenant's attempts. The console's overview and live tail
//! read it; `curl -N -H 'Authorization: Bearer …' …/v1/live` does too.

use std::convert::Infallible;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::{ApiQuery, ApiResult, ApiState, Caller, parse_opt};
use crate::ids::SubscriptionId;
use crate::ops::{LiveEvent, LiveRequest};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/live", get(live))
}

/// Query of `GET /v1/live`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// Only attempts to this subscription.
    #[param(value_type = Option<SubscriptionId>)]
    pub subscription_id: Option<String>,
    /// Pass on only attempts that did not succeed (the ticks still count every attempt).
    pub failures: Option<bool>,
}

/// Live attempts and per-second summaries (server-sent events; runs until the client leaves).
/// Each `attempt` event's data is an `AttemptRecord`, each `tick` event's a `LiveTick`; at
/// most 50 attempts are sent a second, the rest counted in the next tick's `dropped`.
#[utoipa::path(get, path = "/v1/live", tag = "attempts", operation_id = "live", params(LiveQuery),
    responses((status = 200, description = "text/event-stream of `attempt` (AttemptRecord) and `tick` (LiveTick) events", content_type = "text/event-stream", body = String),
        (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn live(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let request = LiveRequest {
        subscription_id: parse_opt("subscription_id", q.subscription_id.as_deref())?,
        failures_only: q.failures.unwrap_or(false),
    };
    let feed = state.ops.live(&caller, request).await?;
    let feed = feed.take_until(state.shutdown.cancelled_owned());
    Ok(Sse::new(feed.map(|item| {
        let event = match &item {
            LiveEvent::Attempt(r) => Event::default().event("attempt").json_data(r),
            LiveEvent::Tick(t) => Event::default().event("tick").json_data(t),
        };
        // Serialising plain records cannot fail; a comment keeps the stream going if it did.
        Ok(event.unwrap_or_else(|_| Event::default().comment("unserialisable item")))
    })))
}
