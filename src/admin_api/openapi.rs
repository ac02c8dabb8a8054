//! The OpenAPI 3 document, generated from the handlers' annotations and served at
//! `/openapi.json` (authenticated, like every route but health).
//!
//! It states every constraint the server enforces (the ids' patterns and lengths from
//! [`crate::ids`], enums, limits), so a client generated from it validates as the server does,
//! and links the create-subscription response to the operations on the new id (for stateful
//! contract tests). [`document`] fixes what utoipa gets wrong on the way out: it writes a
//! link's fields in snake case (`operation_id`), where OpenAPI says `operationId`.

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
        super::subscriptions::send_test, super::subscriptions::public_key,
        super::events::publish,
        super::attempts::list, super::live::live,
        super::dlq::list, super::dlq::get_one, super::dlq::redeliver_one, super::dlq::redeliver_many, super::dlq::purge,
        super::replay::replay,
        super::stats::metrics, super::stats::overall, super::stats::one,
        super::console_links::create, super::console::page, super::console::asset,
        openapi_json,
    ),
    components(schemas(crate::ops::LiveTick)),
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
async fn openapi_json(_caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(document()))
}

/// The document as served: utoipa's, with link fields named as OpenAPI names them, the rules
/// that tie several fields together, and the answers every JSON body can get.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    fix_links(&mut doc);
    add_cross_field_rules(&mut doc);
    add_body_rejections(&mut doc);
    doc
}

/// Rules over several fields that derive macros cannot say: a redeliver names a non-empty
/// `sequences` list or `all: true` (not both); a replay names `event_id` or `since` (not both).
fn add_cross_field_rules(doc: &mut serde_json::Value) {
    use serde_json::json;
    let schemas = &mut doc["components"]["schemas"];
    if let Some(redeliver) = schemas.get_mut("RedeliverRequest").and_then(|s| s.as_object_mut()) {
        redeliver.insert(
            "oneOf".into(),
            json!([
                {"required": ["sequences"],
                 "properties": {"sequences": {"minItems": 1}, "all": {"const": false}}},
                {"required": ["all"],
                 "properties": {"all": {"const": true}, "sequences": {"maxItems": 0}}}
            ]),
        );
    }
    if let Some(replay) = schemas.get_mut("ReplayRequest").and_then(|s| s.as_object_mut()) {
        replay.insert(
            "oneOf".into(),
            json!([
                {"required": ["event_id"], "properties": {"event_id": {"type": "string"}}},
                {"required": ["since"], "properties": {"since": {"type": "string"}}}
            ]),
        );
    }
}

/// Every operation with a JSON body also answers 413 (over `api.body_limit_bytes`) and 415
/// (no JSON content type), with the JSON error.
fn add_body_rejections(doc: &mut serde_json::Value) {
    use serde_json::json;
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for op in item.values_mut() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let Some(responses) = op["responses"].as_object_mut() else { continue };
            for (status, what) in [
                ("413", "The request body is over the limit"),
                ("415", "The request has no JSON content type"),
            ] {
                responses.entry(status).or_insert_with(|| {
                    json!({"description": what, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
                });
            }
        }
    }
}

/// Renames `operation_id`, `operation_ref` and `request_body` inside every `links` object.
fn fix_links(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    if let Value::Object(link) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(v) = link.remove(from) {
                                link.insert(to.to_string(), v);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_links);
        }
        Value::Array(items) => items.iter_mut().for_each(fix_links),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), op));
            }
        }
        out
    }

    #[test]
    fn operation_ids_are_unique_and_create_links_to_each_operation_on_the_new_id() {
        let doc = document();
        let mut ids: Vec<&str> =
            operations(&doc).iter().map(|(_, _, op)| op["operationId"].as_str().unwrap()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate operationIds: {ids:?}");
        let links = &doc["paths"]["/v1/subscriptions"]["post"]["responses"]["201"]["links"];
        let mut targets: Vec<&str> = links
            .as_object()
            .expect("create has links")
            .values()
            .map(|l| {
                assert_eq!(l["parameters"]["id"], "$response.body#/id", "{l}");
                l["operationId"].as_str().expect("links name operationId")
            })
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            [
                "activate_subscription",
                "deactivate_subscription",
                "delete_subscription",
                "get_subscription",
                "rotate_subscription_secret",
                "update_subscription"
            ]
        );
        for t in targets {
            assert!(ids.contains(&t), "link to unknown operation {t}");
        }
    }

    #[test]
    fn ids_query_strings_and_limits_state_their_constraints() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (name, pattern) in [
            ("SubscriptionId", crate::ids::SubscriptionId::PATTERN),
            ("EventId", crate::ids::EventId::PATTERN),
            ("EventType", crate::ids::EventType::PATTERN),
            ("EventTypeFilter", crate::ids::EventTypeFilter::PATTERN),
            ("TenantId", crate::ids::TenantId::PATTERN),
        ] {
            assert_eq!(schemas[name]["pattern"], pattern, "{name}");
            assert!(schemas[name]["maxLength"].is_u64(), "{name}");
        }
        let statuses = schemas["AttemptStatus"]["enum"].as_array().unwrap().len();
        assert_eq!(statuses, crate::attempt_log::AttemptStatus::ALL.len());
        for (method, path, op) in operations(&doc) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let place = p["in"].as_str().unwrap();
                if place == "path" {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name} is not in the path"
                    );
                } else if place == "header" {
                    // The W3C trace context of a published event is the one header parameter.
                    assert!(
                        ["traceparent", "tracestate"].contains(&name),
                        "{method} {path} {name}"
                    );
                    assert_ne!(p["required"], true, "{method} {path}: {name} is optional");
                } else {
                    assert_eq!(place, "query", "{method} {path} {name}");
                    assert_ne!(p["required"], true, "{method} {path}: {name} is optional");
                }
                if name == "limit" {
                    assert!(
                        p["schema"]["minimum"].is_u64() && p["schema"]["maximum"].is_u64(),
                        "{method} {path}"
                    );
                }
            }
        }
        let id = &doc["paths"]["/v1/subscriptions/{id}"]["get"]["parameters"][0]["schema"];
        assert_eq!(id["$ref"], "#/components/schemas/SubscriptionId");
        let tenant = &schemas["CreateSubscription"]["properties"]["tenant_id"].to_string();
        assert!(tenant.contains("TenantId"), "{tenant}");
    }

    #[test]
    fn bodies_state_their_cross_field_rules_and_their_413_and_415() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["RedeliverRequest"]["oneOf"].as_array().map(Vec::len), Some(2));
        assert_eq!(schemas["ReplayRequest"]["oneOf"].as_array().map(Vec::len), Some(2));
        for (method, path, op) in operations(&doc) {
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(op["responses"].get(status).is_some(), "{method} {path}: no {status}");
                }
            }
        }
        let purge = &doc["paths"]["/v1/dlq"]["delete"]["parameters"];
        assert!(purge.as_array().unwrap().iter().all(|p| p["name"] != "limit"), "{purge}");
    }

    #[test]
    fn every_reference_resolves_to_a_component() {
        fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external reference {r}"));
            assert!(doc.pointer(pointer).is_some(), "{r} points at nothing");
        }
    }
}
