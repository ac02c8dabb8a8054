//! Scenarios with paced load or a misbehaving endpoint: latency at fixed offered rates,
//! isolation (one endpoint that never answers among healthy ones) and backlog (the endpoint is
//! down while events pile up, then comes back).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Sizes;
use crate::env::Env;
use crate::load::{EVENT_TYPE, Publisher};
use crate::pairs::{Events, Expected};
use crate::report::Report;
use crate::steady::{STALL, deferrals, delivery_metrics, resource_metrics};

/// Scenario 4: publish->receipt latency at 200 events/s and at half of `max_rate`, with the
/// per-endpoint in-flight limit the throughput scenario measured `max_rate` at.
pub async fn latency(env: &Env, sizes: &Sizes, max_rate: f64) -> anyhow::Result<Report> {
    let in_flight = crate::steady::baseline_in_flight(env);
    let extra: Vec<(&str, &str)> = in_flight.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let hk = env.hookline("latency", &extra).await?;
    let mut r = Report::new("latency");
    let result = async {
        env.subscribe_n(&hk, "latency", 1).await?;
        let publisher = Publisher::connect(&env.nats_url, &hk.prefix).await?;
        env.warm_up(&publisher, 50, 1).await?;
        let mut summary = Vec::new();
        for (label, rate, goal_ms) in [("at_200", 200.0, 5.0), ("at_half_max", (max_rate / 2.0).max(1.0), 25.0)] {
            env.reset_receiver().await?;
            let events = (rate * sizes.latency.as_secs_f64()).round() as u64;
            let published = publisher.paced(label, 0..events, rate).await?;
            env.wait_for(events, |_| true, STALL, None).await?;
            let pairs = Expected::new(Env::paths("latency", 1), Events::range(label, 0..events));
            let loss = env.settle(&pairs).await?;
            let l = env.stats(true).await?.latency_us;
            let ms = |us: u64| us as f64 / 1000.0;
            r.set(
                label,
                serde_json::json!({
                    "offered_per_s": rate.round(),
                    "achieved_publish_per_s": (published.count as f64 / published.elapsed.as_secs_f64()).round(),
                    "events": events,
                    "p50_ms": ms(l.p50), "p95_ms": ms(l.p95), "p99_ms": ms(l.p99), "max_ms": ms(l.max),
                    "missing": loss.lost,
                }),
            );
            r.at_most(&format!("p99 ms {label}"), ms(l.p99), goal_ms);
            r.no_loss(&format!("lost deliveries {label}"), &loss);
            summary.push(format!(
                "{rate:.0}/s: p50 {:.1} p95 {:.1} p99 {:.1} max {:.1} ms",
                ms(l.p50),
                ms(l.p95),
                ms(l.p99),
                ms(l.max)
            ));
        }
        r.summary = summary.join("; ");
        resource_metrics(&mut r, &hk, serde_json::Value::Null);
        anyhow::Ok(())
    }
    .await;
    env.finish(hk).await?;
    result.map(|()| r)
}

/// Scenario 5: ten healthy subscriptions and one whose endpoint never answers.
pub async fn isolation(
    env: &Env,
    sizes: &Sizes,
    fanout_rate: Option<f64>,
) -> anyhow::Result<Report> {
    let hk = env.hookline("isolation", &[]).await?;
    let mut r = Report::new("isolation");
    let result = async {
        let healthy = sizes.fanout_subs as u64;
        env.subscribe_n(&hk, "isolation", sizes.fanout_subs).await?;
        env.subscribe(
            &hk,
            vec![(env.endpoint("isolation-dead", true), vec![EVENT_TYPE.to_string()])],
        )
        .await?;
        let publisher = Publisher::connect(&env.nats_url, &hk.prefix).await?;
        env.warm_up(&publisher, 50, healthy).await?;
        let events = sizes.fanout_events;
        let pairs = Expected::new(
            Env::paths("isolation", sizes.fanout_subs),
            Events::range("ev", 0..events),
        );
        let expected = pairs.len();
        let stored_before = env.deliveries_stored(&hk).await?;
        let before = env.cpu(&hk);
        let is_healthy = |p: &str| p.starts_with("/s/");
        let (published, waited) = tokio::join!(
            publisher.burst("ev", 0..events),
            env.wait_for(expected, is_healthy, STALL, Some(sizes.isolation_cap))
        );
        let (_, mut waited) = (published?, waited?);
        let after = env.cpu(&hk);
        if waited.timed_out {
            // The rate over the whole window up to the cap, not just up to the last receipt.
            let now_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            waited.last_ns = waited.last_ns.max(now_ns);
        }
        delivery_metrics(&mut r, &waited, healthy);
        resource_metrics(&mut r, &hk, before.delta(&after));
        r.set("events", events)
            .set("healthy_subscriptions", healthy)
            .set("dead_requests_parked", waited.stats.hanging);
        // Deferrals: what the dead endpoint cost the others.
        let stored = env.deliveries_stored(&hk).await? - stored_before;
        let deferrals = deferrals(stored, events * (healthy + 1));
        r.set("deferrals", deferrals)
            .set("deferrals_per_dead_delivery", deferrals as f64 / events.max(1) as f64);
        let rate = waited.rate();
        if let Some(base) = fanout_rate {
            r.set("ratio_to_fanout", rate / base);
            // Issue 17 (issue 7 asked for 0.9).
            r.at_least("healthy deliveries/s vs fan-out", rate / base, 0.95);
        }
        // At the time cap the pairs not yet delivered are slow, not proven lost: a target of
        // their own; otherwise every expected pair must have arrived.
        let undelivered = if waited.timed_out {
            let late = env.loss(&pairs).await?.lost;
            r.set("undelivered_at_cap", late);
            r.at_most("healthy deliveries left when the time cap hit", late as f64, 0.0);
            late
        } else {
            let loss = env.settle(&pairs).await?;
            r.set("missing", loss.lost);
            r.no_loss("lost deliveries", &loss);
            loss.lost
        };
        r.summary = format!(
            "{rate:.0} healthy deliveries/s{}; {} requests parked on the dead endpoint",
            if waited.timed_out {
                format!(
                    " (time cap {:?} hit, {undelivered} not yet delivered)",
                    sizes.isolation_cap
                )
            } else {
                String::new()
            },
            waited.stats.hanging
        );
        anyhow::Ok(())
    }
    .await;
    env.finish(hk).await?;
    result.map(|()| r)
}

