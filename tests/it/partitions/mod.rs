//! Partitioned delivery (`streams.partitions = 3`): the harness (a 3-node cluster with R3
//! streams, or one server), the cluster tests in `cluster`, and here on one server: gauges and
//! stats over every partition, dead letters and replays into partitions, hookline's partition
//! function against nats-server's own `{{partition(N,1)}}` mapping, and a changed partition
//! count refused at start-up.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use hookline::app::{App, Role};
use hookline::config::Config;
use hookline::event::WebhookEvent;
use hookline::ops::{Need, Ops, RedeliverTarget, ReplayRequest, Scope};
use hookline::store::subscriptions::{
    Ordering, Subscription, SubscriptionInput, SubscriptionStore,
};
use hookline::subjects::Names;
use tokio_util::sync::CancellationToken;

use crate::harness::cluster::Cluster;
use crate::harness::nats::NatsServer;
use crate::harness::receiver::{Receiver, Reply};
use crate::harness::redis::RedisServer;
use crate::harness::{eventually_true, init, unique_prefix};
use crate::world::WAIT;

const PARTITIONS: u32 = 3;

/// The NATS side of a test: a 3-node cluster (R3 streams) or one server (R1).
enum Nats {
    Cluster(Cluster),
    Single(NatsServer),
}

impl Nats {
    fn url(&self) -> String {
        match self {
            Nats::Cluster(c) => c.url(),
            Nats::Single(s) => s.url(),
        }
    }

    async fn client(&self) -> async_nats::Client {
        match self {
            Nats::Cluster(c) => c.client().await,
            Nats::Single(s) => s.client().await,
        }
    }

    fn replicas(&self) -> usize {
        match self {
            Nats::Cluster(_) => 3,
            Nats::Single(_) => 1,
        }
    }

    /// The cluster, for killing nodes (panics on one server).
    fn cluster(&mut self) -> &mut Cluster {
        match self {
            Nats::Cluster(c) => c,
            Nats::Single(_) => panic!("this test needs the 3-node cluster"),
        }
    }
}

/// NATS, Redis, a receiver and hookline's names with three partitions.
struct Partitioned {
    nats: Nats,
    redis: RedisServer,
    receiver: Receiver,
    prefix: String,
    names: Names,
}

/// hookline (fan-out and delivery roles) running in this test process.
struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(WAIT, self.task).await.expect("hookline stops in time");
        result.expect("hookline task joins").expect("hookline returns Ok");
    }
}

impl Partitioned {
    /// On a 3-node cluster, with R3 streams.
    async fn start() -> Partitioned {
        init();
        let (cluster, redis, receiver) =
            tokio::join!(Cluster::start(), RedisServer::start(), Receiver::start());
        Self::with(Nats::Cluster(cluster), redis, receiver)
    }

    /// On one server, with R1 streams.
    async fn start_single() -> Partitioned {
        init();
        let (nats, redis, receiver) =
            tokio::join!(NatsServer::start(), RedisServer::start(), Receiver::start());
        Self::with(Nats::Single(nats), redis, receiver)
    }

    fn with(nats: Nats, redis: RedisServer, receiver: Receiver) -> Partitioned {
        let prefix = unique_prefix();
        let names = Names::new(&prefix).with_partitions(PARTITIONS);
        Partitioned { nats, redis, receiver, prefix, names }
    }

    fn config(&self, retry_schedule: &str) -> Config {
        let toml = format!(
            "[nats]\nurl = \"{}\"\n[redis]\nurl = \"{}\"\n[streams]\nprefix = \"{}\"\n\
             duplicate_window = \"30s\"\nreplicas = {}\npartitions = {PARTITIONS}\n\
             [delivery]\nrequest_timeout = \"2s\"\nack_wait = \"4s\"\nconcurrency = 32\n\
             [health]\nbreaker_failure_threshold = 0\n[retry]\nschedule = [{retry_schedule}]\njitter = 0.0\n[shutdown]\n\
             grace_period = \"5s\"\n[egress]\nallow_cidrs = [\"127.0.0.0/8\"]\n",
            self.nats.url(),
            self.redis.url(),
            self.prefix,
            self.nats.replicas(),
        );
        Config::with_overrides(&toml).expect("test config is valid")
    }

    async fn start_app(&self, config: Config) -> Running {
        self.start_roles(config, &[Role::Fanout, Role::Deliver]).await
    }

    async fn start_roles(&self, config: Config, roles: &[Role]) -> Running {
        let app = App::build(config, roles).await.expect("hookline builds");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Running { shutdown, task }
    }

    async fn store(&self) -> SubscriptionStore {
        let config = self.config("\"0s\"");
        hookline::context::subscription_store(&config).await.expect("nats and redis connect")
    }

