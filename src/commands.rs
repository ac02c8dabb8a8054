//! What each subcommand does, printing readable text or JSON. `main` only parses, loads the
//! configuration and maps errors to exit codes.

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::cli::{Command, DlqCommand, Output, SubscriptionFields, SubscriptionsCommand};
use crate::config::Config;
use crate::event::WebhookEvent;
use crate::lifecycle::LifecycleKind;
use crate::pipeline::dlq;
use crate::store::subscriptions::{
    Subscription, SubscriptionError, SubscriptionInput, SubscriptionStore,
};
use crate::subjects::Names;

/// Bad input from the user: exit code 2, nothing changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// A signature that did not verify: exit code 1 with a message.
#[derive(Debug, thiserror::Error)]
#[error("signature invalid: {0}")]
pub struct VerifyFailed(pub String);

/// Runs one subcommand.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { roles } => serve(config, &roles).await,
        Command::Subscriptions(cmd) => subscriptions(cmd, &config).await,
        Command::Publish { event_type, payload, event_id, tenant, source, output } => {
            let payload: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| InputError(format!("payload is not valid JSON: {e}")))?;
            let event = WebhookEvent {
                event_id: event_id.unwrap_or_else(crate::ingest::new_event_id),
                event_type,
                payload,
                occurred_at: Some(time::OffsetDateTime::now_utc()),
                source,
                tenant_id: tenant,
            };
            event.validate().map_err(|e| InputError(e.to_string()))?;
            let (js, names) = jetstream(&config).await?;
            let published = crate::ingest::publish_event(
                &js,
                &names,
                &event,
                config.delivery.max_payload_bytes,
            )
            .await
            .map_err(|e| match e {
                crate::ingest::PublishError::Invalid(i) => InputError(i.to_string()).into(),
                other => anyhow::Error::from(other),
            })?;
            match output {
                Output::Json => println!("{}", serde_json::to_string(&published)?),
                Output::Text => println!(
                    "published {} to {} (stream sequence {}{})",
                    published.event_id,
                    published.subject,
                    published.stream_sequence,
                    if published.duplicate { ", duplicate: already stored" } else { "" }
                ),
            }
            Ok(())
        }
        Command::Dlq(cmd) => dlq_command(cmd, &config).await,
        Command::Attempts(cmd) => crate::commands_ops::attempts(cmd, config).await,
        Command::Stats { subscription } => crate::commands_ops::stats(config, subscription).await,
        Command::Tail { subscription, failures, count } => {
            crate::commands_ops::tail(config, subscription, failures, count).await
        }
        Command::Replay { event_id, since, until, event_types, subscription } => {
            crate::commands_ops::replay(config, event_id, since, until, event_types, subscription)
                .await
        }
        Command::Verify { secret, id, timestamp, signature, tolerance } => {
            let secret = crate::signing::Secret::parse(&secret)
                .map_err(|e| InputError(format!("--secret: {e}")))?;
            let body = crate::cli::read_stdin().context("reading the body from stdin")?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            crate::signing::verify(&secret, &id, &timestamp, &signature, &body, now, tolerance)
                .map_err(|e| VerifyFailed(e.to_string()))?;
            println!("signature valid");
            Ok(())
        }
        Command::Receive(args) => crate::cli_receive::run(args).await,
    }
}

async fn serve(config: Config, roles: &[crate::app::Role]) -> anyhow::Result<()> {
    // Signals are caught from the start: a SIGTERM while hookline is still connecting ends in
    // the same clean exit as one later (the app starts with its shutdown already asked for).
    let shutdown = CancellationToken::new();
    let signals = signals();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal(signals).await;
        tracing::info!("shutdown signal received; finishing in-flight deliveries");
        trigger.cancel();
    });
    let app = App::build(config, roles).await?;
    app.run(shutdown).await
}

type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

/// SIGTERM and SIGINT handlers, installed now (`None`: fall back to ctrl-c).
fn signals() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::terminate()).ok().zip(signal(SignalKind::interrupt()).ok())
}

