//! Scenarios at full speed with healthy endpoints: baseline (HTTP alone), throughput (one
//! subscription), fan-out (ten) and many subscriptions (10 k in Redis, ten matching).
//!
//! Each hookline scenario: fresh hookline process and prefix, subscriptions, a warm-up, then the
//! events published as fast as JetStream acks them while the receiver counts; the rate is unique
//! deliveries from first to last receipt, so it includes neither start-up nor warm-up. The
//! baseline's rate is taken over the same window at the same receiver (its client-side rate,
//! over the load's wall time, is reported beside it).

use std::time::Duration;

use crate::Sizes;
use crate::env::{Env, Hookline, Waited, window_rate};
use crate::load::{self, Publisher};
use crate::pairs::{Events, Expected};
use crate::report::Report;

/// How long without a new delivery before the rest counts as missing.
pub const STALL: Duration = Duration::from_secs(30);

/// Scenario 1: the physical limit.
pub async fn baseline(env: &Env, sizes: &Sizes) -> anyhow::Result<Report> {
    let url = env.endpoint("baseline", false);
    let c = env.opts.concurrency;
    // Warm the receiver and the connection pool.
    load::baseline(&url, c, Duration::from_millis(500)).await?;
    env.reset_receiver().await?;
    let result = load::baseline(&url, c, sizes.baseline).await?;
    let path = "/s/baseline";
    let expected = Expected::new([path.to_string()], Events::List(result.delivered_ids));
    let loss = env.settle(&expected).await?;
    let (received, first_ns, last_ns) = env.stats(false).await?.over(|p| p == path);
    // The same window as hookline's rates: first to last receipt at the receiver.
    let rps = window_rate(received, first_ns, last_ns);
    let client_rps = result.requests as f64 / result.elapsed.as_secs_f64();
    let mut r = Report::new("baseline");
    r.set("requests", result.requests)
        .set("errors", result.errors)
        .set("concurrency", c as u64)
        .set("body_bytes", load::BODY_BYTES as u64)
        .set("requests_per_s", rps)
        .set("client_requests_per_s", client_rps)
        .set("latency_us", serde_json::to_value(result.latency_us)?);
    if let Some(error) = &result.first_error {
        r.set("first_error", error.as_str());
    }
    r.summary = format!(
        "{rps:.0} req/s at {c} concurrent ({client_rps:.0}/s over the client's wall time); latency p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms{}",
        result.latency_us.p50 as f64 / 1000.0,
        result.latency_us.p95 as f64 / 1000.0,
        result.latency_us.p99 as f64 / 1000.0,
        match &result.first_error {
            Some(e) => format!("; {} errors, first: {e}", result.errors),
            None => String::new(),
        }
    );
    r.at_most("baseline errors", result.errors as f64, 0.0);
    r.no_loss("lost deliveries", &loss);
    Ok(r)
}

const IN_FLIGHT_KEY: &str = "HOOKLINE_HEALTH__MAX_IN_FLIGHT_PER_ENDPOINT";

/// The per-endpoint in-flight limit at the baseline's concurrency, as hookline configuration,
/// unless `--set health.max_in_flight_per_endpoint` chose one (then nothing: the choice stays).
pub fn baseline_in_flight(env: &Env) -> Option<(&'static str, String)> {
    let chosen = env.opts.hookline_env.iter().any(|(k, _)| k == IN_FLIGHT_KEY);
    (!chosen).then(|| (IN_FLIGHT_KEY, env.opts.concurrency.to_string()))
}

/// Scenario 2: one subscription, at the baseline's concurrency: the endpoint may have as many
/// requests in flight as the baseline had (`delivery.concurrency`), so both measure the same
/// HTTP load. The default per-endpoint limit (16) is a protection for customers' endpoints,
/// which caps one endpoint at 16 / latency; that rate is measured too, in a second run
/// (`at_default_in_flight_limit`), unless `--set health.max_in_flight_per_endpoint` chose one.
pub async fn throughput(
    env: &Env,
    sizes: &Sizes,
    baseline_rps: Option<f64>,
) -> anyhow::Result<Report> {
    let in_flight = baseline_in_flight(env);
    let default_limit = if in_flight.is_none() {
        None
    } else {
        let limit = hookline::config::Config::with_overrides("")?.health.max_in_flight_per_endpoint;
        let r =
            fan_out_run(env, "throughput-default-limit", 1, sizes.throughput_events, &[]).await?;
        // Carried into the throughput report below, so a pair lost here fails the run too.
        Some((limit, r))
    };
    let extra: Vec<(&str, &str)> = in_flight.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut r = fan_out_run(env, "throughput", 1, sizes.throughput_events, &extra).await?;
    rate_targets(&mut r, baseline_rps);
    if let Some((limit, d)) = default_limit {
        let rate = d.get("deliveries_per_s").unwrap_or(0.0);
        r.set("in_flight_limit", env.opts.concurrency as u64);
        r.set(
            "at_default_in_flight_limit",
            serde_json::json!({
                "in_flight_limit": limit,
                "deliveries_per_s": rate,
                "ratio_to_baseline": baseline_rps.map(|b| rate / b),
                "all_cpu_us_per_delivery": d.get("all_cpu_us_per_delivery"),
                "hookline_cpu_us_per_delivery": d.get("hookline_cpu_us_per_delivery"),
                "missing": d.get("missing"),
            }),
        );
        r.at_most("lost deliveries at the default limit", d.get("missing").unwrap_or(0.0), 0.0);
        if let Some(b) = baseline_rps {
            r.at_least("deliveries/s vs baseline at the default limit", rate / b, RATE_TARGET);
        }
        r.lost_pairs += d.lost_pairs;
        r.summary = format!(
            "{} at {} in flight; {rate:.0}/s at the default limit of {limit}",
            r.summary, env.opts.concurrency
        );
    }
    r.at_most("hookline peak RSS MiB", r.get("hookline_peak_rss_mib").unwrap_or(0.0), 64.0);
    Ok(r)
}

