//! Keeping Redis in step with the bucket: every process watches the bucket and applies each
//! change to Redis (idempotent by revision), and rebuilds the index from the bucket when Redis
//! lost it (the marker `<p>:{subs}:rev` is missing) or went back in time (the marker is older
//! than a revision this process saw applied). Until the index is complete, [`SyncState::ready`]
//! is false and fan-out leaves events in JetStream.
//!
//! Also the upgrade path: a Redis holding today's layout of earlier versions (subscriptions only
//! in Redis) is imported into the bucket by [`SubscriptionStore::import_legacy`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::codec::{decode, from_entry, to_value};
use super::{SubscriptionError, SubscriptionStore};
use crate::store::{Doing, StoreError};

/// How often the marker is checked between changes.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a rebuild may hold its lock (another process takes over after that).
const LOCK_MS: u64 = 120_000;

/// The index's state in this process, shared with fan-out, `/readyz` and `/metrics`.
#[derive(Default)]
pub struct SyncState {
    ready: AtomicBool,
    /// The newest bucket revision this process applied to Redis.
    confirmed: AtomicU64,
    rebuilds: AtomicU64,
    wake: tokio::sync::Notify,
}

impl SyncState {
    /// The Redis index is complete (fan-out may match events against it).
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Rebuilds this process made.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }

    /// Whether a marker read with the index still means "complete": present and not older than
    /// what this process applied. Otherwise the keeper is woken to rebuild.
    pub fn check_marker(&self, marker: Option<u64>) -> bool {
        let ok = marker.is_some_and(|m| m >= self.confirmed.load(Ordering::Acquire));
        if !ok {
            self.wake.notify_one();
        }
        ok && self.ready()
    }

    fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// Every live entry of the bucket (puts and delete markers, the last per key) and a revision
/// the bucket had reached when they were read.
pub async fn snapshot(kv: &kv::Store) -> Result<(Vec<kv::Entry>, u64), SubscriptionError> {
    let err = |e: &dyn std::fmt::Display| {
        SubscriptionError::Bucket(format!("reading the subscriptions bucket: {e}"))
    };
    // Fresh stream info (`kv.status()` answers what was known when the handle was made).
    let mut stream = kv.stream.clone();
    let state = stream.info().await.map_err(|e| err(&e))?.state.clone();
    let mut last = state.last_sequence;
    if state.messages == 0 {
        return Ok((Vec::new(), last));
    }
    let mut watch = kv.watch_with_history(">").await.map_err(|e| err(&e))?;
    let mut entries = Vec::new();
    while let Some(entry) = watch.next().await {
        let entry = entry.map_err(|e| err(&e))?;
        last = last.max(entry.revision);
        let done = entry.delta == 0;
        entries.push(entry);
        if done {
            break;
        }
    }
    Ok((entries, last))
}

