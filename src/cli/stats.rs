//! `hookline stats`: the numbers of `GET /v1/stats` (overall) or
//! `GET /v1/subscriptions/{id}/stats` (one subscription), as text or JSON.

use super::{Output, OutputArg};
use crate::config::Config;
use crate::ids::SubscriptionId;
use crate::ops::{Need, Ops, Scope};
use crate::stats::{WindowStats, Windows};

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Only this subscription (with its backlog and health); default: overall.
    #[arg(long)]
    pub subscription: Option<SubscriptionId>,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Prints the statistics.
pub async fn run(args: StatsArgs, config: Config) -> anyhow::Result<()> {
    let ops = Ops::connect(config, Need::Everything).await?;
    let json = args.output.output == Output::Json;
    match &args.subscription {
        Some(id) => {
            let s = ops.subscription_stats(&Scope::Admin, id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("subscription: {}", s.subscription_id);
                println!("health:       {}", s.health.as_str());
                println!("backlog:      {}", s.backlog);
                print_windows(&s.windows);
            }
        }
        None => {
            let s = ops.overall_stats(&Scope::Admin).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("scope:                  all subscriptions");
                println!("backlog:                {}", s.backlog);
                println!("dlq messages:           {}", s.dlq_messages);
                println!("breakers open:          {}", s.breakers_open);
                println!("subscriptions disabled: {}", s.subscriptions_disabled);
                print_windows(&s.windows);
            }
        }
    }
    Ok(())
}

fn print_windows(w: &Windows) {
    println!();
    println!(
        "{:<6} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  FAILURES",
        "WINDOW", "SUCCEEDED", "FAILED", "DLQ", "RATE", "P50 MS", "P95 MS", "P99 MS"
    );
    for (name, s) in [("5m", &w.last_5m), ("1h", &w.last_1h), ("24h", &w.last_24h)] {
        print_window(name, s);
    }
}

fn print_window(name: &str, s: &WindowStats) {
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
    let rate = s.success_rate.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "-".into());
    let failures: Vec<String> =
        s.failures_by_type.iter().map(|(kind, n)| format!("{kind}={n}")).collect();
    println!(
        "{:<6} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
        name,
        s.succeeded,
        s.failed,
        s.dead_lettered,
        rate,
        ms(s.latency_p50_ms),
        ms(s.latency_p95_ms),
        ms(s.latency_p99_ms),
        if failures.is_empty() { "-".to_string() } else { failures.join(" ") }
    );
}
