//! `/v1/subscriptions`: create (the secret is returned once), get, list (filters and
//! pagination), update, delete, activate, deactivate, rotate-secret. Each change publishes a
//! lifecycle event.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiQuery, ApiResult, ApiState, Caller};
use crate::filter::EventFilter;
use crate::lifecycle::{self, LifecycleKind};
use crate::store::subscriptions::{
    BodyFormat, Ordering, SignatureScheme, Subscription, SubscriptionError, SubscriptionInput,
};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/subscriptions", post(create).get(list))
        .route("/v1/subscriptions/{id}", get(get_one).patch(update).delete(delete))
        .route("/v1/subscriptions/{id}/activate", post(activate))
        .route("/v1/subscriptions/{id}/deactivate", post(deactivate))
        .route("/v1/subscriptions/{id}/rotate-secret", post(rotate_secret))
}

/// Body of `POST /v1/subscriptions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    pub url: String,
    /// Exact types or NATS wildcards; empty = every event.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Tenant (forced to the caller's tenant for tenant tokens).
    pub tenant_id: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub active: Option<bool>,
    #[serde(default)]
    pub signature_schemes: Vec<SignatureScheme>,
    #[serde(default)]
    pub body_format: BodyFormat,
    /// Override of `health.max_in_flight_per_endpoint`.
    pub max_in_flight: Option<u32>,
    /// Override of `health.max_rps_per_endpoint` (0: unlimited).
    pub max_rps: Option<u32>,
    /// `unordered` (default) or `fifo`.
    pub ordering: Option<Ordering>,
}

/// A subscription with its (new) secret: returned by create and rotate-secret only.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// `whsec_...`: shown once.
    pub secret: String,
}

/// Query of `GET /v1/subscriptions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this tenant's subscriptions.
    pub tenant_id: Option<String>,
    /// Only subscriptions that receive this event type.
    pub event_type: Option<String>,
    /// Only active (true) or inactive (false) ones.
    pub active: Option<bool>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<usize>,
    /// Items to skip (from a previous page's `next_offset`).
    pub offset: Option<usize>,
}

/// One page of subscriptions, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionPage {
    pub items: Vec<Subscription>,
    /// Pass as `offset` for the next page; absent on the last page.
    pub next_offset: Option<usize>,
}

pub(super) fn store_error(e: SubscriptionError) -> ApiError {
    match e {
        SubscriptionError::NotFound(id) | SubscriptionError::BadId(id) => {
            ApiError::not_found(format!("subscription {id} not found"))
        }
        SubscriptionError::Store(e) => ApiError::internal(e),
        other => {
            let field = other.field().unwrap_or("body");
            ApiError::bad_field(field, other.to_string())
        }
    }
}

/// Loads a subscription the caller may see (others are 404).
pub(super) async fn visible(
    state: &ApiState,
    caller: &Caller,
    id: &str,
) -> ApiResult<Subscription> {
    let sub = state.ctx.subscriptions.require(id).await.map_err(store_error)?;
    if caller.sees(sub.tenant_id.as_deref()) {
        Ok(sub)
    } else {
        Err(ApiError::not_found(format!("subscription {id} not found")))
    }
}

fn with_secret(sub: Subscription) -> SubscriptionWithSecret {
    let secret = sub.current_secret().expose();
    SubscriptionWithSecret { subscription: sub, secret }
}

async fn notify(state: &ApiState, kind: LifecycleKind, sub: &Subscription) {
    lifecycle::publish(&state.ctx.nats, &state.ctx.names, kind, sub).await;
}

/// Create a subscription; the response carries its secret, shown only this once.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions", request_body = CreateSubscription,
    responses((status = 201, body = SubscriptionWithSecret), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSubscription>,
) -> ApiResult<(StatusCode, Json<SubscriptionWithSecret>)> {
    let tenant = caller.scope_tenant(body.tenant_id, "create subscriptions")?;
    let input = SubscriptionInput {
        url: Some(body.url),
        event_types: Some(body.event_types),
        tenant_id: tenant,
        description: body.description,
        metadata: Some(body.metadata),
        active: body.active,
        signature_schemes: Some(body.signature_schemes),
        body_format: Some(body.body_format),
        max_in_flight: body.max_in_flight,
        max_rps: body.max_rps,
        ordering: body.ordering,
    };
    let sub = state.ctx.subscriptions.create(input).await.map_err(store_error)?;
    notify(&state, LifecycleKind::Created, &sub).await;
    Ok((StatusCode::CREATED, Json(with_secret(sub))))
}

