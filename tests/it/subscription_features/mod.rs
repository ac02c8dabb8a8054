//! What endpoint owners set per subscription: the test event, custom headers, their own retry
//! schedule, payload filters and ed25519 (v1a) signatures; each end to end through the API,
//! the pipeline and the receiver.

mod ed25519;
mod filters;
mod headers;
mod retry_schedule;
mod test_event;
