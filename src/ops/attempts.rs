//! Attempt-log queries: newest first, paginated, by subscription, event id or status. A tenant
//! scope sees only its tenant's attempts.

use super::{BackendError, Ops, OpsError, Scope};
use crate::attempt_log::{AttemptPage, AttemptQuery, AttemptStatus};
use crate::ids::{EventId, SubscriptionId};

/// Largest page of attempts.
pub const MAX_LIMIT: usize = 500;

/// Filters of an attempt query, as a front end parsed them.
#[derive(Debug, Clone)]
pub struct AttemptFilter {
    pub subscription_id: Option<SubscriptionId>,
    pub event_id: Option<EventId>,
    pub status: Option<AttemptStatus>,
    /// Page size, 1-500.
    pub limit: usize,
    /// Cursor from a previous page's `next_cursor`.
    pub before: Option<u64>,
}

/// Parses a status name; the message lists every status.
pub fn parse_status(field: &str, s: &str) -> Result<AttemptStatus, OpsError> {
    AttemptStatus::parse(s).ok_or_else(|| {
        let names: Vec<&str> = AttemptStatus::ALL.iter().map(|s| s.as_str()).collect();
        OpsError::invalid(field, format!("{field} {s:?} is not one of {}", names.join(", ")))
    })
}

impl Ops {
    /// One page of attempts.
    pub async fn attempts(
        &self,
        scope: &Scope,
        filter: AttemptFilter,
    ) -> Result<AttemptPage, OpsError> {
        if !(1..=MAX_LIMIT).contains(&filter.limit) {
            return Err(OpsError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        if let Some(sub) = &filter.subscription_id {
            self.get_subscription(scope, sub).await?;
        }
        let query = AttemptQuery {
            subscription_id: filter.subscription_id.map(SubscriptionId::into_string),
            event_id: filter.event_id.map(EventId::into_string),
            status: filter.status,
            tenant_id: scope.tenant().map(|t| t.to_string()),
            limit: filter.limit,
            before: filter.before,
        };
        crate::attempt_log::query(self.js()?, self.redis()?, &self.names, &query).await.map_err(
            |cause| {
                OpsError::Backend(BackendError::Mixed {
                    doing: "querying the attempt log".into(),
                    cause,
                })
            },
        )
    }
}