    async fn subscribe(&self, path: &str, ordering: Ordering) -> Subscription {
        let input = SubscriptionInput {
            url: Some(self.receiver.url(path)),
            ordering: Some(ordering),
            ..Default::default()
        };
        self.store().await.create(input).await.expect("subscription is created")
    }

    async fn js(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.nats.client().await)
    }

    async fn publish(&self, event_id: &str) {
        let event = WebhookEvent {
            event_id: event_id.parse().unwrap(),
            event_type: "order.created".parse().unwrap(),
            payload: serde_json::json!({"n": event_id}),
            occurred_at: None,
            source: None,
            tenant_id: None,
            cloudevent: None,
        };
        hookline::ingest::publish_event(&self.js().await, &self.names, &event, 1 << 20)
            .await
            .expect("event published");
    }

    /// Messages left in every deliveries stream together.
    async fn deliveries_left(&self) -> u64 {
        let js = self.js().await;
        let mut left = 0;
        for name in self.names.deliveries_streams() {
            let mut stream = js.get_stream(&name).await.expect("deliveries stream exists");
            left += stream.info().await.expect("stream info").state.messages;
        }
        left
    }

    /// The subjects holding messages in one stream under `filter`.
    async fn subjects(&self, stream: &str, filter: &str) -> Vec<String> {
        let js = self.js().await;
        let Ok(stream) = js.get_stream(stream).await else { return Vec::new() };
        let Ok(subjects) = stream.info_with_subjects(filter).await else { return Vec::new() };
        subjects.filter_map(|s| async move { s.ok().map(|(subject, _)| subject) }).collect().await
    }
}

/// Creates subscriptions until one lives in each partition (ids are random; 40 tries make a
/// missing partition a ~1e-7 event), returning them partition by partition.
async fn one_per_partition(p: &Partitioned, ordering: Ordering) -> Vec<Subscription> {
    let mut found: BTreeMap<u32, Subscription> = BTreeMap::new();
    for i in 0..40 {
        let sub = p.subscribe(&format!("/{ordering:?}-{i}"), ordering).await;
        found.entry(p.names.partition_of(&sub.id)).or_insert(sub);
        if found.len() == PARTITIONS as usize {
            return found.into_values().collect();
        }
    }
    panic!("40 subscriptions did not cover {PARTITIONS} partitions: {:?}", found.keys());
}

/// The receiver path a subscription posts to.
fn path_of(p: &Partitioned, sub: &Subscription) -> String {
    let port = format!(":{}", p.receiver.port());
    sub.url.split_once(&port).map(|(_, path)| path.to_string()).expect("a receiver url")
}

mod cluster;

#[tokio::test]
async fn backlog_gauges_and_subscription_stats_read_every_partition() {
    let p = Partitioned::start_single().await;
    let subs = one_per_partition(&p, Ordering::Unordered).await;
    let all = p.store().await.list().await.expect("subscriptions list");
    // No hookline running: a replay of a time range queues one delivery per subscription in
    // its partition (straight to `<p>.deliver.<k>.<sub>`), and nothing consumes them.
    let ops = Ops::connect(p.config("\"0s\""), Need::Everything).await.expect("ops connect");
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    p.publish("evt_b0").await;
    let replay = ReplayRequest {
        event_id: None,
        since: Some(since),
        until: None,
        event_types: Vec::new(),
        subscription_id: None,
    };
    let expected = all.len() as u64;
    assert_eq!(ops.replay(&Scope::Admin, replay).await.expect("replay"), expected);
    assert_eq!(p.deliveries_left().await, expected);
    let gauges = ops.gauges().await.expect("gauges over every partition");
    assert_eq!(gauges.deliver_pending, expected);
    let backlog: BTreeMap<String, u64> = gauges.backlog.into_iter().collect();
    for sub in &all {
        assert_eq!(backlog.get(&sub.id), Some(&1), "backlog of {}", sub.id);
    }
    for sub in &subs {
        let id = sub.id.parse().expect("subscription id");
        let stats = ops.subscription_stats(&Scope::Admin, &id).await.expect("stats");
        assert_eq!(stats.backlog, 1, "stats backlog of {}", sub.id);
    }
}