/// A retry schedule for the backlog: immediately, then every second, 100 attempts in all.
fn fast_retries() -> String {
    let mut delays = vec!["\"0s\"".to_string()];
    delays.extend(std::iter::repeat_n("\"1s\"".to_string(), 99));
    format!("[{}]", delays.join(","))
}

/// Scenario 6: steady state, then the endpoint is down while events pile up, then it is back.
pub async fn backlog(env: &mut Env, sizes: &Sizes) -> anyhow::Result<Report> {
    let schedule = fast_retries();
    let hk = env.hookline("backlog", &[("HOOKLINE_RETRY__SCHEDULE", schedule.as_str())]).await?;
    let mut r = Report::new("backlog");
    let result = async {
        env.subscribe_n(&hk, "backlog", 1).await?;
        let publisher = Publisher::connect(&env.nats_url, &hk.prefix).await?;
        env.warm_up(&publisher, 50, 1).await?;
        // Steady state: the endpoint is up.
        let (published, waited) = tokio::join!(
            publisher.burst("steady", 0..sizes.backlog_steady),
            env.wait_for(sizes.backlog_steady, |_| true, STALL, None)
        );
        let (_, steady) = (published?, waited?);
        let path = Env::paths("backlog", 1);
        let steady_pairs =
            Expected::new(path.clone(), Events::range("steady", 0..sizes.backlog_steady));
        // Before the receiver stops: its successor starts with an empty record.
        let steady_loss = env.settle(&steady_pairs).await?;
        let steady_usage = hk.proc.usage();
        let steady_hwm = steady_usage.hwm_kib as f64 / 1024.0;
        // Down: publish the backlog, keep the endpoint away a little longer, sample memory.
        env.stop_receiver().await;
        let down_started = Instant::now();
        let publish = publisher.burst("bk", 0..sizes.backlog_events);
        tokio::pin!(publish);
        let (mut max_rss_down, mut published_at) = (0u64, None::<Instant>);
        while published_at.is_none_or(|at| at.elapsed() < sizes.backlog_hold) {
            max_rss_down = max_rss_down.max(hk.proc.usage().rss_kib);
            tokio::select! {
                done = &mut publish, if published_at.is_none() => {
                    done?;
                    published_at = Some(Instant::now());
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        let down_s = down_started.elapsed().as_secs_f64();
        // Back: everything must arrive, once.
        env.restart_receiver().await?;
        let before = env.cpu(&hk);
        let drained = env.wait_for(sizes.backlog_events, |_| true, STALL, None).await?;
        let after = env.cpu(&hk);
        let backlog_pairs = Expected::new(path, Events::range("bk", 0..sizes.backlog_events));
        let backlog_loss = env.settle(&backlog_pairs).await?;
        let drained_usage = hk.proc.usage();
        let peak = drained_usage.hwm_kib as f64 / 1024.0;
        r.set("steady_events", sizes.backlog_steady)
            .set("steady_deliveries_per_s", steady.rate())
            .set("steady_peak_rss_mib", steady_hwm)
            .set("backlog_events", sizes.backlog_events)
            .set("endpoint_down_s", down_s)
            .set("max_rss_while_down_mib", max_rss_down as f64 / 1024.0)
            .set("hookline_fds_after_steady", steady_usage.fds)
            .set("hookline_fds_after_drain", drained_usage.fds)
            .set("dlq_entries", env.dlq_count(&hk).await?);
        delivery_metrics(&mut r, &drained, 1);
        resource_metrics(&mut r, &hk, before.delta(&after));
        r.set("backlog_peak_rss_mib", peak).set("peak_ratio", peak / steady_hwm);
        r.at_most("backlog peak RSS / steady peak", peak / steady_hwm, 1.2);
        r.set("missing", steady_loss.lost + backlog_loss.lost);
        r.no_loss("lost deliveries before the outage", &steady_loss);
        r.no_loss("lost deliveries of the backlog", &backlog_loss);
        r.summary = format!(
            "drained {} at {:.0}/s after {down_s:.0} s down; peak RSS {peak:.1} MiB vs steady {steady_hwm:.1} MiB",
            drained.delivered,
            drained.rate()
        );
        anyhow::Ok(())
    }
    .await;
    env.finish(hk).await?;
    result.map(|()| r)
}
