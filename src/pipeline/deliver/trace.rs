//! The trace context of an attempt: the span id its request carries (a new one per attempt,
//! the trace id of the delivery) and, with export on, its span with the attempt's attributes.

use super::Job;
use crate::context::Ctx;
use crate::otel::{Kind, OtelSpan};
use crate::pipeline::headers::AttemptState;
use crate::pipeline::http_post::Outcome;
use crate::trace_context::{TraceContext, new_span_id};

/// With export on, a delivery that came without a trace context (a replay of an event
/// published without one, a delivery queued before export was turned on) gets a new trace,
/// rooted in a span of its own; its retries and DLQ entry carry that trace on. With export off
/// no trace is invented.
pub(super) fn ensure_trace(ctx: &Ctx, state: &mut AttemptState, event_id: &str, sub_id: &str) {
    if state.trace.is_some() {
        return;
    }
    if let Some(mut root) = ctx.otel.span("hookline.delivery", Kind::Internal, None) {
        root.set_str("hookline.event_id", event_id);
        root.set_str("hookline.subscription_id", sub_id);
        state.trace = Some(root.context().clone());
        root.end();
    }
}

impl Job<'_> {
    /// The span of the attempt about to be made (export on) and the context its request
    /// carries: the delivery's trace with a new span id; `None` without a trace context.
    pub(super) fn attempt_trace(&self) -> (Option<OtelSpan>, Option<TraceContext>) {
        let parent = self.state.trace.as_ref();
        match self.ctx.otel.span("hookline.attempt", Kind::Client, parent) {
            Some(mut span) => {
                span.set_str("hookline.event_id", self.delivery.event.event_id.as_str());
                span.set_str("hookline.subscription_id", self.delivery.subscription_id.as_str());
                span.set_int("hookline.attempt", i64::from(self.state.attempt));
                let context = span.context().clone();
                (Some(span), Some(context))
            }
            None => (None, parent.map(|p| p.child(new_span_id()))),
        }
    }
}

/// Records what the attempt came to and ends its span.
pub(super) fn end_attempt(span: Option<OtelSpan>, outcome: &Outcome) {
    let Some(mut span) = span else { return };
    let (result, duration) = match outcome {
        Outcome::Delivered { duration, .. } => ("succeeded", duration),
        Outcome::Failed { kind, duration, error, .. } => {
            span.set_str("hookline.failure_kind", kind.as_str());
            span.fail(error.clone());
            ("failed", duration)
        }
    };
    if let Some(status) = outcome.status() {
        span.set_int("http.response.status_code", i64::from(status));
    }
    span.set_int("hookline.duration_ms", duration.as_millis() as i64);
    span.set_str("hookline.outcome", result);
    span.end();
}
