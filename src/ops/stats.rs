//! Statistics: success rate, latency percentiles and failures by type over 5 min / 1 h / 24 h
//! (overall for an admin, per subscription for anyone who sees it), with the backlog and the
//! health; and the gauges `/metrics` computes at scrape time.

use futures::StreamExt;
use serde::Serialize;

use super::{BackendError, Ops, OpsError, Scope};
use crate::ids::SubscriptionId;
use crate::metrics::Gauges;
use crate::stats::Windows;
use crate::store::health::Health;

/// Overall statistics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OverallStats {
    pub windows: Windows,
    /// Deliveries due now, over every subscription.
    pub backlog: u64,
    pub dlq_messages: u64,
    pub breakers_open: u64,
    pub subscriptions_disabled: u64,
    /// Events published but not yet fanned out (the fan-out consumer's pending count).
    pub fanout_lag: u64,
}

/// How a subscription's endpoint is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionHealth {
    /// Active, breaker closed.
    Healthy,
    /// Active, deliveries paused by the circuit breaker.
    BreakerOpen,
    /// Deactivated by hookline (failing or gone).
    Disabled,
    /// Deactivated by an operator.
    Inactive,
}

impl SubscriptionHealth {
    /// The name as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionHealth::Healthy => "healthy",
            SubscriptionHealth::BreakerOpen => "breaker_open",
            SubscriptionHealth::Disabled => "disabled",
            SubscriptionHealth::Inactive => "inactive",
        }
    }
}

/// One subscription's statistics and health.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionStats {
    pub subscription_id: SubscriptionId,
    pub windows: Windows,
    /// Deliveries due now.
    pub backlog: u64,
    pub health: SubscriptionHealth,
}

fn mixed(doing: &str) -> impl Fn(anyhow::Error) -> OpsError + '_ {
    move |cause| OpsError::Backend(BackendError::Mixed { doing: doing.into(), cause })
}

impl Ops {
    /// Due deliveries per subscription id, from the deliveries streams' subject counts.
    async fn backlog(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let js = self.js()?;
        let mut out = Vec::new();
        for k in 0..self.names.partitions() {
            let stream = js.get_stream(self.names.deliveries_stream_at(k)).await?;
            let subjects: Vec<_> =
                stream.info_with_subjects(self.names.deliver_wildcard_at(k)).await?.collect().await;
            for s in subjects {
                let (subject, n) = s?;
                let sub = self.names.subscription_of_deliver_at(&subject, k).unwrap_or(&subject);
                out.push((sub.to_string(), n as u64));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn try_gauges(&self) -> anyhow::Result<Gauges> {
        let (js, names) = (self.js()?, &self.names);
        let mut g = Gauges { backlog: self.backlog().await?, ..Default::default() };
        g.dlq_messages = js.get_stream(names.dlq_stream()).await?.info().await?.state.messages;
        let events = js.get_stream(names.events_stream()).await?;
        g.fanout_lag = events.consumer_info(names.fanout_consumer()).await?.num_pending;
        for k in 0..names.partitions() {
            let deliveries = js.get_stream(names.deliveries_stream_at(k)).await?;
            g.deliver_pending +=
                deliveries.consumer_info(names.deliver_consumer_at(k)).await?.num_pending;
        }
        let subs = self.store()?.list().await?;
        // Every breaker in one round trip, not one per subscription.
        let ids: Vec<&str> = subs.iter().map(|s| s.id.as_str()).collect();
        let open = Health::new(self.redis()?.clone(), names.clone()).open_for(&ids).await?;
        g.breakers_open =
            subs.iter().zip(open).filter(|(_, o)| o.is_some()).map(|(s, _)| s.id.clone()).collect();
        g.subscriptions_disabled =
            subs.iter().filter(|s| s.disabled_reason.is_some() && !s.active).count() as u64;
        g.subscriptions_total = subs.len() as u64;
        g.subscription_index_ready = self.ctx.as_ref().map(|c| c.sync.ready());
        Ok(g)
    }

    /// The gauges of `/metrics`, computed now.
    pub async fn gauges(&self) -> Result<Gauges, OpsError> {
        self.try_gauges().await.map_err(mixed("reading gauges"))
    }

    /// Statistics over every subscription (admin only: a tenant scope gets not found).
    pub async fn overall_stats(&self, scope: &Scope) -> Result<OverallStats, OpsError> {
        if *scope != Scope::Admin {
            return Err(OpsError::NotFound(
                "overall stats are for admin tokens; use /v1/subscriptions/{id}/stats".into(),
            ));
        }
        let g = self.gauges().await?;
        let windows = crate::stats::windows(self.redis()?, &self.names, None)
            .await
            .map_err(|e| OpsError::redis("reading stats", e))?;
        Ok(OverallStats {
            windows,
            backlog: g.backlog.iter().map(|(_, n)| n).sum(),
            dlq_messages: g.dlq_messages,
            breakers_open: g.breakers_open.len() as u64,
            subscriptions_disabled: g.subscriptions_disabled,
            fanout_lag: g.fanout_lag,
        })
    }

    /// Statistics and health of one subscription.
    pub async fn subscription_stats(
        &self,
        scope: &Scope,
        id: &SubscriptionId,
    ) -> Result<SubscriptionStats, OpsError> {
        let sub = self.get_subscription(scope, id).await?;
        let windows = crate::stats::windows(self.redis()?, &self.names, Some(id))
            .await
            .map_err(|e| OpsError::redis("reading stats", e))?;
        let stream = self
            .js()?
            .get_stream(self.names.deliveries_stream_of(id))
            .await
            .map_err(|e| OpsError::nats("opening the deliveries stream", e))?;
        let mut counts = stream
            .info_with_subjects(self.names.deliver(id))
            .await
            .map_err(|e| OpsError::nats("reading the backlog", e))?;
        let backlog = match counts.next().await {
            Some(Ok((_, n))) => n as u64,
            _ => 0,
        };
        let open = Health::new(self.redis()?.clone(), self.names.clone())
            .is_open(id)
            .await
            .map_err(|e| OpsError::Backend(BackendError::Redis(e)))?;
        let health = match (sub.active, &sub.disabled_reason, open) {
            (false, Some(_), _) => SubscriptionHealth::Disabled,
            (false, None, _) => SubscriptionHealth::Inactive,
            (true, _, true) => SubscriptionHealth::BreakerOpen,
            (true, _, false) => SubscriptionHealth::Healthy,
        };
        Ok(SubscriptionStats { subscription_id: id.clone(), windows, backlog, health })
    }
}
