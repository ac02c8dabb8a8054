//! The admin HTTP API (role `api`): subscriptions, events, attempts, DLQ, replay, health and
//! the OpenAPI document. One file per resource; this one owns the router, authentication, the
//! JSON error shape and the extractors that turn bad input into 4xx naming the field.
//!
//! A front end of [`crate::ops`]: handlers parse the request into typed ids, call one operation
//! with the caller's scope, and render its result; [`OpsError`] maps to status and JSON here.
//!
//! Auth: `Authorization: Bearer <token>` on every route but `/healthz`, `/readyz`, `/metrics`
//! and the console's page and assets. The token is a configured one or a console link's
//! ([`crate::console_link`]), which has its tenant's rights. An admin token sees everything; a tenant token sees
//! and changes only its tenant's resources, and another tenant's resource answers 404 (its
//! existence is not revealed). Tokens are compared in constant time. Errors are
//! `{"error": {"code", "message", "field"}}`.

mod attempts;
mod console;
mod console_links;
mod dlq;
mod events;
mod health;
mod live;
pub mod openapi;
mod replay;
mod stats;
mod subscriptions;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::context::Ctx;
use crate::ids::InvalidId;
use crate::ops::{Ops, OpsError};

/// Who is calling: the operations layer's scope, decided by the bearer token.
pub use crate::ops::Scope as Caller;

/// Shared state of every handler.
#[derive(Clone)]
pub struct ApiState {
    pub ctx: Ctx,
    pub ops: Ops,
    /// Fires at shutdown: endless answers (the live feed) end with it, so that the graceful
    /// shutdown does not wait on them.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Builds the router with every route, the body limit and the JSON 404 fallback; `shutdown`
/// ends the streaming answers.
pub fn router(ctx: Ctx, shutdown: tokio_util::sync::CancellationToken) -> Router {
    let limit = ctx.config.api.body_limit_bytes;
    let state = ApiState { ops: Ops::new(ctx.clone()), ctx, shutdown };
    Router::new()
        .merge(health::routes())
        .merge(openapi::routes())
        .merge(subscriptions::routes())
        .merge(events::routes())
        .merge(attempts::routes())
        .merge(live::routes())
        .merge(dlq::routes())
        .merge(replay::routes())
        .merge(stats::routes())
        .merge(console_links::routes())
        .merge(console::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The JSON error every failing request gets.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// `{"error": {...}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, and which input field (if one) is at fault.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None }
    }
    pub fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.to_string()),
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message)
        }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "admin api request failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("a backing service failed: {e}"),
        )
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> ApiError {
        match e {
            OpsError::NotFound(m) => ApiError::not_found(m),
            OpsError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            OpsError::Invalid { field, message } => ApiError::bad_field(&field, message),
            OpsError::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "event_too_large", m)
            }
            OpsError::Unprocessable { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            OpsError::Backend(e) => ApiError::internal(e),
        }
    }
}

/// Parses a path or query value into its typed id; bad text is a 400 naming `field`.
pub fn parse_field<T: std::str::FromStr<Err = InvalidId>>(field: &str, raw: &str) -> ApiResult<T> {
    raw.parse().map_err(|e: InvalidId| ApiError::bad_field(field, e.to_string()))
}

/// [`parse_field`] of an optional value.
pub fn parse_opt<T: std::str::FromStr<Err = InvalidId>>(
    field: &str,
    raw: Option<&str>,
) -> ApiResult<Option<T>> {
    raw.map(|r| parse_field(field, r)).transpose()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.into(), message: self.message, field: self.field },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

fn eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, ApiError> {
        let header = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiError::unauthorized());
        };
        let api = &state.ctx.config.api;
        // Every token is compared (no early exit), so timing does not reveal which matched.
        let mut caller = None;
        for t in &api.admin_tokens {
            if eq(&t.0, token) {
                caller = Some(Caller::Admin);
            }
        }
        for t in &api.tenant_tokens {
            // The configuration checked every tenant; one that does not parse matches nothing.
            if let Ok(tenant) = crate::ids::TenantId::parse(&t.tenant)
                && eq(&t.token, token)
                && caller.is_none()
            {
                caller = Some(Caller::Tenant(tenant));
            }
        }
        if caller.is_none() && token.starts_with(crate::console_link::PREFIX) {
            caller = console_link_caller(&api.console_link_key.0, token);
        }
        caller.ok_or_else(ApiError::unauthorized)
    }
}

/// The rights of a console link's token: its tenant's, or an admin's without one; none when it
/// does not verify or has expired.
fn console_link_caller(key: &str, token: &str) -> Option<Caller> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match crate::console_link::verify(key, token, now) {
        Ok(claims) => Some(claims.tenant.map_or(Caller::Admin, Caller::Tenant)),
        Err(e) => {
            tracing::debug!(error = %e, "console link refused");
            None
        }
    }
}

/// The field named in a serde error message (`missing field `url``, `unknown field `x``,
/// `invalid type ... for `field``).
fn field_of(message: &str) -> Option<String> {
    // axum reports the path first: "...target type: url: invalid type: ..." for a body,
    // "...query string: failures: provided string was not `true` or `false`" for a query.
    if let Some((_, rest)) =
        message.split_once("target type: ").or_else(|| message.split_once("query string: "))
        && let Some((path, _)) = rest.split_once(": ")
        && !path.is_empty()
        && !path.contains(' ')
    {
        let top = path.split(['.', '[']).next().unwrap_or(path);
        return Some(top.to_string());
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// `Json<T>` whose rejections are JSON errors: 400 naming the field, 413 over the body limit,
/// 415 without a JSON content type.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let text = r.body_text();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "body_too_large", "request body is over the limit")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::new(status, "unsupported_media_type", "content-type must be application/json")
        }
        _ => {
            let field = field_of(&text);
            ApiError { field, ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", text) }
        }
    }
}

/// `Query<T>` whose rejections are JSON 400s naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    let text = r.body_text();
    ApiError {
        field: field_of(&text),
        ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", text)
    }
}

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_read_from_serde_messages() {
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: missing field `url` at line 1 column 2"
            ),
            Some("url".into())
        );
        assert_eq!(field_of("unknown field `urll`, expected one of `url`"), Some("urll".into()));
        assert_eq!(field_of("expected value at line 1 column 1"), None);
        assert_eq!(
            field_of(
                "Failed to deserialize query string: failures: provided string was not `true` or `false`"
            ),
            Some("failures".into())
        );
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: url: invalid type: integer `7`"
            ),
            Some("url".into())
        );
        assert_eq!(
            field_of(
                "Failed to deserialize the JSON body into the target type: event_types[0]: invalid type"
            ),
            Some("event_types".into())
        );
    }

    #[test]
    fn tenant_callers_see_only_their_tenant() {
        let t = Caller::Tenant("acme".parse().unwrap());
        assert!(t.sees(Some("acme")));
        assert!(!t.sees(Some("other")));
        assert!(!t.sees(None));
        assert!(Caller::Admin.sees(None));
    }
}