/// Scenario 3: ten subscriptions matching every event.
pub async fn fanout(env: &Env, sizes: &Sizes, baseline_rps: Option<f64>) -> anyhow::Result<Report> {
    let mut r = fan_out_run(env, "fanout", sizes.fanout_subs, sizes.fanout_events, &[]).await?;
    rate_targets(&mut r, baseline_rps);
    Ok(r)
}

/// Scenario 7: many subscriptions in Redis, few matching.
pub async fn many(
    env: &Env,
    sizes: &Sizes,
    fanout_events_per_s: Option<f64>,
) -> anyhow::Result<Report> {
    let unrelated = sizes.many_subs.saturating_sub(sizes.fanout_subs);
    let hk = env.hookline("many-subs", &[]).await?;
    let result = many_measure(env, &hk, sizes.fanout_subs, unrelated, sizes.fanout_events).await;
    env.finish(hk).await?;
    let mut r = result?;
    let eps = r.get("events_per_s").unwrap_or(0.0);
    if let Some(base) = fanout_events_per_s {
        r.set("ratio_to_fanout", eps / base);
        r.at_least("events/s vs fan-out", eps / base, 0.8);
    }
    Ok(r)
}

/// Deliveries per second as a share of the raw-HTTP baseline, for one endpoint (at the
/// baseline's concurrency and at the default in-flight limit) and fanned out (issue 17; issue 7
/// asked for 0.3).
const RATE_TARGET: f64 = 0.5;

fn rate_targets(r: &mut Report, baseline_rps: Option<f64>) {
    if let Some(base) = baseline_rps {
        let ratio = r.get("deliveries_per_s").unwrap_or(0.0) / base;
        r.set("ratio_to_baseline", ratio);
        r.at_least("deliveries/s vs baseline", ratio, RATE_TARGET);
    }
}

/// Payload filters on every subscription of the many-subscriptions scenario (issue 16): the
/// matching ones pass every benchmark event (two conditions), `REJECTING` more of the same type
/// reject every one (so the filters are evaluated, and say no, for each event), and the rest
/// filter on other types and on payload fields.
const REJECTING: usize = 90;

async fn many_measure(
    env: &Env,
    hk: &Hookline,
    matching: usize,
    unrelated: usize,
    events: u64,
) -> anyhow::Result<Report> {
    let passes = serde_json::json!({"sent_ns": {"$gt": 0}, "pad": {"$exists": true}});
    let rejects = serde_json::json!({"sent_ns": {"$lt": 0}});
    let created = std::time::Instant::now();
    env.subscribe_n_filtered(hk, "many-subs", matching, Some(passes)).await?;
    let rejecting = REJECTING.min(unrelated);
    env.subscribe_n_filtered(hk, "many-subs-rejected", rejecting, Some(rejects)).await?;
    let others = (0..unrelated - rejecting)
        .map(|i| {
            let filter =
                serde_json::json!({"amount": {"$gt": i}, "currency": {"$in": ["EUR", "USD"]}});
            (
                env.endpoint(&format!("unrelated-{i}"), false),
                vec![format!("other.t{i}")],
                Some(filter),
            )
        })
        .collect();
    env.subscribe_filtered(hk, others).await?;
    let setup_s = created.elapsed().as_secs_f64();
    let mut r = fan_out_measure(env, hk, "many-subs", matching, events).await?;
    r.set("subscriptions", (matching + unrelated) as u64)
        .set("filtered_subscriptions", (matching + unrelated) as u64)
        .set("rejecting_same_type", rejecting as u64)
        .set("subscription_setup_s", setup_s);
    Ok(r)
}

