//! What endpoint owners set per subscription: the test event, custom headers, their own retry
//! schedule, payload filters, ed25519 (v1a) signatures and the CloudEvents validation
//! handshake; each end to end through the API,
//! the pipeline and the receiver.

mod ed25519;
mod filters;
mod handshake;
mod headers;
mod retry_schedule;
mod test_event;
