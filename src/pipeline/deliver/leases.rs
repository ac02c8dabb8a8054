//! Gives back to Redis the in-flight leases this process holds but does not use: idle in the
//! pools of [`crate::limiter`] for [`LEASE_IDLE`], or too close to their expiry to cover another
//! request; at shutdown, every idle one. Until then a busy endpoint's requests reuse them, one
//! after another, without a lease taken and returned in Redis per request.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::admission::request_lease;
use crate::context::Ctx;
use crate::limiter::{LEASE_IDLE, Lease};
use crate::store::health::{self, Health};

/// How often the pools are looked at.
const SWEEP_EVERY: Duration = Duration::from_millis(50);

/// Returns idle and expiring leases every [`SWEEP_EVERY`] until `shutdown`.
pub async fn sweep_leases(ctx: Ctx, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let until = health::now_ms() + request_lease(&ctx.config).as_millis() as i64;
        give_back(&ctx, ctx.limits.leases_to_return(LEASE_IDLE, until)).await;
    }
}

/// Returns every idle lease (when the process stops, after its last requests).
pub async fn return_all_leases(ctx: &Ctx) {
    give_back(ctx, ctx.limits.leases_to_return(Duration::ZERO, i64::MAX)).await;
}

async fn give_back(ctx: &Ctx, leases: Vec<(String, Lease)>) {
    if leases.is_empty() {
        return;
    }
    let mut by_endpoint: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (endpoint, lease) in leases {
        by_endpoint.entry(endpoint).or_default().push(lease.member);
    }
    let health = Health::new(ctx.redis.clone(), ctx.names.clone());
    let returns = by_endpoint.iter().map(|(endpoint, members)| {
        let health = health.clone();
        async move {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            if let Err(e) = health.return_leases(endpoint, &members).await {
                tracing::warn!(
                    subscription_id = %endpoint,
                    leases = members.len(),
                    error = %e,
                    "could not return idle in-flight leases (they expire by themselves)"
                );
            }
        }
    });
    futures::future::join_all(returns).await;
}