/// `matching` subscriptions get every event.
async fn fan_out_run(
    env: &Env,
    scenario: &str,
    matching: usize,
    events: u64,
    extra: &[(&str, &str)],
) -> anyhow::Result<Report> {
    let hk = env.hookline(scenario, extra).await?;
    let result = async {
        env.subscribe_n(&hk, scenario, matching).await?;
        fan_out_measure(env, &hk, scenario, matching, events).await
    }
    .await;
    env.finish(hk).await?;
    result
}

/// Publishes `events` to the `matching` subscriptions `scenario` made and measures their delivery.
async fn fan_out_measure(
    env: &Env,
    hk: &Hookline,
    scenario: &str,
    matching: usize,
    events: u64,
) -> anyhow::Result<Report> {
    let publisher = Publisher::connect(&env.nats_url, &hk.prefix).await?;
    env.warm_up(&publisher, 50, matching as u64).await?;
    let pairs = Expected::new(Env::paths(scenario, matching), Events::range("ev", 0..events));
    let expected = pairs.len();
    let stored_before = env.deliveries_stored(hk).await?;
    let before = env.cpu(hk);
    let (published, waited) = tokio::join!(
        publisher.burst("ev", 0..events),
        env.wait_for(expected, |_| true, STALL, None)
    );
    let (published, waited) = (published?, waited?);
    let after = env.cpu(hk);
    let loss = env.settle(&pairs).await?;
    let stored = env.deliveries_stored(hk).await? - stored_before;
    let mut r = Report::new(scenario);
    r.set("subscriptions", matching as u64).set("matching", matching as u64).set("events", events);
    r.set("publish_per_s", published.count as f64 / published.elapsed.as_secs_f64());
    delivery_metrics(&mut r, &waited, matching as u64);
    resource_metrics(&mut r, hk, before.delta(&after));
    r.set("dlq_entries", env.dlq_count(hk).await?);
    r.set("deferrals", deferrals(stored, expected));
    r.set("missing", loss.lost);
    r.no_loss("lost deliveries", &loss);
    r.summary = format!(
        "{:.0} deliveries/s ({:.0} events/s x {matching}); peak RSS {:.1} MiB; hookline CPU {:.0} us/delivery",
        waited.rate(),
        waited.rate() / matching as f64,
        r.get("hookline_peak_rss_mib").unwrap_or(0.0),
        r.get("hookline_cpu_us_per_delivery").unwrap_or(0.0)
    );
    Ok(r)
}

/// Deferrals and retries, from the messages the deliveries stream stored during a run that
/// fanned out `deliveries`: one message per delivery, and two per deferral or retry (the
/// schedule, and the delivery it fires).
pub fn deferrals(stored: u64, deliveries: u64) -> u64 {
    stored.saturating_sub(deliveries) / 2
}

/// Delivery counts and rates of a finished wait.
pub fn delivery_metrics(r: &mut Report, waited: &Waited, per_event: u64) {
    let rate = waited.rate();
    r.set("deliveries", waited.delivered)
        .set("duplicates", waited.stats.requests.saturating_sub(waited.stats.unique))
        .set("deliveries_per_s", rate)
        .set("events_per_s", rate / per_event.max(1) as f64)
        .set("first_to_last_s", waited.last_ns.saturating_sub(waited.first_ns) as f64 / 1e9)
        .set("timed_out", waited.timed_out);
}

/// Peak RSS of hookline, CPU seconds of every process, and CPU microseconds per delivery
/// (hookline's and all processes' together: less sensitive to a noisy machine than rates).
pub fn resource_metrics(r: &mut Report, hk: &Hookline, cpu: serde_json::Value) {
    let usage = hk.proc.usage();
    r.set("hookline_peak_rss_mib", usage.hwm_kib as f64 / 1024.0);
    let deliveries = r.get("deliveries").unwrap_or(0.0);
    if deliveries > 0.0 && cpu.is_object() {
        let hookline = cpu["hookline"].as_f64().unwrap_or(0.0);
        let all: f64 = ["hookline", "nats", "redis", "receiver", "bench"]
            .iter()
            .map(|k| cpu[k].as_f64().unwrap_or(0.0))
            .sum();
        r.set("hookline_cpu_us_per_delivery", hookline * 1e6 / deliveries);
        r.set("all_cpu_us_per_delivery", all * 1e6 / deliveries);
        // The scale-out figure: each server component's CPU per delivery, the deliveries one
        // of its cores carries, and the cores 100 k deliveries/s would take of it.
        for component in ["hookline", "nats", "redis"] {
            let us = cpu[component].as_f64().unwrap_or(0.0) * 1e6 / deliveries;
            r.set(&format!("{component}_cpu_us_per_delivery"), us);
            if us > 0.0 {
                r.set(&format!("{component}_deliveries_per_core_s"), 1e6 / us);
                r.set(&format!("{component}_cores_for_100k_per_s"), us * 0.1);
            }
        }
    }
    r.set("cpu_s", cpu);
}
