//! `/v1/dlq`: list (by subscription), get one, redeliver one / many / all of a subscription,
//! purge. A tenant token sees only entries of its tenant's subscriptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiQuery, ApiResult, ApiState, Caller};
use crate::pipeline::dlq::{self, DlqEntry, DlqError};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/dlq", get(list).delete(purge))
        .route("/v1/dlq/redeliver", post(redeliver_many))
        .route("/v1/dlq/{seq}", get(get_one))
        .route("/v1/dlq/{seq}/redeliver", post(redeliver_one))
}

/// Query of `GET /v1/dlq` and `DELETE /v1/dlq`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DlqQuery {
    pub subscription_id: Option<String>,
    /// Page size, 1-1000 (default 100), oldest first.
    pub limit: Option<usize>,
}

/// Body of `POST /v1/dlq/redeliver`: explicit sequences, or `all` (of `subscription_id`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    #[serde(default)]
    pub sequences: Vec<u64>,
    #[serde(default)]
    pub all: bool,
    pub subscription_id: Option<String>,
}

/// What a redeliver did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RedeliverResult {
    pub redelivered: Vec<u64>,
    pub failed: Vec<RedeliverFailure>,
}

/// One entry that could not be redelivered.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RedeliverFailure {
    pub sequence: u64,
    pub error: String,
}

/// How many entries a purge removed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PurgeResult {
    pub purged: u64,
}

fn dlq_error(e: DlqError) -> ApiError {
    match e {
        DlqError::NotFound(seq) => ApiError::not_found(format!("dlq entry {seq} not found")),
        DlqError::NotRedeliverable { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_redeliverable", e.to_string())
        }
        DlqError::Nats(m) => ApiError::internal(m),
    }
}

/// Whether the caller may see entries of subscription `sub_id` (tenant tokens: only their own
/// live subscriptions; unprocessable events and deleted subscriptions are admin-only).
async fn sees_subscription(state: &ApiState, caller: &Caller, sub_id: &str) -> ApiResult<bool> {
    if *caller == Caller::Admin {
        return Ok(true);
    }
    match state.ctx.subscriptions.get(sub_id).await {
        Ok(Some(sub)) => Ok(caller.sees(sub.tenant_id.as_deref())),
        Ok(None) | Err(crate::store::subscriptions::SubscriptionError::BadId(_)) => Ok(false),
        Err(e) => Err(super::subscriptions::store_error(e)),
    }
}

async fn visible_entries(
    state: &ApiState,
    caller: &Caller,
    subscription: Option<&str>,
    limit: usize,
) -> ApiResult<Vec<DlqEntry>> {
    if let Some(sub) = subscription
        && !sees_subscription(state, caller, sub).await?
    {
        return Err(ApiError::not_found(format!("subscription {sub} not found")));
    }
    let ctx = &state.ctx;
    let all = dlq::list(
        &ctx.js,
        &ctx.names,
        subscription,
        if *caller == Caller::Admin { limit } else { usize::MAX },
    )
    .await
    .map_err(dlq_error)?;
    let mut visible = Vec::new();
    for e in all {
        if visible.len() == limit {
            break;
        }
        if sees_subscription(state, caller, &e.subscription_id).await? {
            visible.push(e);
        }
    }
    Ok(visible)
}

async fn visible_entry(state: &ApiState, caller: &Caller, seq: u64) -> ApiResult<DlqEntry> {
    let ctx = &state.ctx;
    let entry = dlq::get(&ctx.js, &ctx.names, seq).await.map_err(dlq_error)?;
    if sees_subscription(state, caller, &entry.subscription_id).await? {
        Ok(entry)
    } else {
        Err(ApiError::not_found(format!("dlq entry {seq} not found")))
    }
}

/// Dead-lettered deliveries, oldest first.
#[utoipa::path(get, path = "/v1/dlq", tag = "dlq", params(DlqQuery),
    responses((status = 200, body = Vec<DlqEntry>), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DlqQuery>,
) -> ApiResult<Json<Vec<DlqEntry>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_field("limit", "must be between 1 and 1000"));
    }
    Ok(Json(visible_entries(&state, &caller, q.subscription_id.as_deref(), limit).await?))
}

/// One entry.
#[utoipa::path(get, path = "/v1/dlq/{seq}", tag = "dlq", params(("seq" = u64, Path)),
    responses((status = 200, body = DlqEntry), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn get_one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(seq): Path<u64>,
) -> ApiResult<Json<DlqEntry>> {
    Ok(Json(visible_entry(&state, &caller, seq).await?))
}

/// Put one entry back on the delivery path with a fresh attempt budget.
#[utoipa::path(post, path = "/v1/dlq/{seq}/redeliver", tag = "dlq", params(("seq" = u64, Path)),
    responses((status = 200, body = DlqEntry), (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn redeliver_one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(seq): Path<u64>,
) -> ApiResult<Json<DlqEntry>> {
    visible_entry(&state, &caller, seq).await?;
    let ctx = &state.ctx;
    Ok(Json(dlq::redeliver(&ctx.js, &ctx.names, seq).await.map_err(dlq_error)?))
}

/// Redeliver several entries, or all (of a subscription).
#[utoipa::path(post, path = "/v1/dlq/redeliver", tag = "dlq", request_body = RedeliverRequest,
    responses((status = 200, body = RedeliverResult), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn redeliver_many(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<RedeliverRequest>,
) -> ApiResult<Json<RedeliverResult>> {
    let sequences = match (body.all, body.sequences.is_empty()) {
        (true, true) => {
            visible_entries(&state, &caller, body.subscription_id.as_deref(), usize::MAX)
                .await?
                .into_iter()
                .map(|e| e.sequence)
                .collect()
        }
        (false, false) => body.sequences,
        _ => {
            return Err(ApiError::bad_field(
                "sequences",
                "give either a non-empty `sequences` list or `all: true`",
            ));
        }
    };
    let mut result = RedeliverResult { redelivered: vec![], failed: vec![] };
    for seq in sequences {
        let outcome = match visible_entry(&state, &caller, seq).await {
            Ok(_) => dlq::redeliver(&state.ctx.js, &state.ctx.names, seq).await.map_err(dlq_error),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(_) => result.redelivered.push(seq),
            Err(e) => result.failed.push(RedeliverFailure { sequence: seq, error: e.message }),
        }
    }
    Ok(Json(result))
}

/// Delete every entry (admin), or those of one subscription.
#[utoipa::path(delete, path = "/v1/dlq", tag = "dlq", params(DlqQuery),
    responses((status = 200, body = PurgeResult), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn purge(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DlqQuery>,
) -> ApiResult<Json<PurgeResult>> {
    let ctx = &state.ctx;
    match (&caller, q.subscription_id.as_deref()) {
        (Caller::Tenant(_), None) => Err(ApiError::bad_field(
            "subscription_id",
            "a tenant token must name the subscription to purge",
        )),
        (_, Some(sub)) if !sees_subscription(&state, &caller, sub).await? => {
            Err(ApiError::not_found(format!("subscription {sub} not found")))
        }
        (_, sub) => Ok(Json(PurgeResult {
            purged: dlq::purge(&ctx.js, &ctx.names, sub).await.map_err(dlq_error)?,
        })),
    }
}
