//! The test event of a subscription: one synthetic, signed `webhook.test` delivery made in the
//! caller's request, its outcome answered (see [`crate::pipeline::test_event`]).

use super::{Ops, OpsError, Scope};
use crate::ids::SubscriptionId;
use crate::pipeline::test_event::{self, TestOutcome};

/// Largest custom test payload, serialized.
const MAX_TEST_PAYLOAD: usize = 64 * 1024;

impl Ops {
    /// Sends a test event to a subscription the scope sees (active or not: the owner asked for
    /// it) with `payload` (default `{"test": true, "subscription_id": ...}`), and returns how
    /// that one attempt went. Never retried, never dead-lettered.
    pub async fn test_subscription(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
        payload: Option<serde_json::Value>,
    ) -> Result<TestOutcome, OpsError> {
        let sub = self.get_subscription(scope, id).await?;
        let payload = payload.unwrap_or_else(|| test_event::default_payload(&sub));
        let size = serde_json::to_vec(&payload).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_TEST_PAYLOAD {
            return Err(OpsError::invalid(
                "payload",
                format!("a test payload must be at most {MAX_TEST_PAYLOAD} bytes"),
            ));
        }
        let ctx = self.ctx()?;
        let outcome = test_event::send(ctx, &sub, payload).await;
        // The record is written before the answer: the caller (or a one-shot command about to
        // exit) finds it in the attempt log at once.
        ctx.attempts.flush().await;
        Ok(outcome)
    }
}