#[tokio::test]
async fn dead_letters_redelivered_and_events_replayed_reach_subscriptions_in_every_partition() {
    let p = Partitioned::start_single().await;
    one_per_partition(&p, Ordering::Unordered).await;
    let all = p.store().await.list().await.expect("subscriptions list");
    for sub in &all {
        p.receiver.set_default(&path_of(&p, sub), Reply::Status(500));
    }
    // One attempt, then the DLQ.
    let app = p.start_app(p.config("\"0s\"")).await;
    p.publish("evt_d0").await;
    let ops = Ops::connect(p.config("\"0s\""), Need::Everything).await.expect("ops connect");
    eventually_true(WAIT, "every subscription's delivery dead-lettered", || async {
        ops.dlq_list(&Scope::Admin, None, 100).await.map(|e| e.len()).unwrap_or(0) == all.len()
    })
    .await;
    for sub in &all {
        p.receiver.set_default(&path_of(&p, sub), Reply::Status(200));
    }
    let redelivered = ops.dlq_redeliver(&Scope::Admin, RedeliverTarget::All(None)).await.unwrap();
    assert!(redelivered.failed.is_empty(), "{:?}", redelivered.failed);
    eventually_true(WAIT, "every dead letter redelivered", || async {
        all.iter().all(|s| p.receiver.count(&path_of(&p, s)) == 2)
    })
    .await;
    let replay = ReplayRequest {
        event_id: Some("evt_d0".parse().unwrap()),
        since: None,
        until: None,
        event_types: Vec::new(),
        subscription_id: None,
    };
    assert_eq!(ops.replay(&Scope::Admin, replay).await.expect("replay"), all.len() as u64);
    eventually_true(WAIT, "the replay delivered to every subscription", || async {
        all.iter().all(|s| p.receiver.count(&path_of(&p, s)) == 3)
    })
    .await;
    eventually_true(WAIT, "the deliveries streams drained", || async {
        p.deliveries_left().await == 0
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn partition_of_a_subscription_agrees_with_the_server_partition_mapping() {
    init();
    let nats = NatsServer::start().await;
    let js = nats.jetstream().await;
    let prefix = unique_prefix();
    let names = Names::new(&prefix).with_partitions(7);
    // nats-server maps `<p>.deliver.<sub>` to `<p>.deliver.<k>.<sub>` itself.
    let config = async_nats::jetstream::stream::Config {
        name: format!("{}_MAPPED", prefix.to_uppercase().replace('-', "_")),
        subjects: vec![format!("{prefix}.deliver.*")],
        subject_transform: Some(async_nats::jetstream::stream::SubjectTransform {
            source: format!("{prefix}.deliver.*"),
            destination: format!("{prefix}.deliver.{{{{partition(7,1)}}}}.{{{{wildcard(1)}}}}"),
        }),
        ..Default::default()
    };
    let stream = js.create_stream(config).await.expect("stream with a partition transform");
    let ids: Vec<String> = (0..64).map(|i| format!("sub_{i:x}{}", "z".repeat(i % 5))).collect();
    for id in &ids {
        js.publish(format!("{prefix}.deliver.{id}"), "x".into()).await.unwrap().await.unwrap();
    }
    let stored: BTreeSet<String> = stream
        .info_with_subjects(format!("{prefix}.deliver.>"))
        .await
        .unwrap()
        .filter_map(|s| async move { s.ok().map(|(subject, _)| subject) })
        .collect()
        .await;
    let ours: BTreeSet<String> = ids.iter().map(|id| names.deliver(id)).collect();
    assert_eq!(stored, ours);
}

#[tokio::test]
async fn a_changed_partition_count_is_refused_naming_the_key() {
    init();
    let nats = NatsServer::start().await;
    let redis = RedisServer::start().await;
    let prefix = unique_prefix();
    let config = |partitions: u32| {
        Config::with_overrides(&format!(
            "[nats]\nurl = \"{}\"\n[redis]\nurl = \"{}\"\n[streams]\nprefix = \"{prefix}\"\n\
             partitions = {partitions}\n",
            nats.url(),
            redis.url()
        ))
        .expect("test config is valid")
    };
    let roles = [Role::Fanout, Role::Deliver];
    drop(App::build(config(3), &roles).await.expect("a fresh deployment with 3 partitions"));
    drop(App::build(config(3), &roles).await.expect("the same count again"));
    for changed in [1, 2, 4] {
        let err = App::build(config(changed), &roles).await.err().expect("a changed count");
        let text = format!("{err:#}");
        assert!(text.contains("streams.partitions") && text.contains("with 3"), "{text}");
    }
    let unpartitioned = unique_prefix();
    let names = Names::new(&unpartitioned);
    let mut one = config(1);
    one.streams.prefix = unpartitioned.clone();
    drop(App::build(one.clone(), &roles).await.expect("a fresh deployment with 1 partition"));
    let js = nats.jetstream().await;
    assert!(js.get_stream(names.deliveries_stream()).await.is_ok(), "<P>_DELIVERIES as before");
    let mut three = one;
    three.streams.partitions = 3;
    let err = App::build(three, &roles).await.err().expect("1 -> 3 is refused");
    assert!(format!("{err:#}").contains("streams.partitions is 3"), "{err:#}");
}
