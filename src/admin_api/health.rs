//! `/healthz` (the process is up) and `/readyz` (NATS and Redis reachable, streams in place, the
//! Redis subscription index complete).
//! The only routes without authentication.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// Readiness of each dependency.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub nats: bool,
    pub redis: bool,
    pub streams: bool,
    /// `ready`, or `rebuilding` while the Redis subscription index is rebuilt from the bucket
    /// (fan-out holds events meanwhile).
    pub subscription_index: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "up")))]
async fn healthz() -> &'static str {
    "ok"
}

/// NATS and Redis reachable, streams in place, the subscription index complete (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let ctx = &state.ctx;
    let nats = ctx.nats.connection_state() == async_nats::connection::State::Connected;
    let mut redis = ctx.redis.clone();
    let redis_ok = redis::cmd("PING").query_async::<String>(&mut redis).await.is_ok();
    let mut streams = nats;
    if nats {
        let mut names = ctx.names.deliveries_streams();
        names.extend([
            ctx.names.events_stream(),
            ctx.names.dlq_stream(),
            ctx.names.attempts_stream(),
        ]);
        for name in names {
            streams &= ctx.js.get_stream(&name).await.is_ok();
        }
    }
    let index_ready = ctx.sync.ready();
    let ready = nats && redis_ok && streams && index_ready;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let subscription_index = if index_ready { "ready" } else { "rebuilding" };
    (status, Json(Readiness { ready, nats, redis: redis_ok, streams, subscription_index }))
}
