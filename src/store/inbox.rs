//! Inbox dedupe: remembers which (event, subscription) pairs an endpoint already accepted, so a
//! copy redelivered by JetStream (process died between the 2xx and the ack, or a duplicate
//! event outside the stream's window) is acked without a second POST. The key is written with
//! `SET NX EX` after a 2xx, in the same round trip as the health updates
//! ([`super::health::Health::succeeded`]).
//!
//! Before its POST a copy also claims the pair ([`claim_key`], taken with the in-flight lease by
//! [`super::health::Health::admit`]): a second copy of the same delivery that arrives while the
//! first is being sent (JetStream redelivered it when `ack_wait` ran out, or a second copy made
//! across a NATS restart) is held back until the first has answered, then finds the pair in the
//! inbox. Without the claim both passed the inbox check and both POSTed.

use crate::store::RedisConn;
use redis::AsyncCommands;

use super::{Doing, StoreError};
use crate::subjects::Names;

/// `<p>:{<subscription_id>}:delivered:<event_id>`, or with `:<replay_id>` appended for a replay
/// (whose point is to reach an endpoint that already has the event). Hash-tagged by the
/// subscription: the admission script reads it with the subscription's health keys.
pub fn delivered_key(
    names: &Names,
    event_id: &str,
    subscription_id: &str,
    replay: Option<&str>,
) -> String {
    match replay {
        None => names.sub_key(subscription_id, &format!("delivered:{event_id}")),
        Some(r) => names.sub_key(subscription_id, &format!("delivered:{event_id}:{r}")),
    }
}

/// The claim on a pair while one copy of its delivery is being sent: holds that copy's lease
/// token and expires with the lease.
pub fn claim_key(inbox_key: &str) -> String {
    format!("{inbox_key}:sending")
}

/// Whether the pair was already delivered.
pub async fn was_delivered(
    conn: &mut RedisConn,
    names: &Names,
    event_id: &str,
    subscription_id: &str,
    replay: Option<&str>,
) -> Result<bool, StoreError> {
    conn.exists(delivered_key(names, event_id, subscription_id, replay))
        .await
        .doing(|| format!("checking inbox for event {event_id} subscription {subscription_id}"))
}
