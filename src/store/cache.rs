//! The in-process subscription cache of the delivery path, exact rather than "fresh enough".
//!
//! Subscriptions are cached with the bucket revision they were read at; a delivery checks it
//! inside the admission script of [`super::health::Health::admit`] against the subscription's
//! revision key in Redis and reads again when Redis has a newer one. Fan-out matches are filed
//! under the token `<p>:{subs}:version`, which every change replaces, and checked with the
//! marker in a round trip fan-out makes anyway. The bucket watch of [`super::subscriptions::sync`]
//! also drops an entry as soon as its change reached Redis. So a change is seen by every process
//! at its next event or delivery, and a steady-state delivery costs no subscription read at all.
//!
//! Data is read *after* the token it is filed under (same pipeline, in order), so it is never
//! older than its token; a write between the two only causes one needless refetch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Doing;
use super::subscriptions::sync::SyncState;
use super::subscriptions::{
    Subscription, SubscriptionError, SubscriptionStore, marker_key, version_key,
};
use crate::store::RedisConn;
use crate::subjects::Names;

/// Entries per map at most; a full map is emptied (a cache, not a second store).
const MAX_ENTRIES: usize = 10_000;

type MatchKey = (String, Option<String>);

#[derive(Default)]
struct State {
    subs: HashMap<String, Arc<Subscription>>,
    /// The token the matches were read at.
    version: Option<Arc<str>>,
    matches: HashMap<MatchKey, Arc<[Arc<Subscription>]>>,
}

/// Subscriptions and fan-out matches of one prefix, shared by the process's handlers.
pub struct SubscriptionCache {
    store: SubscriptionStore,
    conn: RedisConn,
    version_key: String,
    marker_key: String,
    sync: Arc<SyncState>,
    state: Mutex<State>,
}

impl SubscriptionCache {
    pub fn new(
        store: SubscriptionStore,
        conn: RedisConn,
        names: &Names,
        sync: Arc<SyncState>,
    ) -> SubscriptionCache {
        SubscriptionCache {
            store,
            conn,
            version_key: version_key(names),
            marker_key: marker_key(names),
            sync,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The subscription with the revision it was read at (cached, or read now: from Redis, or
    /// from the bucket when Redis does not have it, e.g. while the index is rebuilt). The caller
    /// checks the revision before acting on the data, and calls [`Self::forget`] when Redis has
    /// a newer one. `fresh` skips the cache (for decisions no later check covers).
    pub async fn subscription(
        &self,
        id: &str,
        fresh: bool,
    ) -> Result<(Option<Arc<Subscription>>, Arc<str>), SubscriptionError> {
        if !fresh && let Some(sub) = self.state().subs.get(id) {
            return Ok((Some(sub.clone()), sub.revision.to_string().into()));
        }
        let sub = match self.store.get_indexed(id).await? {
            Some(sub) => Some(sub),
            None => self.store.get(id).await?,
        };
        let sub = sub.map(Arc::new);
        let revision: Arc<str> = sub.as_ref().map_or(0, |s| s.revision).to_string().into();
        if let Some(sub) = &sub {
            let mut state = self.state();
            if state.subs.len() >= MAX_ENTRIES {
                state.subs.clear();
            }
            state.subs.insert(id.to_string(), sub.clone());
        }
        Ok((sub, revision))
    }

    /// The subscription changed: drop its copy and every match.
    pub fn forget(&self, id: &str) {
        let mut state = self.state();
        state.subs.remove(id);
        state.matches.clear();
        state.version = None;
    }

    /// Active subscriptions matching the event (see [`SubscriptionStore::matching`]), checked
    /// against the token in one round trip that also runs `also` (its reply ignored).
    /// [`SubscriptionError::IndexNotReady`] while the Redis index is incomplete.
    pub async fn matching(
        &self,
        event_type: &str,
        tenant: Option<&str>,
        also: Option<redis::Cmd>,
    ) -> Result<Arc<[Arc<Subscription>]>, SubscriptionError> {
        if !self.sync.ready() {
            return Err(SubscriptionError::IndexNotReady);
        }
        let key: MatchKey = (event_type.to_string(), tenant.map(str::to_string));
        let cached = {
            let state = self.state();
            state.version.clone().zip(state.matches.get(&key).cloned())
        };
        let mut also = also;
        if let Some((version, subs)) = cached {
            let mut pipe = redis::pipe();
            // One MGET (both keys share the `{subs}` slot): a command less per event.
            pipe.mget(&[&self.version_key, &self.marker_key]);
            if let Some(cmd) = also.take() {
                pipe.add_command(cmd).ignore();
            }
            let ((current, marker),): ((Option<String>, Option<u64>),) =
                pipe.query_async(&mut self.conn.clone()).await.doing(|| {
                    format!("checking the subscriptions' version for event type {event_type}")
                })?;
            if !self.sync.check_marker(marker) {
                return Err(SubscriptionError::IndexNotReady);
            }
            if current.as_deref().unwrap_or_default() == &*version {
                return Ok(subs);
            }
        }
        let lookup = self.store.lookup(event_type, tenant, also).await?;
        if !self.sync.check_marker(lookup.marker) {
            return Err(SubscriptionError::IndexNotReady);
        }
        let subs: Arc<[Arc<Subscription>]> =
            lookup.subscriptions.into_iter().map(Arc::new).collect();
        let mut state = self.state();
        if state.version.as_deref() != Some(lookup.version.as_str()) {
            state.matches.clear();
            state.version = Some(lookup.version.as_str().into());
        }
        if state.matches.len() >= MAX_ENTRIES {
            state.matches.clear();
        }
        state.matches.insert(key, subs.clone());
        Ok(subs)
    }
}
