//! `/v1/dlq`: list (by subscription), get one, redeliver one / many / all of a subscription,
//! purge. A tenant token sees only entries of its tenant's subscriptions.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiQuery, ApiResult, ApiState, Caller, parse_opt};
use crate::ids::SubscriptionId;
use crate::ops::{RedeliverResult, RedeliverTarget};
use crate::pipeline::dlq::DlqEntry;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/dlq", get(list).delete(purge))
        .route("/v1/dlq/redeliver", post(redeliver_many))
        .route("/v1/dlq/{seq}", get(get_one))
        .route("/v1/dlq/{seq}/redeliver", post(redeliver_one))
}

/// Query of `GET /v1/dlq`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DlqQuery {
    /// Only entries of this subscription.
    #[param(value_type = Option<SubscriptionId>)]
    pub subscription_id: Option<String>,
    /// Page size, 1-1000 (default 100), oldest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Query of `DELETE /v1/dlq`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PurgeQuery {
    /// Only entries of this subscription (required for tenant tokens).
    #[param(value_type = Option<SubscriptionId>)]
    pub subscription_id: Option<String>,
}

/// Body of `POST /v1/dlq/redeliver`: explicit sequences, or `all` (of `subscription_id`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    /// DLQ stream sequences; give these or `all: true`.
    #[serde(default)]
    pub sequences: Vec<u64>,
    /// Every entry (of `subscription_id`, if given).
    #[serde(default)]
    pub all: bool,
    pub subscription_id: Option<SubscriptionId>,
}

/// How many entries a purge removed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PurgeResult {
    pub purged: u64,
}

/// Dead-lettered deliveries, oldest first.
#[utoipa::path(get, path = "/v1/dlq", tag = "dlq", operation_id = "list_dlq", params(DlqQuery),
    responses((status = 200, body = Vec<DlqEntry>), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DlqQuery>,
) -> ApiResult<Json<Vec<DlqEntry>>> {
    let sub: Option<SubscriptionId> = parse_opt("subscription_id", q.subscription_id.as_deref())?;
    let limit = q.limit.unwrap_or(100);
    Ok(Json(state.ops.dlq_list(&caller, sub.as_ref(), limit).await?))
}

/// One entry.
#[utoipa::path(get, path = "/v1/dlq/{seq}", tag = "dlq", operation_id = "get_dlq_entry", params(("seq" = u64, Path, minimum = 1, description = "DLQ stream sequence")),
    responses((status = 200, body = DlqEntry), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn get_one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(seq): Path<String>,
) -> ApiResult<Json<DlqEntry>> {
    Ok(Json(state.ops.dlq_get(&caller, path_seq(&seq)?).await?))
}

/// The `{seq}` of a DLQ route: a 400 naming `seq` unless it is a sequence number.
fn path_seq(raw: &str) -> ApiResult<u64> {
    match raw.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ApiError::bad_field(
            "seq",
            format!("seq {raw:?} is not a stream sequence (1 or more)"),
        )),
    }
}

/// Put one entry back on the delivery path with a fresh attempt budget.
#[utoipa::path(post, path = "/v1/dlq/{seq}/redeliver", tag = "dlq", operation_id = "redeliver_dlq_entry", params(("seq" = u64, Path, minimum = 1, description = "DLQ stream sequence")),
    responses((status = 200, body = DlqEntry), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn redeliver_one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(seq): Path<String>,
) -> ApiResult<Json<DlqEntry>> {
    Ok(Json(state.ops.dlq_redeliver_one(&caller, path_seq(&seq)?).await?))
}

/// Redeliver several entries, or all (of a subscription).
#[utoipa::path(post, path = "/v1/dlq/redeliver", tag = "dlq", operation_id = "redeliver_dlq_entries", request_body = RedeliverRequest,
    responses((status = 200, body = RedeliverResult), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn redeliver_many(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<RedeliverRequest>,
) -> ApiResult<Json<RedeliverResult>> {
    if body.sequences.iter().any(|s| *s > i64::MAX as u64) {
        return Err(ApiError::bad_field("sequences", "a stream sequence is at most 2^63 - 1"));
    }
    let target = match (body.all, body.sequences.is_empty()) {
        (true, true) => RedeliverTarget::All(body.subscription_id),
        (false, _) => RedeliverTarget::Sequences(body.sequences),
        (true, false) => {
            return Err(ApiError::bad_field(
                "sequences",
                "give either a non-empty `sequences` list or `all: true`",
            ));
        }
    };
    Ok(Json(state.ops.dlq_redeliver(&caller, target).await?))
}

/// Delete every entry (admin), or those of one subscription.
#[utoipa::path(delete, path = "/v1/dlq", tag = "dlq", operation_id = "purge_dlq", params(PurgeQuery),
    responses((status = 200, body = PurgeResult), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn purge(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PurgeQuery>,
) -> ApiResult<Json<PurgeResult>> {
    let sub: Option<SubscriptionId> = parse_opt("subscription_id", q.subscription_id.as_deref())?;
    Ok(Json(PurgeResult { purged: state.ops.dlq_purge(&caller, sub.as_ref()).await? }))
}
