//! Observability routes: `GET /metrics` (Prometheus text; unauthenticated like the health
//! routes, for scrapers), `GET /v1/stats` and `GET /v1/subscriptions/{id}/stats` (success rate,
//! latency percentiles, failures by type over 5 min / 1 h / 24 h, backlog and health).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use serde::Serialize;

use super::{ApiError, ApiResult, ApiState, Caller};
use crate::context::Ctx;
use crate::metrics::Gauges;
use crate::stats::Windows;
use crate::store::health::Health;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/stats", get(overall))
        .route("/v1/subscriptions/{id}/stats", get(one))
}

/// Due deliveries per subscription id, from the deliveries stream's subject counts.
async fn backlog(ctx: &Ctx) -> anyhow::Result<Vec<(String, u64)>> {
    let stream = ctx.js.get_stream(ctx.names.deliveries_stream()).await?;
    let subjects: Vec<_> =
        stream.info_with_subjects(ctx.names.deliver_wildcard()).await?.collect().await;
    let prefix = format!("{}.deliver.", ctx.names.prefix());
    let mut out = Vec::new();
    for s in subjects {
        let (subject, n) = s?;
        out.push((subject.trim_start_matches(&prefix).to_string(), n as u64));
    }
    out.sort();
    Ok(out)
}

async fn gauges(ctx: &Ctx) -> anyhow::Result<Gauges> {
    let mut g = Gauges { backlog: backlog(ctx).await?, ..Default::default() };
    g.dlq_messages = ctx.js.get_stream(ctx.names.dlq_stream()).await?.info().await?.state.messages;
    let events = ctx.js.get_stream(ctx.names.events_stream()).await?;
    g.fanout_lag = events.consumer_info(ctx.names.fanout_consumer()).await?.num_pending;
    let deliveries = ctx.js.get_stream(ctx.names.deliveries_stream()).await?;
    g.deliver_pending = deliveries.consumer_info(ctx.names.deliver_consumer()).await?.num_pending;
    let subs = ctx.subscriptions.list().await?;
    // Every breaker in one round trip, not one per subscription.
    let ids: Vec<&str> = subs.iter().map(|s| s.id.as_str()).collect();
    let open = Health::new(ctx.redis.clone(), ctx.names.clone()).open_for(&ids).await?;
    g.breakers_open =
        subs.iter().zip(open).filter(|(_, o)| o.is_some()).map(|(s, _)| s.id.clone()).collect();
    g.subscriptions_disabled =
        subs.iter().filter(|s| s.disabled_reason.is_some() && !s.active).count() as u64;
    g.subscriptions_total = subs.len() as u64;
    Ok(g)
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format")))]
async fn metrics(State(state): State<ApiState>) -> ApiResult<impl IntoResponse> {
    let g = gauges(&state.ctx).await.map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::render(&g)))
}

/// Overall statistics.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OverallStats {
    pub windows: Windows,
    pub backlog: u64,
    pub dlq_messages: u64,
    pub breakers_open: u64,
    pub subscriptions_disabled: u64,
}

/// One subscription's statistics and health.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionStats {
    pub subscription_id: String,
    pub windows: Windows,
    pub backlog: u64,
    /// healthy, breaker_open, disabled or inactive.
    pub health: String,
}

/// Statistics over every subscription (admin only).
#[utoipa::path(get, path = "/v1/stats", tag = "stats",
    responses((status = 200, body = OverallStats), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn overall(State(state): State<ApiState>, caller: Caller) -> ApiResult<Json<OverallStats>> {
    if caller != Caller::Admin {
        return Err(ApiError::not_found(
            "overall stats are for admin tokens; use /v1/subscriptions/{id}/stats",
        ));
    }
    let ctx = &state.ctx;
    let g = gauges(ctx).await.map_err(ApiError::internal)?;
    let windows =
        crate::stats::windows(&ctx.redis, &ctx.names, None).await.map_err(ApiError::internal)?;
    Ok(Json(OverallStats {
        windows,
        backlog: g.backlog.iter().map(|(_, n)| n).sum(),
        dlq_messages: g.dlq_messages,
        breakers_open: g.breakers_open.len() as u64,
        subscriptions_disabled: g.subscriptions_disabled,
    }))
}

/// Statistics and health of one subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/stats", tag = "stats", params(("id" = String, Path)),
    responses((status = 200, body = SubscriptionStats), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionStats>> {
    let sub = super::subscriptions::visible(&state, &caller, &id).await?;
    let ctx = &state.ctx;
    let windows = crate::stats::windows(&ctx.redis, &ctx.names, Some(&id))
        .await
        .map_err(ApiError::internal)?;
    let stream =
        ctx.js.get_stream(ctx.names.deliveries_stream()).await.map_err(ApiError::internal)?;
    let mut counts =
        stream.info_with_subjects(ctx.names.deliver(&id)).await.map_err(ApiError::internal)?;
    let backlog = match counts.next().await {
        Some(Ok((_, n))) => n as u64,
        _ => 0,
    };
    let open = Health::new(ctx.redis.clone(), ctx.names.clone())
        .is_open(&id)
        .await
        .map_err(ApiError::internal)?;
    let health = match (sub.active, &sub.disabled_reason, open) {
        (false, Some(_), _) => "disabled",
        (false, None, _) => "inactive",
        (true, _, true) => "breaker_open",
        (true, _, false) => "healthy",
    };
    Ok(Json(SubscriptionStats { subscription_id: id, windows, backlog, health: health.into() }))
}
