//! hookline: webhook delivery on NATS JetStream and Redis.
//!
//! ```text
//! publisher --(WebhookEvent JSON)--> <p>.events.<type>          [<P>_EVENTS: the log]
//!   pipeline::fanout   (durable consumer; store::subscriptions index lookup)
//!   --> <p>.deliver.<subscription>                              [<P>_DELIVERIES: work queue]
//!   pipeline::deliver  (store::inbox dedupe -> pipeline::attempt signed POST)
//!       2xx       -> inbox mark, ack
//!       failure   -> pipeline::retry: <p>.retry.<sub>.<event>.<n> as a message schedule
//!                    that the server fires back onto <p>.deliver.<sub> when due
//!       exhausted -> pipeline::dlq: <p>.dlq.<subscription>       [<P>_DLQ: replayable]
//! ```
//!
//! Modules in pipeline order: [`ids`] holds the typed ids and their grammar, [`config`] and
//! [`subjects`] name everything, [`topology`] creates the streams, [`ingest`] publishes events,
//! [`event`] parses them, [`filter`] and [`store`] find subscriptions, [`pipeline`] moves
//! messages, [`signing`] signs (and lets Rust receivers verify), [`app`] composes the roles,
//! [`ops`] implements every operator action once, and its two front ends are [`admin_api`]
//! (HTTP) and [`cli`] (the command line).

pub mod admin_api;
pub mod app;
pub mod attempts;
pub mod cli;
pub mod config;
pub mod context;
pub mod egress;
pub mod event;
pub mod filter;
pub mod ids;
pub mod ingest;
pub mod lifecycle;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod replay;
pub mod signing;
pub mod stats;
pub mod store;
pub mod subjects;
pub mod telemetry;
pub mod topology;

pub use signing::{Secret, verify};
