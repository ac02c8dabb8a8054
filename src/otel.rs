//! OpenTelemetry span export: a span per fan-out and per delivery attempt, children of the
//! event's W3C trace context ([`crate::trace_context`]), exported over OTLP/HTTP (protobuf) to
//! `telemetry.otlp_endpoint`.
//!
//! Off (the default) it is an empty handle: no provider, no span, no allocation; `start` returns
//! `None` after one branch. On, spans are built with the OpenTelemetry API directly rather than
//! through `tracing` spans: a span's parent comes from a message header, not from the task's
//! current span, and the pipeline's `tracing` spans stay debug-level (an enabled one costs CPU
//! on every message). Ending a span only queues it (`try_send`); a full queue drops spans, never
//! waits, so export never holds up a delivery. The batch is sent by a task on the process's
//! Tokio runtime; [`Otel::shutdown`] flushes what is queued.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracer, SdkTracerProvider};

use crate::config::TelemetryConfig;
use crate::trace_context::TraceContext;

/// Spans waiting for export at most; more are dropped (and counted by the SDK's log).
const MAX_QUEUE: usize = 8192;
/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a partial batch is sent.
const EXPORT_EVERY: Duration = Duration::from_secs(1);

/// The exporter handle, cheap to clone; empty when export is off.
#[derive(Clone, Default)]
pub struct Otel(Option<Arc<Exporter>>);

struct Exporter {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// A span being recorded; ended (and queued for export) when dropped or by [`OtelSpan::end`].
pub struct OtelSpan {
    span: opentelemetry_sdk::trace::Span,
    /// The context its children (and the webhook request) carry.
    context: TraceContext,
}

/// What the span is, in OpenTelemetry's terms.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Taking a message (the fan-out of an event).
    Consumer,
    /// An outgoing request (a webhook attempt).
    Client,
    /// Neither: a delivery's own root when it came without a trace context.
    Internal,
}

impl Otel {
    /// Starts the exporter when `telemetry.otlp_endpoint` is set (inside a Tokio runtime: the
    /// batch task is spawned on it); an empty handle otherwise.
    pub fn start(config: &TelemetryConfig) -> anyhow::Result<Otel> {
        let Some(url) = config.traces_url() else { return Ok(Otel::default()) };
        let headers: HashMap<String, String> =
            config.otlp_headers.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        let http = reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(http)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .with_headers(headers)
            .build()?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUE)
            .with_scheduled_delay(EXPORT_EVERY)
            .build();
        let processor =
            opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                exporter,
                opentelemetry_sdk::runtime::Tokio,
            )
            .with_batch_config(batch)
            .build();
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("hookline");
        tracing::info!(url = %crate::config::redacted_url(&url), "exporting spans over otlp/http");
        Ok(Otel(Some(Arc::new(Exporter { provider, tracer }))))
    }

    /// Whether spans are exported.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Starts span `name` as a child of `parent` (a new trace when `None`); `None` when export
    /// is off.
    pub fn span(
        &self,
        name: &'static str,
        kind: Kind,
        parent: Option<&TraceContext>,
    ) -> Option<OtelSpan> {
        let exporter = self.0.as_ref()?;
        let cx = match parent {
            Some(p) => Context::new().with_remote_span_context(span_context(p)),
            None => Context::new(),
        };
        let kind = match kind {
            Kind::Consumer => SpanKind::Consumer,
            Kind::Client => SpanKind::Client,
            Kind::Internal => SpanKind::Internal,
        };
        let builder = exporter.tracer.span_builder(name).with_kind(kind);
        let span = exporter.tracer.build_with_context(builder, &cx);
        let sc = span.span_context();
        let context = TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            parent_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
            state: parent.and_then(|p| p.state.clone()),
        };
        Some(OtelSpan { span, context })
    }

    /// Sends every queued span (waits at most for one export); later spans are not exported.
    pub async fn shutdown(&self) {
        let Some(exporter) = self.0.clone() else { return };
        // The SDK's shutdown blocks on the batch task, which runs on this runtime.
        let done = tokio::task::spawn_blocking(move || exporter.provider.shutdown()).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not flush the last spans"),
            Err(e) => tracing::warn!(error = %e, "could not flush the last spans"),
        }
    }
}

impl OtelSpan {
    /// The trace context of this span's children.
    pub fn context(&self) -> &TraceContext {
        &self.context
    }

    /// Sets a string attribute.
    pub fn set_str(&mut self, key: &'static str, value: impl Into<String>) {
        self.span.set_attribute(KeyValue::new(key, value.into()));
    }

    /// Sets an integer attribute.
    pub fn set_int(&mut self, key: &'static str, value: i64) {
        self.span.set_attribute(KeyValue::new(key, value));
    }

    /// Marks the span failed with `message`.
    pub fn fail(&mut self, message: impl Into<String>) {
        self.span.set_status(Status::error(message.into()));
    }

    /// Ends the span now (dropping it does the same).
    pub fn end(mut self) {
        self.span.end();
    }
}

/// The remote parent of a span, from the carried context.
fn span_context(p: &TraceContext) -> SpanContext {
    let state = p.state.as_deref().and_then(|s| TraceState::from_str(s).ok()).unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(p.trace_id),
        SpanId::from_bytes(p.parent_id),
        TraceFlags::new(p.flags),
        true,
        state,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_handle_makes_no_spans() {
        let otel = Otel::default();
        assert!(!otel.is_on());
        assert!(otel.span("x", Kind::Client, Some(&TraceContext::fresh())).is_none());
    }
}
