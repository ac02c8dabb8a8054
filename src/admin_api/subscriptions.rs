//! `/v1/subscriptions`: create (the secret is returned once), get, list (filters and
//! pagination), update, delete, activate, deactivate, rotate-secret, and the test event. Each
//! change publishes a lifecycle event.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiQuery, ApiResult, ApiState, Caller, parse_field, parse_opt};
use crate::ids::{EventTypeFilter, SubscriptionId, TenantId};
use crate::ops::ListFilter;
use crate::signing::KeyType;
use crate::store::subscriptions::{
    BodyFormat, Ordering, SignatureScheme, Subscription, SubscriptionInput, Validation,
};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/subscriptions", post(create).get(list))
        .route("/v1/subscriptions/{id}", get(get_one).patch(update).delete(delete))
        .route("/v1/subscriptions/{id}/activate", post(activate))
        .route("/v1/subscriptions/{id}/deactivate", post(deactivate))
        .route("/v1/subscriptions/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/subscriptions/{id}/test", post(send_test))
        .route("/v1/subscriptions/{id}/public-key", get(public_key))
}

/// Body of `POST /v1/subscriptions/{id}/test` (may be empty).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The test event's payload (default `{"test": true, "subscription_id": ...}`).
    pub payload: Option<serde_json::Value>,
}

/// Body of `POST /v1/subscriptions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// http(s) endpoint with a host and no fragment; its addresses must pass the egress policy.
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+[^#]*$",
        min_length = 8,
        max_length = 2048,
        example = "http://127.0.0.1:9000/hook"
    )]
    pub url: String,
    /// Exact types or NATS wildcards; empty = every event.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub event_types: Vec<EventTypeFilter>,
    /// Tenant (forced to the caller's tenant for tenant tokens).
    pub tenant_id: Option<TenantId>,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// At most 32 entries; keys of 1-64, values of at most 512 characters.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub active: Option<bool>,
    #[serde(default)]
    pub signature_schemes: Vec<SignatureScheme>,
    /// `hmac` (default: `v1` signatures, a `whsec_` secret) or `ed25519` (`v1a` signatures; the
    /// response carries the `whpk_` public key instead of a secret).
    pub key_type: Option<KeyType>,
    #[serde(default)]
    pub body_format: BodyFormat,
    /// Override of `health.max_in_flight_per_endpoint`.
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub max_in_flight: Option<u32>,
    /// Override of `health.max_rps_per_endpoint` (0: unlimited).
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub max_rps: Option<u32>,
    /// `unordered` (default) or `fifo`.
    pub ordering: Option<Ordering>,
    /// Custom headers sent with every request: at most 20; no hop-by-hop header and none
    /// hookline sets (`webhook-*`, `*signature*`, `content-*`, `host`, `user-agent`). Values are
    /// stored like secrets and shown as `[redacted]`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Delays before each attempt (`["0s", "1m", "10m"]`), overriding `retry.schedule`: 1-100
    /// durations; its length is the attempt budget.
    #[schema(max_items = 100)]
    pub retry_schedule: Option<Vec<String>>,
    /// Payload filter: only events whose payload matches are delivered, e.g.
    /// `{"amount": {"$gt": 100}, "currency": {"$in": ["EUR", "USD"]}}`. Operators `$eq $ne $gt
    /// $gte $lt $lte $in $nin $exists $prefix`, combinators `$and $or $not`, dotted paths.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// `cloudevents`: the CloudEvents webhook validation handshake (`OPTIONS <url>`) runs
    /// before the subscription becomes active; a refusal creates it inactive, the reason in
    /// `disabled_reason`. `none` (default): no handshake.
    pub validation: Option<Validation>,
}

/// A subscription with its (new) secret: returned by create and rotate-secret only.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionWithSecret {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// `whsec_...`: shown once (hmac subscriptions; an ed25519 one shows its `public_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]+={0,2}$")]
    pub secret: Option<String>,
}

