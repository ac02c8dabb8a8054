//! `hookline subscriptions test`: one signed `webhook.test` attempt made now, its outcome
//! printed (exit 1 when it was not delivered).

use super::Output;
use crate::config::Config;
use crate::ids::SubscriptionId;
use crate::ops::{Need, Ops, Scope};

/// A test attempt that was not delivered: exit code 1 after its outcome is printed.
#[derive(Debug, thiserror::Error)]
#[error("test event not delivered")]
pub struct NotDelivered;

/// `subscriptions test`: the one attempt, printed; exit 1 when it was not delivered.
pub(super) async fn run_test(
    config: Config,
    id: &SubscriptionId,
    payload: Option<serde_json::Value>,
    output: Output,
) -> anyhow::Result<()> {
    let ops = Ops::connect(config, Need::Everything).await?;
    let outcome = ops.test_subscription(&Scope::Admin, id, payload).await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string(&outcome)?),
        Output::Text => {
            println!("event id:    {}", outcome.event_id);
            println!("delivered:   {}", outcome.delivered);
            let status = outcome.status.map_or("(no response)".to_string(), |s| s.to_string());
            println!("status:      {status}");
            println!("duration:    {} ms", outcome.duration_ms);
            if let Some(error) = &outcome.error {
                println!("error:       {error}");
            }
            if !outcome.response_body.is_empty() {
                println!("response:    {}", outcome.response_body);
            }
        }
    }
    if outcome.delivered { Ok(()) } else { Err(NotDelivered.into()) }
}
