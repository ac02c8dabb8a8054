//! Replay from the event log: one event by id, or a time range (optionally of some types), to
//! every matching subscription or to one named subscription; a tenant scope replays only its
//! tenant's events to its tenant's subscriptions.

use time::OffsetDateTime;

use super::{BackendError, Ops, OpsError, Scope};
use crate::ids::{EventId, EventType, SubscriptionId};
use crate::replay::{ReplayError, ReplaySelection};

/// What to replay, as a front end parsed it: `event_id`, or `since` (with optional `until`,
/// default now, and `event_types`).
#[derive(Debug, Clone, Default)]
pub struct ReplayRequest {
    pub event_id: Option<EventId>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub event_types: Vec<EventType>,
    /// Only to this subscription (default: every matching one).
    pub subscription_id: Option<SubscriptionId>,
}

impl ReplayRequest {
    fn selection(self) -> Result<ReplaySelection, OpsError> {
        match (self.event_id, self.since) {
            (Some(id), None) => Ok(ReplaySelection::Event(id.into_string())),
            (None, Some(since)) => {
                let until = self.until.unwrap_or_else(OffsetDateTime::now_utc);
                if since >= until {
                    return Err(OpsError::invalid("since", "since must be before until"));
                }
                // One consumer filter per type, and JetStream refuses overlapping filters:
                // a type named twice is asked for once.
                let mut event_types: Vec<String> =
                    self.event_types.into_iter().map(EventType::into_string).collect();
                event_types.sort_unstable();
                event_types.dedup();
                Ok(ReplaySelection::Range { since, until, event_types })
            }
            _ => Err(OpsError::invalid(
                "event_id",
                "give either event_id or since (with optional until and event_types)",
            )),
        }
    }
}

impl Ops {
    /// Queues the replay; returns how many deliveries were queued.
    pub async fn replay(&self, scope: &Scope, request: ReplayRequest) -> Result<u64, OpsError> {
        let only = request.subscription_id.clone();
        let selection = request.selection()?;
        if let Some(id) = &only {
            self.get_subscription(scope, id).await?;
        }
        let tenant = scope.tenant().map(|t| t.as_str());
        crate::replay::replay(self.ctx()?, &selection, only.as_ref().map(|s| s.as_str()), tenant)
            .await
            .map_err(|e| match e {
                ReplayError::EventNotFound(_) | ReplayError::SubscriptionNotFound(_) => {
                    OpsError::NotFound(e.to_string())
                }
                ReplayError::Invalid(m) => OpsError::invalid("subscription_id", m),
                ReplayError::Failed(m) => OpsError::Backend(BackendError::Mixed {
                    doing: "replaying".into(),
                    cause: anyhow::anyhow!(m),
                }),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_named_twice_is_replayed_through_one_filter() {
        let t = |s: &str| s.parse::<EventType>().unwrap();
        let request = ReplayRequest {
            since: Some(OffsetDateTime::UNIX_EPOCH),
            event_types: vec![t("order.created"), t("order.paid"), t("order.created")],
            ..Default::default()
        };
        match request.selection().unwrap() {
            ReplaySelection::Range { event_types, .. } => {
                assert_eq!(event_types, ["order.created", "order.paid"])
            }
            other => panic!("a range was asked for: {other:?}"),
        }
    }
}