/// The public keys of an ed25519 subscription.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicKeys {
    #[schema(value_type = SubscriptionId)]
    pub id: String,
    /// The current public key, `whpk_...`.
    #[schema(pattern = "^whpk_[A-Za-z0-9+/]+={0,2}$")]
    pub public_key: String,
    /// Every key that signs now, newest first (two during a rotation's grace window).
    pub public_keys: Vec<String>,
}

/// Query of `GET /v1/subscriptions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this tenant's subscriptions.
    #[param(value_type = Option<TenantId>)]
    pub tenant_id: Option<String>,
    /// Only subscriptions that receive this event type.
    #[param(value_type = Option<crate::ids::EventType>)]
    pub event_type: Option<String>,
    /// Only active (true) or inactive (false) ones.
    pub active: Option<bool>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Items to skip (from a previous page's `next_offset`).
    #[param(minimum = 0, maximum = 9223372036854775807_u64)]
    pub offset: Option<usize>,
}

/// One page of subscriptions, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionPage {
    pub items: Vec<Subscription>,
    /// Pass as `offset` for the next page; absent on the last page.
    pub next_offset: Option<usize>,
}

/// The `{id}` of a subscription route: a 400 naming `id` unless it is a subscription id.
pub(super) fn path_id(raw: &str) -> ApiResult<SubscriptionId> {
    parse_field("id", raw)
}

fn with_secret(sub: Subscription) -> SubscriptionWithSecret {
    let secret = (sub.key_type == KeyType::Hmac).then(|| sub.current_secret().expose());
    SubscriptionWithSecret { subscription: sub, secret }
}

