//! The dead-letter queue: list (by subscription), get one, redeliver one / several / all of a
//! subscription, purge. A tenant scope sees only entries of its tenant's live subscriptions;
//! unprocessable events and entries of deleted subscriptions are admin-only.

use serde::Serialize;

use super::{Ops, OpsError, Scope};
use crate::ids::SubscriptionId;
use crate::pipeline::dlq::{self, DlqEntry};

/// Largest page of DLQ entries a front end may ask for.
pub const MAX_LIMIT: usize = 1000;

/// Which entries a redeliver takes.
#[derive(Debug, Clone)]
pub enum RedeliverTarget {
    /// These stream sequences (from a listing).
    Sequences(Vec<u64>),
    /// Every entry, or every entry of one subscription.
    All(Option<SubscriptionId>),
}

/// What a redeliver did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RedeliverResult {
    pub redelivered: Vec<u64>,
    pub failed: Vec<RedeliverFailure>,
}

/// One entry that could not be redelivered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RedeliverFailure {
    pub sequence: u64,
    pub error: String,
}

impl Ops {
    /// Whether the scope may see entries of subscription `sub_id`.
    async fn sees_subscription(&self, scope: &Scope, sub_id: &str) -> Result<bool, OpsError> {
        if *scope == Scope::Admin {
            return Ok(true);
        }
        let Ok(id) = SubscriptionId::parse(sub_id) else { return Ok(false) };
        match self.get_subscription(scope, &id).await {
            Ok(_) => Ok(true),
            Err(OpsError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Entries, oldest first, at most `limit` (1-1000).
    pub async fn dlq_list(
        &self,
        scope: &Scope,
        subscription: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<DlqEntry>, OpsError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(OpsError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        self.visible_entries(scope, subscription, limit).await
    }

    async fn visible_entries(
        &self,
        scope: &Scope,
        subscription: Option<&SubscriptionId>,
        limit: usize,
    ) -> Result<Vec<DlqEntry>, OpsError> {
        if let Some(sub) = subscription
            && !self.sees_subscription(scope, sub).await?
        {
            return Err(OpsError::NotFound(format!("subscription {sub} not found")));
        }
        let asked = if *scope == Scope::Admin { limit } else { usize::MAX };
        let all =
            dlq::list(self.js()?, &self.names, subscription.map(|s| s.as_str()), asked).await?;
        let mut visible = Vec::new();
        for e in all {
            if visible.len() == limit {
                break;
            }
            if self.sees_subscription(scope, &e.subscription_id).await? {
                visible.push(e);
            }
        }
        Ok(visible)
    }

    /// One entry.
    pub async fn dlq_get(&self, scope: &Scope, seq: u64) -> Result<DlqEntry, OpsError> {
        let entry = dlq::get(self.js()?, &self.names, seq).await?;
        if self.sees_subscription(scope, &entry.subscription_id).await? {
            Ok(entry)
        } else {
            Err(OpsError::NotFound(format!("dlq entry {seq} not found")))
        }
    }

    /// Puts one entry back on the delivery path with a fresh attempt budget.
    pub async fn dlq_redeliver_one(&self, scope: &Scope, seq: u64) -> Result<DlqEntry, OpsError> {
        self.dlq_get(scope, seq).await?;
        Ok(dlq::redeliver(self.js()?, &self.names, seq).await?)
    }

    /// Redelivers several entries; each one's failure is reported, not fatal.
    pub async fn dlq_redeliver(
        &self,
        scope: &Scope,
        target: RedeliverTarget,
    ) -> Result<RedeliverResult, OpsError> {
        let sequences = match target {
            RedeliverTarget::Sequences(s) if s.is_empty() => {
                return Err(OpsError::invalid(
                    "sequences",
                    "give either a non-empty `sequences` list or `all: true`",
                ));
            }
            RedeliverTarget::Sequences(s) => s,
            RedeliverTarget::All(sub) => self
                .visible_entries(scope, sub.as_ref(), usize::MAX)
                .await?
                .into_iter()
                .map(|e| e.sequence)
                .collect(),
        };
        let mut result = RedeliverResult { redelivered: vec![], failed: vec![] };
        for seq in sequences {
            match self.dlq_redeliver_one(scope, seq).await {
                Ok(_) => result.redelivered.push(seq),
                Err(e) => {
                    result.failed.push(RedeliverFailure { sequence: seq, error: e.to_string() })
                }
            }
        }
        Ok(result)
    }

    /// Deletes every entry (admin only), or those of one subscription; returns how many.
    pub async fn dlq_purge(
        &self,
        scope: &Scope,
        subscription: Option<&SubscriptionId>,
    ) -> Result<u64, OpsError> {
        match (scope, subscription) {
            (Scope::Tenant(_), None) => Err(OpsError::invalid(
                "subscription_id",
                "a tenant token must name the subscription to purge",
            )),
            (_, Some(sub)) if !self.sees_subscription(scope, sub).await? => {
                Err(OpsError::NotFound(format!("subscription {sub} not found")))
            }
            (_, sub) => Ok(dlq::purge(self.js()?, &self.names, sub.map(|s| s.as_str())).await?),
        }
    }
}