/// The keeper of one process: watches the bucket, applies, rebuilds.
pub struct Keeper {
    /// The revision to watch from once [`Self::prepare`] made the index complete.
    start: Option<u64>,
    store: SubscriptionStore,
    state: Arc<SyncState>,
    on_change: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Keeper {
    /// `on_change` is called with a subscription id after its change reached Redis (the
    /// in-process caches forget it).
    pub fn new(
        store: SubscriptionStore,
        state: Arc<SyncState>,
        on_change: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Keeper {
        Keeper { start: None, store, state, on_change }
    }

    /// Makes the index complete before the process starts its work (rebuilding it if Redis has
    /// none), so fan-out starts ready.
    pub async fn prepare(&mut self) -> Result<(), SubscriptionError> {
        let start = self.ensure_index(false).await.map_err(|r| match r {
            Round::Lost(why) | Round::Failed(why) => SubscriptionError::Bucket(why),
        })?;
        self.start = Some(start);
        self.state.set_ready(true);
        Ok(())
    }

    /// Runs until `shutdown`: a failed round (Redis or NATS away, the marker gone) marks the
    /// index not ready and starts over after a pause.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut force = false;
        loop {
            let start = self.start.take();
            let result = tokio::select! {
                () = shutdown.cancelled() => return,
                r = self.round(start, force) => r,
            };
            self.state.set_ready(false);
            match result {
                Ok(()) => return,
                Err(Round::Lost(why)) => {
                    tracing::warn!(%why, "the subscription index in redis is incomplete; rebuilding it from the bucket");
                    force = true;
                    // At once: fan-out holds every event until it is done.
                    continue;
                }
                Err(Round::Failed(e)) => {
                    tracing::warn!(error = %e, "keeping the subscription index in step failed; trying again");
                    force = false;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn round(&self, start: Option<u64>, force: bool) -> Result<(), Round> {
        let start = match start {
            Some(start) => start,
            None => self.ensure_index(force).await?,
        };
        self.state.set_ready(true);
        let mut watch = self
            .store
            .kv
            .watch_all_from_revision(start)
            .await
            .map_err(|e| Round::Failed(format!("watching the subscriptions bucket: {e}")))?;
        let mut behind_once = false;
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                entry = watch.next() => {
                    let entry = entry
                        .ok_or_else(|| Round::Failed("the bucket watch ended".into()))?
                        .map_err(|e| Round::Failed(format!("watching the subscriptions bucket: {e}")))?;
                    self.apply(&entry).await.map_err(|e| Round::Failed(e.to_string()))?;
                }
                _ = tick.tick() => {
                    behind_once = self.check(behind_once).await?;
                }
                () = self.state.wake.notified() => {
                    behind_once = self.check(behind_once).await?;
                }
            }
        }
    }

    /// Reads the marker: missing is lost at once; older than what this process applied is lost
    /// when seen twice (a writer's apply may be in flight between its two steps).
    async fn check(&self, behind_once: bool) -> Result<bool, Round> {
        let marker = self.store.marker().await.map_err(|e| Round::Failed(e.to_string()))?;
        let confirmed = self.state.confirmed.load(Ordering::Acquire);
        match marker {
            None => Err(Round::Lost(
                "the marker is missing (redis restarted empty or was flushed)".into(),
            )),
            Some(m) if m < confirmed && behind_once => Err(Round::Lost(format!(
                "the marker ({m}) is older than revision {confirmed} applied before (redis went back in time)"
            ))),
            Some(m) => Ok(m < confirmed),
        }
    }

    async fn apply(&self, entry: &kv::Entry) -> Result<(), SubscriptionError> {
        apply_entry(&self.store, entry, false).await?;
        self.state.confirmed.fetch_max(entry.revision, Ordering::AcqRel);
        (self.on_change)(&entry.key);
        Ok(())
    }

    /// The index is complete, or made so (a rebuild here, or waiting for another process's);
    /// returns the bucket revision to watch from.
    async fn ensure_index(&self, force: bool) -> Result<u64, Round> {
        let failed = |e: &dyn std::fmt::Display| Round::Failed(e.to_string());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(LOCK_MS);
        loop {
            let marker = self.store.marker().await.map_err(|e| failed(&e))?;
            if let Some(m) = marker
                && !force
            {
                return Ok(m + 1);
            }
            match self.store.rebuild_locked(&self.state).await.map_err(|e| failed(&e))? {
                Some(revision) => return Ok(revision + 1),
                None if tokio::time::Instant::now() > deadline => {
                    return Err(Round::Failed("another process's rebuild did not finish".into()));
                }
                // Another process rebuilds: wait for its marker.
                None => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    // Its rebuild serves this process too.
                    if let Some(m) = self.store.marker().await.map_err(|e| failed(&e))? {
                        return Ok(m + 1);
                    }
                }
            }
        }
    }
}

enum Round {
    /// The index is incomplete: rebuild.
    Lost(String),
    /// A backend failed: try again.
    Failed(String),
}

/// Applies one bucket entry (a put or a delete) to Redis; `force` (a rebuild) rewrites a record
/// of the same revision too.
async fn apply_entry(
    store: &SubscriptionStore,
    entry: &kv::Entry,
    force: bool,
) -> Result<(), SubscriptionError> {
    match entry.operation {
        kv::Operation::Put => match from_entry(entry, &store.secret_box) {
            Ok(sub) => store.index_put_forced(&sub, force).await?,
            Err(e) => {
                // A value hookline cannot read (written by hand?) is left out of the index, and
                // said so; the rest goes on.
                tracing::error!(subscription = %entry.key, error = %e, "a bucket entry does not decode; left out of the index");
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => {
            store.index_delete(&entry.key, entry.revision).await?
        }
    }
    Ok(())
}

/// Compare-and-delete of the rebuild lock. KEYS: lock. ARGV: token.
const UNLOCK: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0";

impl SubscriptionStore {
    /// Rebuilds the index from the bucket unless another process holds the rebuild lock
    /// (`None` then). Returns the revision the index is complete up to.
    pub async fn rebuild_locked(
        &self,
        state: &SyncState,
    ) -> Result<Option<u64>, SubscriptionError> {
        let lock = self.key("rebuilding");
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut conn = self.conn.clone();
        let got: Option<String> = redis::cmd("SET")
            .arg(&lock)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_MS)
            .query_async(&mut conn)
            .await
            .doing(|| "taking the subscription index rebuild lock".into())?;
        if got.is_none() {
            return Ok(None);
        }
        let result = self.rebuild().await;
        let _: Result<i64, _> =
            redis::Script::new(UNLOCK).key(&lock).arg(&token).invoke_async(&mut conn).await;
        let (count, revision) = result?;
        state.rebuilds.fetch_add(1, Ordering::Relaxed);
        state.confirmed.fetch_max(revision, Ordering::AcqRel);
        crate::metrics::inc("hookline_subscription_index_rebuilds_total", &[]);
        tracing::info!(
            subscriptions = count,
            revision,
            "rebuilt the subscription index in redis from the bucket"
        );
        Ok(Some(revision))
    }

    /// Clears the index and writes every subscription of the bucket into it, then the marker.
    /// Returns how many subscriptions it holds and the revision it is complete up to.
    async fn rebuild(&self) -> Result<(usize, u64), SubscriptionError> {
        self.import_legacy().await?;
        self.clear_index().await?;
        let (entries, last) = snapshot(&self.kv).await?;
        let mut count = 0;
        for entry in &entries {
            apply_entry(self, entry, true).await?;
            count += usize::from(entry.operation == kv::Operation::Put);
        }
        self.set_marker(last).await?;
        Ok((count, last))
    }

    /// Upgrade from the layout of earlier versions (every subscription only in Redis, as
    /// `<p>:sub:<id>` hashes listed in `<p>:subs`): each is created in the bucket (one that is
    /// there already is left as it is), then the old keys are removed. Returns how many were
    /// imported. Safe to run at every start and by several processes at once.
    pub async fn import_legacy(&self) -> Result<usize, SubscriptionError> {
        let mut conn = self.conn.clone();
        let list = self.names.key("subs");
        let doing = || "reading subscriptions of the earlier layout".to_string();
        let ids: Vec<String> = conn.smembers(&list).await.doing(doing)?;
        let mut imported = 0;
        for id in &ids {
            let old = self.names.key(&format!("sub:{id}"));
            let fields: Vec<(String, String)> = conn.hgetall(&old).await.doing(doing)?;
            if fields.is_empty() {
                let () = conn.srem(&list, id).await.doing(doing)?;
                continue;
            }
            let sub = decode(id, fields, &self.secret_box).map_err(SubscriptionError::Store)?;
            match self.kv.create(id, to_value(&sub, &self.secret_box)).await {
                Ok(_) => imported += 1,
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(SubscriptionError::Bucket(format!(
                        "importing subscription {id} into the bucket: {e}"
                    )));
                }
            }
            let mut pipe = redis::pipe();
            pipe.del(&old).ignore();
            for filter in sub.filters() {
                let key = match filter {
                    crate::filter::EventFilter::Exact(t) => format!("idx:type:{t}"),
                    crate::filter::EventFilter::Pattern(p) => format!("idx:pattern:{p}"),
                };
                pipe.del(self.names.key(&key)).ignore();
            }
            pipe.srem(&list, id).ignore();
            let () = pipe.query_async(&mut conn).await.doing(doing)?;
        }
        if !ids.is_empty() {
            let () = redis::pipe()
                .del(self.names.key("idx:all"))
                .ignore()
                .del(self.names.key("idx:fifo"))
                .ignore()
                .del(self.names.key("idx:patterns"))
                .ignore()
                .del(self.names.key("subs:version"))
                .ignore()
                .query_async(&mut conn)
                .await
                .doing(doing)?;
            tracing::info!(
                imported,
                found = ids.len(),
                "imported the subscriptions of the earlier redis-only layout into the bucket"
            );
        }
        Ok(imported)
    }

    /// Forces a rebuild now (`hookline admin reindex`): removes the marker, so every process's
    /// fan-out waits, and rebuilds (or waits for the rebuild another process started). Returns
    /// the number of subscriptions indexed.
    pub async fn reindex(&self) -> Result<usize, SubscriptionError> {
        let state = SyncState::default();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(LOCK_MS);
        loop {
            if self.rebuild_locked(&state).await?.is_some() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(SubscriptionError::Store(StoreError::Redis {
                    doing: "waiting for another process's rebuild".into(),
                    source: redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "rebuild lock held too long",
                    )),
                }));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut conn = self.conn.clone();
        let n: usize =
            conn.scard(self.key("all")).await.doing(|| "counting indexed subscriptions".into())?;
        Ok(n)
    }
}
