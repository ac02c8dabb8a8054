//! Where each event is in the log: `<p>:event:<event_id>` -> its events-stream sequence,
//! written by the fan-out (riding along with its subscription lookup) and read by replay-by-id.
//! Expires with the events stream's retention.

use std::time::Duration;

use crate::subjects::Names;

/// `<p>:event:<event_id>`.
pub fn key(names: &Names, event_id: &str) -> String {
    names.key(&format!("event:{event_id}"))
}

/// The command recording that `event_id` is at `seq`, for as long as the log keeps it
/// (`retention`).
pub fn set_cmd(names: &Names, event_id: &str, seq: u64, retention: Duration) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key(names, event_id)).arg(seq).arg("EX").arg(retention.as_secs().max(1));
    cmd
}