async fn wait_for_signal(signals: Signals) {
    match signals {
        Some((mut term, mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// NATS only, with the streams ensured (so `publish` and `dlq` work before `serve` ran).
async fn jetstream(config: &Config) -> anyhow::Result<(async_nats::jetstream::Context, Names)> {
    crate::tls::install_provider();
    let names = Names::new(&config.streams.prefix);
    let client = crate::topology::connect(&config.nats).await?;
    let js = crate::topology::jetstream(client.clone(), config);
    crate::topology::ensure(&client, &js, config, &names).await?;
    Ok((js, names))
}

async fn store(config: &Config) -> anyhow::Result<SubscriptionStore> {
    let conn = crate::store::connect(&config.redis).await.with_context(|| {
        format!("connecting to redis at {}", crate::config::redacted_url(&config.redis.url))
    })?;
    let egress = std::sync::Arc::new(crate::egress::EgressPolicy::from_config(&config.egress)?);
    Ok(SubscriptionStore::new(conn, Names::new(&config.streams.prefix)).with_egress(egress))
}

fn input_error(e: SubscriptionError) -> anyhow::Error {
    match e {
        SubscriptionError::Store(_) => anyhow::Error::from(e),
        other => InputError(other.to_string()).into(),
    }
}

impl SubscriptionFields {
    fn into_input(self, clear_types: bool) -> SubscriptionInput {
        use crate::cli::{BodyFormatArg, SchemeArg};
        use crate::store::subscriptions::{BodyFormat, SignatureScheme};
        let types = if clear_types {
            Some(Vec::new())
        } else if self.event_types.is_empty() {
            None
        } else {
            Some(self.event_types)
        };
        let schemes = (!self.signature_schemes.is_empty()).then(|| {
            self.signature_schemes
                .iter()
                .map(|s| match s {
                    SchemeArg::WebhookSha256 => SignatureScheme::WebhookSha256,
                    SchemeArg::XSignature => SignatureScheme::XSignatureCanonical,
                })
                .collect()
        });
        SubscriptionInput {
            url: self.url,
            event_types: types,
            tenant_id: self.tenant,
            description: self.description,
            metadata: (!self.metadata.is_empty()).then(|| self.metadata.into_iter().collect()),
            active: None,
            signature_schemes: schemes,
            body_format: self.body_format.map(|f| match f {
                BodyFormatArg::Envelope => BodyFormat::Envelope,
                BodyFormatArg::Payload => BodyFormat::Payload,
            }),
            max_in_flight: self.max_in_flight,
            max_rps: self.max_rps,
            ordering: self.ordering.map(|o| match o {
                crate::cli::OrderingArg::Unordered => {
                    crate::store::subscriptions::Ordering::Unordered
                }
                crate::cli::OrderingArg::Fifo => crate::store::subscriptions::Ordering::Fifo,
            }),
        }
    }
}

/// Publishes a lifecycle event when NATS is reachable (the change itself is already stored).
async fn notify(config: &Config, kind: crate::lifecycle::LifecycleKind, sub: &Subscription) {
    match crate::topology::connect(&config.nats).await {
        Ok(client) => {
            crate::lifecycle::publish(&client, &Names::new(&config.streams.prefix), kind, sub)
                .await;
            let _ = client.flush().await;
        }
        Err(e) => tracing::warn!(error = %e, "lifecycle event not published: NATS unreachable"),
    }
}

async fn subscriptions(cmd: SubscriptionsCommand, config: &Config) -> anyhow::Result<()> {
    let store = store(config).await?;
    match cmd {
        SubscriptionsCommand::Create { fields, output } => {
            if fields.url.is_none() {
                return Err(InputError("--url is required".into()).into());
            }
            let sub = store.create(fields.into_input(false)).await.map_err(input_error)?;
            notify(config, LifecycleKind::Created, &sub).await;
            match output {
                Output::Json => {
                    let mut value = serde_json::to_value(&sub)?;
                    value["secret"] = serde_json::Value::String(sub.current_secret().expose());
                    println!("{value}");
                }
                Output::Text => {
                    print_subscription(&sub);
                    println!("secret:      {}", sub.current_secret().expose());
                    println!("(the secret is shown only now; receivers verify signatures with it)");
                }
            }
        }
        SubscriptionsCommand::List { tenant, event_type, active, output } => {
            if let Some(t) = event_type.as_deref().filter(|t| !crate::event::valid_event_type(t)) {
                return Err(InputError(format!("--event-type {t:?} is not an event type")).into());
            }
            let subs: Vec<Subscription> = store
                .list()
                .await
                .map_err(input_error)?
                .into_iter()
                .filter(|s| tenant.as_ref().is_none_or(|t| s.tenant_id.as_ref() == Some(t)))
                .filter(|s| active.is_none_or(|a| s.active == a))
                .filter(|s| {
                    event_type.as_ref().is_none_or(|t| {
                        s.event_types.is_empty() || s.filters().iter().any(|f| f.matches(t))
                    })
                })
                .collect();
            match output {
                Output::Json => println!("{}", serde_json::to_string(&subs)?),
                Output::Text if subs.is_empty() => println!("no subscriptions"),
                Output::Text => {
                    println!(
                        "{:<37} {:<8} {:<12} {:<24} URL",
                        "ID", "ACTIVE", "TENANT", "EVENT TYPES"
                    );
                    for s in &subs {
                        let types = if s.event_types.is_empty() {
                            "*all*".to_string()
                        } else {
                            s.event_types.join(",")
                        };
                        let tenant = s.tenant_id.as_deref().unwrap_or("-");
                        println!(
                            "{:<37} {:<8} {:<12} {:<24} {}",
                            s.id, s.active, tenant, types, s.url
                        );
                    }
                }
            }
        }
        SubscriptionsCommand::Get { id, output } => {
            let sub = store.require(&id).await.map_err(input_error)?;
            show(&sub, output)?;
        }
        SubscriptionsCommand::Update { id, fields, all_events, output } => {
            let sub =
                store.update(&id, fields.into_input(all_events)).await.map_err(input_error)?;
            notify(config, LifecycleKind::Updated, &sub).await;
            show(&sub, output)?;
        }
        SubscriptionsCommand::Delete { id } => {
            let sub = store.delete(&id).await.map_err(input_error)?;
            notify(config, LifecycleKind::Deleted, &sub).await;
            println!("deleted {id}");
        }
        SubscriptionsCommand::Activate { id } => {
            let sub = store.set_active(&id, true).await.map_err(input_error)?;
            notify(config, LifecycleKind::Activated, &sub).await;
            println!("activated {id}");
        }
        SubscriptionsCommand::Deactivate { id } => {
            let sub = store.set_active(&id, false).await.map_err(input_error)?;
            notify(config, LifecycleKind::Deactivated, &sub).await;
            println!("deactivated {id}");
        }
        SubscriptionsCommand::RotateSecret { id, output } => {
            let sub =
                store.rotate_secret(&id, config.api.rotation_grace()).await.map_err(input_error)?;
            notify(config, LifecycleKind::SecretRotated, &sub).await;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"id": sub.id, "secret": sub.current_secret().expose()})
                ),
                Output::Text => {
                    println!("new secret:  {}", sub.current_secret().expose());
                    println!(
                        "(the previous secret keeps signing for {} hours)",
                        config.api.secret_rotation_grace_hours
                    );
                }
            }
        }
    }
    Ok(())
}

