//! OpenTelemetry export: an in-test OTLP/HTTP collector (axum, decoding the protobuf) receives
//! the fan-out and attempt spans, children of the published trace, with their attributes.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::{PARENT_ID, TRACE_ID, TRACEPARENT, TRACESTATE, publish_with_trace, trace_of};
use crate::harness::eventually;
use crate::harness::receiver::Reply;
use crate::world::{WAIT, World};

/// Spans received, each with "<service.name of its resource> <x-api-key of its export>".
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// Serves `POST /v1/traces` on a free port; returns its base URL and what it received.
async fn collector() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new().route("/v1/traces", post(export)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn export(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> Vec<u8> {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("-");
    let request = ExportTraceServiceRequest::decode(body).expect("an otlp protobuf export");
    let mut received = received.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| string(kv.value.as_ref()?.value.as_ref()?))
            .unwrap_or_default();
        let service = format!("{service} {key}");
        for scope in resource.scope_spans {
            received.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

/// An attribute of a span, as text.
fn attr(span: &Span, key: &str) -> Option<String> {
    let kv = span.attributes.iter().find(|kv| kv.key == key)?;
    string(kv.value.as_ref()?.value.as_ref()?)
}

#[tokio::test]
async fn fanout_and_attempt_spans_are_exported_as_children_of_the_published_trace() {
    let w = World::start().await;
    let sub = w.subscribe("/otel", &[], None).await;
    w.receiver.script("/otel", vec![Reply::Status(500)]);
    let (url, received) = collector().await;
    let toml = format!(
        "{}[telemetry]\notlp_endpoint = \"{url}\"\nservice_name = \"hookline-test\"\n\
         otlp_headers = {{ x-api-key = \"k\" }}\n",
        w.toml("\"0s\", \"200ms\"")
    );
    let app = w.start_app(hookline::config::Config::with_overrides(&toml).unwrap()).await;
    publish_with_trace(&w, "evt_otel", TRACEPARENT, TRACESTATE).await;
    let reqs = w.receiver.wait_for_requests("/otel", 2, WAIT).await;
    // Shutdown flushes the queued spans.
    app.stop().await;
    let spans = eventually(WAIT, "a fan-out and two attempt spans", || async {
        let spans = received.lock().unwrap().clone();
        let n = |name: &str| spans.iter().filter(|(_, s)| s.name == name).count();
        (n("hookline.fanout") >= 1 && n("hookline.attempt") >= 2).then_some(spans)
    })
    .await;
    assert!(spans.iter().all(|(service, _)| service == "hookline-test k"), "service and header");
    let (_, fanout) = spans.iter().find(|(_, s)| s.name == "hookline.fanout").unwrap();
    assert_eq!(hex::encode(&fanout.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&fanout.parent_span_id), PARENT_ID, "child of the publisher's span");
    assert_eq!(attr(fanout, "hookline.event_id").as_deref(), Some("evt_otel"));
    assert_eq!(attr(fanout, "hookline.event_type").as_deref(), Some("order.created"));
    assert_eq!(attr(fanout, "hookline.matched_subscriptions").as_deref(), Some("1"));
    let mut attempts: Vec<&Span> =
        spans.iter().map(|(_, s)| s).filter(|s| s.name == "hookline.attempt").collect();
    attempts.sort_by_key(|s| attr(s, "hookline.attempt"));
    for (n, (span, req)) in attempts.iter().zip(&reqs).enumerate() {
        assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
        assert_eq!(span.parent_span_id, fanout.span_id, "attempts are children of the fan-out");
        assert_eq!(trace_of(req).1, hex::encode(&span.span_id), "the request carries its span id");
        assert_eq!(attr(span, "hookline.subscription_id").as_deref(), Some(sub.id.as_str()));
        assert_eq!(attr(span, "hookline.attempt"), Some((n + 1).to_string()));
        assert!(attr(span, "hookline.duration_ms").is_some());
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    }
    let outcome = |s: &Span| (attr(s, "http.response.status_code"), attr(s, "hookline.outcome"));
    assert_eq!(outcome(attempts[0]), (Some("500".into()), Some("failed".into())));
    assert_eq!(outcome(attempts[1]), (Some("200".into()), Some("succeeded".into())));
}

#[tokio::test]
async fn with_export_on_an_event_without_traceparent_gets_a_fresh_trace() {
    let w = World::start().await;
    w.subscribe("/fresh", &[], None).await;
    let (url, received) = collector().await;
    let toml = format!("{}[telemetry]\notlp_endpoint = \"{url}/v1/traces\"\n", w.toml("\"0s\""));
    let app = w.start_app(hookline::config::Config::with_overrides(&toml).unwrap()).await;
    w.publish("order.created", "evt_fresh", None).await;
    let reqs = w.receiver.wait_for_requests("/fresh", 1, WAIT).await;
    let (trace_id, span_id) = trace_of(&reqs[0]);
    let spans = eventually(WAIT, "the fan-out and attempt spans", || async {
        let spans = received.lock().unwrap().clone();
        (spans.len() >= 2).then_some(spans)
    })
    .await;
    let (_, fanout) = spans.iter().find(|(_, s)| s.name == "hookline.fanout").unwrap();
    assert_eq!(hex::encode(&fanout.trace_id), trace_id, "the fan-out started the trace");
    assert!(fanout.parent_span_id.is_empty(), "a root span");
    let (_, attempt) = spans.iter().find(|(_, s)| s.name == "hookline.attempt").unwrap();
    assert_eq!(hex::encode(&attempt.span_id), span_id);
    assert_eq!(attempt.parent_span_id, fanout.span_id);
    app.stop().await;
}
