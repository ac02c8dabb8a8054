//! Observability routes: `GET /metrics` (Prometheus text; unauthenticated like the health
//! routes, for scrapers), `GET /v1/stats` and `GET /v1/subscriptions/{id}/stats` (success rate,
//! latency percentiles, failures by type over 5 min / 1 h / 24 h, backlog and health).

use super::{ApiResult, ApiState, Caller};
use crate::ids::SubscriptionId;
use crate::ops::{OverallStats, SubscriptionStats};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/stats", get(overall))
        .route("/v1/subscriptions/{id}/stats", get(one))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format")))]
async fn metrics(State(state): State<ApiState>) -> ApiResult<impl IntoResponse> {
    let g = state.ops.gauges().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render(&g)))
}

/// Statistics over every subscription (admin only).
#[utoipa::path(get, path = "/v1/stats", tag = "stats", operation_id = "overall_stats",
    responses((status = 200, body = OverallStats), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn overall(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<OverallStats>> {
    Ok(Json(state.ops.overall_stats(&caller).await?))
}

/// Statistics and health of one subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/stats", tag = "stats", operation_id = "subscription_stats", params(("id" = SubscriptionId, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionStats), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionStats>> {
    let id = super::subscriptions::path_id(&id)?;
    Ok(Json(state.ops.subscription_stats(&caller, &id).await?))
}
