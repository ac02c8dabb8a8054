//! Subcommands over the attempt log and the event log (`attempts list`, `replay`): they talk to
//! NATS and Redis directly, like the admin API does, so they work with or without it running.

use anyhow::Context as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::attempt_log::{AttemptQuery, AttemptStatus};
use crate::cli::{AttemptsCommand, Output};
use crate::commands::InputError;
use crate::config::Config;
use crate::context::Ctx;
use crate::replay::{ReplayError, ReplaySelection};

fn time_arg(flag: &str, value: &str) -> Result<OffsetDateTime, InputError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| InputError(format!("{flag} {value:?} is not an RFC 3339 time: {e}")))
}

/// `hookline attempts list`.
pub async fn attempts(cmd: AttemptsCommand, config: Config) -> anyhow::Result<()> {
    let AttemptsCommand::List { subscription, event_id, status, limit, before, output } = cmd;
    let status = match status.as_deref() {
        Some(s) => Some(AttemptStatus::parse(s).ok_or_else(|| {
            InputError(format!(
                "--status {s:?} is not one of succeeded, failed, dead_lettered, skipped_duplicate"
            ))
        })?),
        None => None,
    };
    if !(1..=500).contains(&limit) {
        return Err(InputError("--limit must be between 1 and 500".into()).into());
    }
    let ctx = Ctx::connect(config).await?;
    let query = AttemptQuery {
        subscription_id: subscription,
        event_id,
        status,
        tenant_id: None,
        limit,
        before,
    };
    let page = crate::attempt_log::query(&ctx.js, &ctx.redis, &ctx.names, &query)
        .await
        .context("querying the attempt log")?;
    match output {
        Output::Json => println!("{}", serde_json::to_string(&page)?),
        Output::Text if page.items.is_empty() => println!("no attempts"),
        Output::Text => {
            println!(
                "{:<25} {:<37} {:<28} {:>3} {:<17} {:>6} {:>7}  ERROR",
                "AT", "SUBSCRIPTION", "EVENT ID", "#", "STATUS", "HTTP", "MS"
            );
            for r in &page.items {
                let http = r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<25} {:<37} {:<28} {:>3} {:<17} {:>6} {:>7}  {}",
                    r.at.format(&Rfc3339).unwrap_or_default(),
                    r.subscription_id,
                    r.event_id,
                    r.attempt,
                    r.status.as_str(),
                    http,
                    r.duration_ms,
                    r.error.as_deref().unwrap_or("")
                );
            }
            if let Some(c) = page.next_cursor {
                println!("(more: --before {c})");
            }
        }
    }
    Ok(())
}

/// `hookline stats`: the stats API's numbers, as JSON.
pub async fn stats(config: Config, subscription: Option<String>) -> anyhow::Result<()> {
    let ctx = Ctx::connect(config).await?;
    if let Some(id) = &subscription {
        ctx.subscriptions.require(id).await.map_err(|e| InputError(e.to_string()))?;
    }
    let windows = crate::stats::windows(&ctx.redis, &ctx.names, subscription.as_deref())
        .await
        .context("reading stats from redis")?;
    let scope = subscription.unwrap_or_else(|| "all subscriptions".into());
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"scope": scope, "windows": windows}))?
    );
    Ok(())
}

/// One human-readable line for an attempt record.
pub fn tail_line(r: &crate::attempt_log::AttemptRecord) -> String {
    let http = r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "---".into());
    let mut line = format!(
        "{} {:<17} {} {} #{} {} {}ms",
        r.at.format(&Rfc3339).unwrap_or_default(),
        r.status.as_str(),
        r.subscription_id,
        r.event_id,
        r.attempt,
        http,
        r.duration_ms
    );
    if let Some(e) = &r.error {
        line.push_str(&format!(" error={e}"));
    }
    if let Some(next) = r.next_retry_at {
        line.push_str(&format!(" next={}", next.format(&Rfc3339).unwrap_or_default()));
    }
    line
}

/// `hookline tail`: a live stream of attempts.
pub async fn tail(
    config: Config,
    subscription: Option<String>,
    failures: bool,
    count: Option<usize>,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let names = crate::subjects::Names::new(&config.streams.prefix);
    let client = crate::topology::connect(&config.nats).await?;
    let subject = match &subscription {
        Some(s) => names.attempts(s),
        None => names.attempts_wildcard(),
    };
    let mut sub = client
        .subscribe(subject.clone())
        .await
        .with_context(|| format!("subscribing to {subject}"))?;
    eprintln!("following {subject} (ctrl-c to stop)");
    let mut printed = 0;
    while let Some(msg) = sub.next().await {
        let Ok(r) = serde_json::from_slice::<crate::attempt_log::AttemptRecord>(&msg.payload)
        else {
            continue;
        };
        if failures
            && matches!(r.status, AttemptStatus::Succeeded | AttemptStatus::SkippedDuplicate)
        {
            continue;
        }
        println!("{}", tail_line(&r));
        printed += 1;
        if count.is_some_and(|c| printed >= c) {
            break;
        }
    }
    Ok(())
}

/// `hookline replay`.
pub async fn replay(
    config: Config,
    event_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    event_types: Vec<String>,
    subscription: Option<String>,
) -> anyhow::Result<()> {
    let selection = match (event_id, since) {
        (Some(id), _) => ReplaySelection::Event(id),
        (None, Some(since)) => {
            let since = time_arg("--since", &since)?;
            let until = match until {
                Some(u) => time_arg("--until", &u)?,
                None => OffsetDateTime::now_utc(),
            };
            if since >= until {
                return Err(InputError("--since must be before --until".into()).into());
            }
            if let Some(bad) = event_types.iter().find(|t| !crate::event::valid_event_type(t)) {
                return Err(InputError(format!("--event-type {bad:?} is not an event type")).into());
            }
            ReplaySelection::Range { since, until, event_types }
        }
        (None, None) => return Err(InputError("give --event-id or --since".into()).into()),
    };
    let ctx = Ctx::connect(config).await?;
    crate::topology::ensure(&ctx.nats, &ctx.js, &ctx.config, &ctx.names).await?;
    let queued = crate::replay::replay(&ctx, &selection, subscription.as_deref(), None)
        .await
        .map_err(|e| match e {
            ReplayError::Invalid(m) => anyhow::Error::from(InputError(m)),
            other => anyhow::Error::from(other),
        })?;
    println!("queued {queued} deliveries");
    Ok(())
}