/// Create a subscription; the response carries its secret, shown only this once.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions", operation_id = "create_subscription", request_body = CreateSubscription,
    responses((status = 201, body = SubscriptionWithSecret, links(
            ("GetSubscription" = (operation_id = "get_subscription", parameters(("id" = "$response.body#/id")))),
            ("UpdateSubscription" = (operation_id = "update_subscription", parameters(("id" = "$response.body#/id")))),
            ("DeleteSubscription" = (operation_id = "delete_subscription", parameters(("id" = "$response.body#/id")))),
            ("ActivateSubscription" = (operation_id = "activate_subscription", parameters(("id" = "$response.body#/id")))),
            ("DeactivateSubscription" = (operation_id = "deactivate_subscription", parameters(("id" = "$response.body#/id")))),
            ("RotateSecret" = (operation_id = "rotate_subscription_secret", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSubscription>,
) -> ApiResult<(StatusCode, Json<SubscriptionWithSecret>)> {
    let input = SubscriptionInput {
        url: Some(body.url),
        event_types: Some(body.event_types.into_iter().map(EventTypeFilter::into_string).collect()),
        tenant_id: body.tenant_id.map(TenantId::into_string),
        description: body.description,
        metadata: Some(body.metadata),
        active: body.active,
        signature_schemes: Some(body.signature_schemes),
        key_type: body.key_type,
        body_format: Some(body.body_format),
        max_in_flight: body.max_in_flight,
        max_rps: body.max_rps,
        ordering: body.ordering,
        headers: Some(body.headers),
        retry_schedule: body.retry_schedule,
        filter: body.filter,
        validation: body.validation,
    };
    let sub = state.ops.create_subscription(&caller, input).await?;
    Ok((StatusCode::CREATED, Json(with_secret(sub))))
}

/// List subscriptions (a tenant token lists only its own).
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", operation_id = "list_subscriptions", params(ListQuery),
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
    let filter = ListFilter {
        tenant_id: parse_opt("tenant_id", q.tenant_id.as_deref())?,
        event_type: parse_opt("event_type", q.event_type.as_deref())?,
        active: q.active,
    };
    let matching = state.ops.list_subscriptions(&caller, &filter).await?;
    let offset = q.offset.unwrap_or(0);
    if offset > i64::MAX as usize {
        return Err(ApiError::bad_field("offset", "offset must be at most 2^63 - 1"));
    }
    let items: Vec<Subscription> = matching.iter().skip(offset).take(limit).cloned().collect();
    let next_offset = (offset + items.len() < matching.len()).then_some(offset + items.len());
    Ok(Json(SubscriptionPage { items, next_offset }))
}

/// One subscription (without its secret).
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions", operation_id = "get_subscription",
    params(("id" = SubscriptionId, Path, description = "Subscription id")),
    responses((status = 200, body = Subscription), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn get_one(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(state.ops.get_subscription(&caller, &path_id(&id)?).await?))
}

/// Change url, event types, description, metadata, active, signature schemes or body format.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions", operation_id = "update_subscription",
    params(("id" = SubscriptionId, Path, description = "Subscription id")), request_body = SubscriptionInput,
    responses((status = 200, body = Subscription), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SubscriptionInput>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(state.ops.update_subscription(&caller, &path_id(&id)?, input).await?))
}

/// Delete a subscription.
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions", operation_id = "delete_subscription",
    params(("id" = SubscriptionId, Path, description = "Subscription id")),
    responses((status = 204), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.ops.delete_subscription(&caller, &path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resume deliveries (409 if already active, or `handshake_refused` when the validation
/// handshake it needs first is refused).
#[utoipa::path(post, path = "/v1/subscriptions/{id}/activate", tag = "subscriptions", operation_id = "activate_subscription",
    params(("id" = SubscriptionId, Path, description = "Subscription id")),
    responses((status = 200, body = Subscription), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn activate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(state.ops.set_active(&caller, &path_id(&id)?, true).await?))
}

/// Stop deliveries (409 if already inactive).
#[utoipa::path(post, path = "/v1/subscriptions/{id}/deactivate", tag = "subscriptions", operation_id = "deactivate_subscription",
    params(("id" = SubscriptionId, Path, description = "Subscription id")),
    responses((status = 200, body = Subscription), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn deactivate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(state.ops.set_active(&caller, &path_id(&id)?, false).await?))
}

/// New secret; the previous one keeps signing for `api.secret_rotation_grace_hours`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/rotate-secret", tag = "subscriptions", operation_id = "rotate_subscription_secret",
    params(("id" = SubscriptionId, Path, description = "Subscription id")),
    responses((status = 200, body = SubscriptionWithSecret), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn rotate_secret(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionWithSecret>> {
    Ok(Json(with_secret(state.ops.rotate_secret(&caller, &path_id(&id)?).await?)))
}

/// Send a synthetic `webhook.test` event through the signed delivery path (filters do not
/// apply) and answer how that one attempt went; never retried, never dead-lettered, recorded
/// in the attempt log as a test. The body may be empty, `{}` or `{"payload": ...}`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/test", tag = "subscriptions", operation_id = "test_subscription",
    params(("id" = SubscriptionId, Path, description = "Subscription id")),
    request_body(content = Option<TestRequest>, content_type = "application/json"),
    responses((status = 200, body = crate::pipeline::test_event::TestOutcome), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn send_test(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<crate::pipeline::test_event::TestOutcome>> {
    let id = path_id(&id)?;
    let body = body.map_err(|r| {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "body_too_large", "request body is over the limit")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", r.body_text())
        }
    })?;
    let request: TestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TestRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            let message = e.to_string();
            let field = super::field_of(&message);
            ApiError { field, ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message) }
        })?
    };
    Ok(Json(state.ops.test_subscription(&caller, &id, request.payload).await?))
}

/// The `whpk_` public keys an ed25519 subscription's receiver verifies `v1a` signatures with
/// (409 `no_public_key` for an hmac subscription).
#[utoipa::path(get, path = "/v1/subscriptions/{id}/public-key", tag = "subscriptions", operation_id = "get_subscription_public_key",
    params(("id" = SubscriptionId, Path, description = "Subscription id")),
    responses((status = 200, body = PublicKeys), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn public_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PublicKeys>> {
    let (sub, public_keys) = state.ops.public_keys(&caller, &path_id(&id)?).await?;
    let public_key = public_keys.first().cloned().unwrap_or_default();
    Ok(Json(PublicKeys { id: sub.id, public_key, public_keys }))
}
