//! The OpenAPI 3 document, generated from the handlers' annotations and served at
//! `/openapi.json` (authenticated, like every route but health).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{ApiResult, ApiState, Caller};

#[derive(OpenApi)]
#[openapi(
    info(title = "hookline admin API", description = "Manage webhook subscriptions, publish events, inspect attempts and the DLQ, replay."),
    paths(
        super::health::healthz, super::health::readyz,
        super::subscriptions::create, super::subscriptions::list, super::subscriptions::get_one,
        super::subscriptions::update, super::subscriptions::delete, super::subscriptions::activate,
        super::subscriptions::deactivate, super::subscriptions::rotate_secret,
        super::events::publish,
        super::attempts::list,
        super::dlq::list, super::dlq::get_one, super::dlq::redeliver_one, super::dlq::redeliver_many, super::dlq::purge,
        super::replay::replay,
        super::stats::metrics, super::stats::overall, super::stats::one,
        openapi_json,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> Router<ApiState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3 document")), security(("bearer" = [])))]
async fn openapi_json(_caller: Caller) -> ApiResult<Json<utoipa::openapi::OpenApi>> {
    Ok(Json(ApiDoc::openapi()))
}
