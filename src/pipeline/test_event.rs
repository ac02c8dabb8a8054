//! The test event of a subscription (`POST /v1/subscriptions/{id}/test`): one synthetic
//! `webhook.test` delivery, signed and POSTed exactly as a real attempt is (same body format,
//! signatures, custom headers, egress policy), whose outcome is answered to the caller.
//!
//! Invariants: the event-type and payload filters do not apply (the owner asked for it); the
//! attempt is made once, in the caller's request, and never enters the deliveries stream, so it
//! is never retried and never dead-lettered; it is recorded in the attempt log with `test`
//! set (and left out of the delivery statistics).

use serde::Serialize;
use time::OffsetDateTime;

use super::http_post::{self, Outcome};
use crate::attempt_record::{AttemptRecord, AttemptStatus};
use crate::context::Ctx;
use crate::event::{Delivery, WebhookEvent};
use crate::ids::{EventId, EventType, SubscriptionId};
use crate::store::subscriptions::Subscription;

/// The event type of every test event.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// What the one attempt of a test event came to.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    /// The synthetic event's id (its attempt-log record carries it).
    #[schema(value_type = crate::ids::EventId)]
    pub event_id: String,
    /// Whether the endpoint answered 2xx.
    pub delivered: bool,
    /// The HTTP status, if a response came.
    pub status: Option<u16>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// The start of the response body.
    pub response_body: String,
    /// Why it failed (none when delivered).
    pub error: Option<String>,
}

/// The default payload of a test event.
pub fn default_payload(sub: &Subscription) -> serde_json::Value {
    serde_json::json!({"test": true, "subscription_id": sub.id})
}

/// Sends one `webhook.test` event with `payload` to `sub` and records the attempt.
pub async fn send(ctx: &Ctx, sub: &Subscription, payload: serde_json::Value) -> TestOutcome {
    let now = OffsetDateTime::now_utc();
    let delivery = Delivery {
        event: WebhookEvent {
            event_id: EventId::generate(),
            event_type: EventType::parse(TEST_EVENT_TYPE).expect("webhook.test is an event type"),
            payload,
            occurred_at: Some(now),
            source: None,
            tenant_id: None,
            cloudevent: None,
        },
        subscription_id: SubscriptionId::parse(&sub.id).expect("a stored subscription id"),
    };
    let outcome = http_post::post(&ctx.http, &ctx.config.delivery, sub, &delivery, None).await;
    let (result, kind) = match outcome {
        Outcome::Delivered { status, duration, response_body } => (
            TestOutcome {
                event_id: delivery.event.event_id.to_string(),
                delivered: true,
                status: Some(status),
                duration_ms: duration.as_millis() as u64,
                response_body,
                error: None,
            },
            None,
        ),
        Outcome::Failed { status, kind, error, duration, response_body, .. } => (
            TestOutcome {
                event_id: delivery.event.event_id.to_string(),
                delivered: false,
                status,
                duration_ms: duration.as_millis() as u64,
                response_body,
                error: Some(error),
            },
            Some(kind),
        ),
    };
    ctx.attempts
        .record(AttemptRecord {
            attempt_id: format!("att_{}", uuid::Uuid::now_v7().simple()),
            subscription_id: sub.id.clone(),
            event_id: result.event_id.clone(),
            event_type: TEST_EVENT_TYPE.to_string(),
            tenant_id: sub.tenant_id.clone(),
            attempt: 1,
            status: if result.delivered { AttemptStatus::Succeeded } else { AttemptStatus::Failed },
            http_status: result.status,
            duration_ms: result.duration_ms,
            error: result.error.clone(),
            error_kind: kind,
            response_body: Some(result.response_body.clone()).filter(|b| !b.is_empty()),
            next_retry_at: None,
            at: now,
            test: true,
        })
        .await;
    result
}
