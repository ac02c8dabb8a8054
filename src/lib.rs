//! hookline: webhook delivery on NATS JetStream and Redis.
//!
//! ```text
//! publisher --(WebhookEvent JSON | CloudEvent)--> <p>.events.<type>  [<P>_EVENTS: the log]
//!   pipeline::fanout   (durable consumer; store::subscriptions index lookup)
//!   --> <p>.deliver.<subscription>                              [<P>_DELIVERIES: work queue]
//!   pipeline::deliver  (store::inbox dedupe -> pipeline::http_post signed POST)
//!       every attempt -> attempt_log: <p>.attempts.<subscription> [<P>_ATTEMPTS]
//!       2xx       -> inbox mark, ack
//!       failure   -> pipeline::retry: <p>.retry.<sub>.<event>.<n> as a message schedule
//!                    that the server fires back onto <p>.deliver.<sub> when due
//!       exhausted -> pipeline::dlq: <p>.dlq.<subscription>       [<P>_DLQ: replayable]
//! ```
//!
//! Modules in pipeline order: [`ids`] holds the typed ids and their grammar, [`config`] and
//! [`subjects`] name everything, [`topology`] creates the streams, [`ingest`] publishes events,
//! [`event`] parses them ([`cloudevents`] reads and writes them as CloudEvents), [`filter`] and [`store`] find subscriptions, [`payload_filter`] narrows
//! them by payload, [`pipeline`] moves
//! messages, [`signing`] signs (and lets Rust receivers verify), [`app`] composes the roles,
//! [`ops`] implements every operator action once, and its two front ends are [`admin_api`]
//! (HTTP, with the web console at `/console`) and [`cli`] (the command line).
//!
//! Layers: a module imports only from its own layer or the ones above it in this list, so the
//! module graph has no cycle.
//!
//! ```text
//! ids         ids (typed ids and names, their one grammar)
//! models      subjects, signing, console_link, secret_box, event, cloudevents, filter,
//!             payload_filter, attempt_record, ip_ranges, metrics, limiter, tls, trace_context
//! config      config (one file per section)
//! adapters    topology (NATS), store (Redis), egress (HTTP), attempt_log, stats, lifecycle,
//!             ingest, telemetry, otel (OpenTelemetry span export)
//! context     context: the shared handles (Ctx), built from config and the adapters
//! pipeline    pipeline: fanout -> deliver (http_post) -> retry | dlq
//! operations  ops (every operator action, once), replay
//! front ends  admin_api, cli (and app, which runs the roles)
//! ```

pub mod admin_api;
pub mod app;
pub mod attempt_log;
pub mod attempt_record;
pub mod cli;
pub mod cloudevents;
pub mod config;
pub mod console_link;
pub mod context;
pub mod egress;
pub mod event;
pub mod filter;
pub mod ids;
pub mod ingest;
pub mod ip_ranges;
pub mod lifecycle;
pub mod limiter;
pub mod metrics;
pub mod ops;
pub mod otel;
pub mod payload_filter;
pub mod pipeline;
pub mod replay;
pub mod secret_box;
pub mod signing;
pub mod stats;
pub mod store;
pub mod subjects;
pub mod telemetry;
pub mod tls;
pub mod topology;
pub mod trace_context;

pub use signing::{Secret, verify};