fn show(sub: &Subscription, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(sub)?),
        Output::Text => print_subscription(sub),
    }
    Ok(())
}

fn print_subscription(s: &Subscription) {
    println!("id:          {}", s.id);
    println!("url:         {}", s.url);
    let types = if s.event_types.is_empty() {
        "(all events)".to_string()
    } else {
        s.event_types.join(", ")
    };
    println!("event types: {types}");
    println!("tenant:      {}", s.tenant_id.as_deref().unwrap_or("(none)"));
    println!("description: {}", s.description);
    println!("active:      {}", s.active);
    println!("created at:  {}", crate::pipeline::headers::rfc3339(s.created_at));
}

async fn dlq_command(cmd: DlqCommand, config: &Config) -> anyhow::Result<()> {
    let (js, names) = jetstream(config).await?;
    match cmd {
        DlqCommand::List { subscription, limit, output } => {
            let entries = dlq::list(&js, &names, subscription.as_deref(), limit).await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string(&entries)?),
                Output::Text if entries.is_empty() => println!("dlq is empty"),
                Output::Text => {
                    println!(
                        "{:>6}  {:<37} {:<36} {:<20} {:<22} {:>8} {:>6}",
                        "SEQ",
                        "SUBSCRIPTION",
                        "EVENT ID",
                        "EVENT TYPE",
                        "REASON",
                        "ATTEMPTS",
                        "STATUS"
                    );
                    for e in &entries {
                        let status =
                            e.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                        println!(
                            "{:>6}  {:<37} {:<36} {:<20} {:<22} {:>8} {:>6}",
                            e.sequence,
                            e.subscription_id,
                            e.event_id,
                            e.event_type,
                            e.reason,
                            e.attempts,
                            status
                        );
                    }
                }
            }
        }
        DlqCommand::Get { sequence, output } => {
            let e = dlq::get(&js, &names, sequence).await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string(&e)?),
                Output::Text => {
                    println!("sequence:     {}", e.sequence);
                    println!("subscription: {}", e.subscription_id);
                    println!("event:        {} ({})", e.event_id, e.event_type);
                    println!("reason:       {} — {}", e.reason, e.detail);
                    println!("attempts:     {}", e.attempts);
                    println!(
                        "last status:  {}",
                        e.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
                    );
                }
            }
        }
        DlqCommand::Redeliver { sequences, all, subscription } => {
            let sequences = if all {
                dlq::list(&js, &names, subscription.as_deref(), usize::MAX)
                    .await?
                    .into_iter()
                    .map(|e| e.sequence)
                    .collect()
            } else {
                sequences
            };
            let (mut ok, mut failed) = (0, 0);
            for seq in sequences {
                match dlq::redeliver(&js, &names, seq).await {
                    Ok(e) => {
                        ok += 1;
                        println!("re-queued {seq}: event {} to {}", e.event_id, e.subscription_id);
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {e}");
                    }
                }
            }
            println!("{ok} re-queued, {failed} failed");
            if failed > 0 {
                anyhow::bail!(
                    "{failed} {} could not be redelivered",
                    if failed == 1 { "entry" } else { "entries" }
                );
            }
        }
        DlqCommand::Purge { subscription } => {
            let purged = dlq::purge(&js, &names, subscription.as_deref()).await?;
            println!("purged {purged} entries");
        }
    }
    Ok(())
}
