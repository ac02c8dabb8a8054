//! Inbox dedupe: remembers which (event, subscription) pairs an endpoint already accepted, so a
//! copy redelivered by JetStream (process died between the 2xx and the ack, or a duplicate
//! event outside the stream's window) is acked without a second POST.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{Doing, StoreError};
use crate::subjects::Names;

/// `<p>:delivered:<event_id>:<subscription_id>`, or with `:<replay_id>` appended for a replay
/// (whose point is to reach an endpoint that already has the event).
pub fn delivered_key(names: &Names, event_id: &str, subscription_id: &str, replay: Option<&str>) -> String {
    match replay {
        None => names.key(&format!("delivered:{event_id}:{subscription_id}")),
        Some(r) => names.key(&format!("delivered:{event_id}:{subscription_id}:{r}")),
    }
}

/// Whether the pair was already delivered.
pub async fn was_delivered(
    conn: &mut ConnectionManager,
    names: &Names,
    event_id: &str,
    subscription_id: &str,
    replay: Option<&str>,
) -> Result<bool, StoreError> {
    conn.exists(delivered_key(names, event_id, subscription_id, replay))
        .await
        .doing(|| format!("checking inbox for event {event_id} subscription {subscription_id}"))
}

/// Records a 2xx for the pair (`SET NX EX`).
pub async fn mark_delivered(
    conn: &mut ConnectionManager,
    names: &Names,
    event_id: &str,
    subscription_id: &str,
    replay: Option<&str>,
    ttl: Duration,
) -> Result<(), StoreError> {
    let opts = redis::SetOptions::default()
        .conditional_set(redis::ExistenceCheck::NX)
        .with_expiration(redis::SetExpiry::EX(ttl.as_secs().max(1)));
    let _: Option<String> = conn
        .set_options(delivered_key(names, event_id, subscription_id, replay), 1, opts)
        .await
        .doing(|| format!("marking event {event_id} delivered to subscription {subscription_id}"))?;
    Ok(())
}