/// List subscriptions (a tenant token lists only its own).
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", params(ListQuery),
    responses((status = 200, body = SubscriptionPage), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<SubscriptionPage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_field("limit", "must be between 1 and 1000"));
    }
    let filter = match &q.event_type {
        Some(t) if crate::event::valid_event_type(t) => Some(t.clone()),
        Some(t) => {
            return Err(ApiError::bad_field("event_type", format!("{t:?} is not an event type")));
        }
        None => None,
    };
    let all = state.ctx.subscriptions.list().await.map_err(store_error)?;
    let matching: Vec<Subscription> = all
        .into_iter()
        .filter(|s| caller.sees(s.tenant_id.as_deref()))
        .filter(|s| q.tenant_id.as_ref().is_none_or(|t| s.tenant_id.as_ref() == Some(t)))
        .filter(|s| q.active.is_none_or(|a| s.active == a))
        .filter(|s| {
            filter.as_ref().is_none_or(|t| {
                s.event_types.is_empty() || s.filters().iter().any(|f: &EventFilter| f.matches(t))
            })
        })
        .collect();
    let offset = q.offset.unwrap_or(0);
    let items: Vec<Subscription> = matching.iter().skip(offset).take(limit).cloned().collect();
    let next_offset = (offset + items.len() < matching.len()).then_some(offset + items.len());
    Ok(Json(SubscriptionPage { items, next_offset }))
}

/// One subscription (without its secret).
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn get_one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(visible(&state, &caller, &id).await?))
}

/// Change url, event types, description, metadata, active, signature schemes or body format.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)), request_body = SubscriptionInput,
    responses((status = 200, body = Subscription), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> ApiResult<Json<Subscription>> {
    let before = visible(&state, &caller, &id).await?;
    if input.tenant_id.is_some() && caller != Caller::Admin {
        return Err(ApiError::bad_field(
            "tenant_id",
            "only an admin token can move a subscription to another tenant",
        ));
    }
    let sub = state.ctx.subscriptions.update(&id, input).await.map_err(store_error)?;
    notify(&state, LifecycleKind::Updated, &sub).await;
    if before.active != sub.active {
        notify(
            &state,
            if sub.active { LifecycleKind::Activated } else { LifecycleKind::Deactivated },
            &sub,
        )
        .await;
    }
    Ok(Json(sub))
}

/// Delete a subscription.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    visible(&state, &caller, &id).await?;
    let sub = state.ctx.subscriptions.delete(&id).await.map_err(store_error)?;
    notify(&state, LifecycleKind::Deleted, &sub).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active(
    state: ApiState,
    caller: Caller,
    id: String,
    active: bool,
) -> ApiResult<Json<Subscription>> {
    let before = visible(&state, &caller, &id).await?;
    if before.active == active {
        let verb = if active { "active" } else { "inactive" };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("subscription {id} is already {verb}"),
        ));
    }
    let sub = state.ctx.subscriptions.set_active(&id, active).await.map_err(store_error)?;
    notify(
        &state,
        if active { LifecycleKind::Activated } else { LifecycleKind::Deactivated },
        &sub,
    )
    .await;
    Ok(Json(sub))
}

/// Resume deliveries (409 if already active).
#[utoipa::path(post, path = "/v1/subscriptions/{id}/activate", tag = "subscriptions", params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn activate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    set_active(state, caller, id, true).await
}

/// Stop deliveries (409 if already inactive).
#[utoipa::path(post, path = "/v1/subscriptions/{id}/deactivate", tag = "subscriptions", params(("id" = String, Path)),
    responses((status = 200, body = Subscription), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn deactivate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    set_active(state, caller, id, false).await
}

/// New secret; the previous one keeps signing for `api.secret_rotation_grace_hours`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/rotate-secret", tag = "subscriptions", params(("id" = String, Path)),
    responses((status = 200, body = SubscriptionWithSecret), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionWithSecret>> {
    visible(&state, &caller, &id).await?;
    let grace = state.ctx.config.api.rotation_grace();
    let sub = state.ctx.subscriptions.rotate_secret(&id, grace).await.map_err(store_error)?;
    notify(&state, LifecycleKind::SecretRotated, &sub).await;
    Ok(Json(with_secret(sub)))
}
