//! The in-process subscription cache of the delivery path, exact rather than "fresh enough".
//!
//! Every subscription write replaces the token `<p>:subs:version` in the same MULTI as the
//! change (see [`super::subscriptions`]). The cache holds subscriptions and fan-out matches read
//! at one token; a user of an entry checks the current token in a round trip it makes anyway
//! (fan-out: with the replay index write; delivery: inside the admission script of
//! [`super::health::Health::admit`]) and refetches when it moved. So a change is seen by every
//! process at its next event or delivery, and a steady-state delivery costs no subscription read
//! at all (measured in BENCHMARKS.md).
//!
//! Data is read *after* the token it is filed under (same pipeline, in order), so it is never
//! older than its token; a write between the two only causes one needless refetch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::RedisConn;

use super::Doing;
use super::subscriptions::{Subscription, SubscriptionError, SubscriptionStore, version_key};
use crate::subjects::Names;

/// Entries per map at most; a full map is emptied (a cache, not a second store).
const MAX_ENTRIES: usize = 10_000;

type MatchKey = (String, Option<String>);

#[derive(Default)]
struct State {
    /// The token every entry below was read at.
    version: Option<Arc<str>>,
    subs: HashMap<String, Arc<Subscription>>,
    matches: HashMap<MatchKey, Arc<[Arc<Subscription>]>>,
}

impl State {
    /// Files `f`'s entry under `version`; another token than the cache's empties it first (the
    /// tokens are opaque: the last read wins, and every use checks it anyway).
    fn file(&mut self, version: &str, f: impl FnOnce(&mut State)) -> Arc<str> {
        match &self.version {
            Some(v) if &**v == version => {}
            _ => {
                self.subs.clear();
                self.matches.clear();
                self.version = Some(version.into());
            }
        }
        f(self);
        self.version.clone().unwrap_or_else(|| version.into())
    }
}

/// Subscriptions and fan-out matches of one prefix, shared by the process's handlers.
pub struct SubscriptionCache {
    store: SubscriptionStore,
    conn: RedisConn,
    version_key: String,
    state: Mutex<State>,
}

impl SubscriptionCache {
    pub fn new(store: SubscriptionStore, conn: RedisConn, names: &Names) -> SubscriptionCache {
        SubscriptionCache { store, conn, version_key: version_key(names), state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The subscription with the token it was read at (cached, or read now). The caller must
    /// check the token before acting on the data, and call [`Self::stale`] when it moved.
    /// `fresh` skips the cache (for decisions no later check covers).
    pub async fn subscription(
        &self,
        id: &str,
        fresh: bool,
    ) -> Result<(Option<Arc<Subscription>>, Arc<str>), SubscriptionError> {
        if !fresh {
            let state = self.state();
            if let (Some(version), Some(sub)) = (&state.version, state.subs.get(id)) {
                return Ok((Some(sub.clone()), version.clone()));
            }
        }
        let (sub, version) = self.store.get_versioned(id).await?;
        let sub = sub.map(Arc::new);
        let mut state = self.state();
        let version = state.file(&version, |s| {
            if let Some(sub) = &sub {
                if s.subs.len() >= MAX_ENTRIES {
                    s.subs.clear();
                }
                s.subs.insert(id.to_string(), sub.clone());
            }
        });
        Ok((sub, version))
    }

    /// The token moved since `seen` was read: drop everything filed under it.
    pub fn stale(&self, seen: &str) {
        let mut state = self.state();
        if state.version.as_deref() == Some(seen) {
            *state = State::default();
        }
    }

    /// Active subscriptions matching the event (see [`SubscriptionStore::matching`]), checked
    /// against the token in one round trip that also runs `also` (its reply ignored).
    pub async fn matching(
        &self,
        event_type: &str,
        tenant: Option<&str>,
        also: Option<redis::Cmd>,
    ) -> Result<Arc<[Arc<Subscription>]>, SubscriptionError> {
        let key: MatchKey = (event_type.to_string(), tenant.map(str::to_string));
        let cached = {
            let state = self.state();
            state.version.clone().zip(state.matches.get(&key).cloned())
        };
        let mut also = also;
        if let Some((version, subs)) = cached {
            let mut pipe = redis::pipe();
            pipe.get(&self.version_key);
            if let Some(cmd) = also.take() {
                pipe.add_command(cmd).ignore();
            }
            let (current,): (Option<String>,) =
                pipe.query_async(&mut self.conn.clone()).await.doing(|| {
                    format!("checking the subscriptions' version for event type {event_type}")
                })?;
            if current.as_deref().unwrap_or_default() == &*version {
                return Ok(subs);
            }
            self.stale(&version);
        }
        let (subs, version) = self.store.matching_versioned(event_type, tenant, also).await?;
        let subs: Arc<[Arc<Subscription>]> = subs.into_iter().map(Arc::new).collect();
        self.state().file(&version, |s| {
            if s.matches.len() >= MAX_ENTRIES {
                s.matches.clear();
            }
            s.matches.insert(key, subs.clone());
        });
        Ok(subs)
    }
}
