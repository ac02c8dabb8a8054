//! `hookline subscriptions create|list|get|update|delete|activate|deactivate|rotate-secret|test|public-key`,
//! as an operator (admin scope). Works while NATS is down (lifecycle events are then skipped).

use clap::{Args, Subcommand, ValueEnum};

pub use super::test_event::NotDelivered;
use super::test_event::run_test;
use super::{Output, OutputArg};
use crate::config::Config;
use crate::ids::{EventType, EventTypeFilter, SubscriptionId, TenantId};
use crate::ops::{ListFilter, Need, Ops, Scope};
use crate::signing::KeyType;
use crate::store::subscriptions::{
    BodyFormat, Ordering, SignatureScheme, Subscription, SubscriptionInput, Validation,
};

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCommand {
    /// Create a subscription; prints its id and its secret (shown only here).
    Create {
        /// Endpoint URL (http or https; a loopback or private address needs
        /// egress.allow_cidrs).
        #[arg(long)]
        url: String,
        #[command(flatten)]
        fields: SubscriptionFields,
        #[command(flatten)]
        output: OutputArg,
    },
    /// List subscriptions (without secrets).
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Only those that receive this event type.
        #[arg(long)]
        event_type: Option<EventType>,
        /// Only active (true) or inactive (false) ones.
        #[arg(long)]
        active: Option<bool>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Show one subscription (without its secret).
    Get {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Change a subscription's url, filters, tenant or description.
    Update {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
        /// New endpoint URL (http or https).
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        fields: SubscriptionFields,
        /// Remove every event-type filter (receive all events).
        #[arg(long, conflicts_with = "event_types")]
        all_events: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Print the whpk_ public keys of an ed25519 subscription, newest first (two during a
    /// rotation's grace window; exit 4 for an hmac subscription).
    PublicKey {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Delete a subscription.
    Delete {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
    },
    /// Resume deliveries to a subscription (exit 4 if it is already active).
    Activate {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
    },
    /// Stop deliveries to a subscription (exit 4 if it is already inactive).
    Deactivate {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
    },
    /// Make a new secret; the old one keeps signing for api.secret_rotation_grace_hours.
    RotateSecret {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Send a signed webhook.test event now and print how that one attempt went (exit 1 when
    /// not delivered); never retried, never dead-lettered, filters do not apply.
    Test {
        /// The subscription's id (sub_...).
        id: SubscriptionId,
        /// The test event's payload, JSON (default {"test": true, "subscription_id": ...}).
        #[arg(long, value_parser = parse_json)]
        payload: Option<serde_json::Value>,
        #[command(flatten)]
        output: OutputArg,
    },
}

fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))
}

/// The fields `create` and `update` share.
#[derive(Debug, Args)]
pub struct SubscriptionFields {
    /// Event-type filter: exact (order.created) or NATS wildcard (order.*, order.>); repeatable.
    /// None means every event.
    #[arg(long = "event-type")]
    pub event_types: Vec<EventTypeFilter>,
    /// Tenant: the subscription then receives only events of that tenant (and tenant-less ones).
    /// With update, "" removes the tenant.
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: Option<String>,
    /// Free text.
    #[arg(long)]
    pub description: Option<String>,
    /// Signing key: hmac (v1, a whsec_ secret; the default) or ed25519 (v1a; receivers verify
    /// with the printed whpk_ public key). Fixed at create.
    #[arg(long, value_enum)]
    pub key_type: Option<KeyTypeArg>,
    /// Extra signature scheme besides Standard Webhooks; repeatable.
    #[arg(long = "signature-scheme", value_enum)]
    pub signature_schemes: Vec<SchemeArg>,
    /// POST body: the Standard Webhooks envelope, the bare payload, or a CloudEvent (structured
    /// JSON, or binary: ce-* headers and the data as the body).
    #[arg(long, value_enum)]
    pub body_format: Option<BodyFormatArg>,
    /// Most requests in flight to this endpoint at once (overrides health.max_in_flight_per_endpoint; 0 clears).
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// Most requests per second to this endpoint (overrides health.max_rps_per_endpoint; 0 = unlimited).
    #[arg(long)]
    pub max_rps: Option<u32>,
    /// Delivery order: unordered (default) or fifo (one at a time, in publish order).
    #[arg(long, value_enum)]
    pub ordering: Option<OrderingArg>,
    /// Metadata entry key=value; repeatable.
    #[arg(long = "metadata", value_parser = parse_key_value)]
    pub metadata: Vec<(String, String)>,
    /// Custom request header Name=value, sent with every delivery; repeatable. With update,
    /// replaces the whole set (values are stored like secrets and shown redacted).
    #[arg(long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Update: remove every custom header.
    #[arg(long, conflicts_with = "headers")]
    pub clear_headers: bool,
    /// This subscription's retry schedule, overriding retry.schedule: comma-separated delays,
    /// one per attempt (e.g. 0s,1m,10m); "" returns to the global schedule.
    #[arg(long, value_delimiter = ',')]
    pub retry_schedule: Option<Vec<String>>,
    /// Payload filter, a JSON document (e.g. '{"amount": {"$gt": 100}}'); '{}' removes it.
    #[arg(long, value_parser = parse_json)]
    pub filter: Option<serde_json::Value>,
    /// Endpoint validation: cloudevents (the CloudEvents webhook validation handshake runs
    /// first; a refusal leaves the subscription inactive with the reason) or none (default).
    #[arg(long, value_enum)]
    pub validation: Option<ValidationArg>,
}

/// `--validation` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidationArg {
    /// No handshake.
    None,
    /// OPTIONS <url> with WebHook-Request-Origin; active once the endpoint agrees.
    Cloudevents,
}

/// `--signature-scheme` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// X-Webhook-Signature: sha256=<hex> (+ X-Webhook-Event-Type/-ID/-Timestamp).
    WebhookSha256,
    /// X-Signature: <hex> over a canonical JSON body.
    XSignature,
}

/// `--key-type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeArg {
    /// v1: HMAC-SHA256 with a whsec_ secret.
    Hmac,
    /// v1a: Ed25519; receivers get a whpk_ public key.
    Ed25519,
}

/// `--ordering` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderingArg {
    /// Concurrent deliveries; retries do not block later events.
    Unordered,
    /// One delivery at a time in publish order.
    Fifo,
}

/// `--body-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BodyFormatArg {
    /// `{"type", "timestamp", "data"}` (Standard Webhooks).
    Envelope,
    /// The event's payload alone.
    Payload,
    /// A structured CloudEvent (application/cloudevents+json).
    Cloudevents,
    /// A binary CloudEvent: ce-* headers, the data as the body.
    CloudeventsBinary,
}

/// A tenant id, or "" (update: no tenant).
fn parse_tenant(s: &str) -> Result<String, crate::ids::InvalidId> {
    if s.is_empty() { Ok(String::new()) } else { TenantId::parse(s).map(TenantId::into_string) }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

impl SubscriptionFields {
    fn into_input(self, url: Option<String>, clear_types: bool) -> SubscriptionInput {
        let types = if clear_types {
            Some(Vec::new())
        } else if self.event_types.is_empty() {
            None
        } else {
            Some(self.event_types.into_iter().map(EventTypeFilter::into_string).collect())
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
            url,
            event_types: types,
            tenant_id: self.tenant,
            description: self.description,
            metadata: (!self.metadata.is_empty()).then(|| self.metadata.into_iter().collect()),
            active: None,
            signature_schemes: schemes,
            key_type: self.key_type.map(|k| match k {
                KeyTypeArg::Hmac => KeyType::Hmac,
                KeyTypeArg::Ed25519 => KeyType::Ed25519,
            }),
            body_format: self.body_format.map(|f| match f {
                BodyFormatArg::Envelope => BodyFormat::Envelope,
                BodyFormatArg::Payload => BodyFormat::Payload,
                BodyFormatArg::Cloudevents => BodyFormat::Cloudevents,
                BodyFormatArg::CloudeventsBinary => BodyFormat::CloudeventsBinary,
            }),
            max_in_flight: self.max_in_flight,
            max_rps: self.max_rps,
            ordering: self.ordering.map(|o| match o {
                OrderingArg::Unordered => Ordering::Unordered,
                OrderingArg::Fifo => Ordering::Fifo,
            }),
            filter: self.filter,
            validation: self.validation.map(|v| match v {
                ValidationArg::None => Validation::None,
                ValidationArg::Cloudevents => Validation::Cloudevents,
            }),
            retry_schedule: self
                .retry_schedule
                .map(|s| s.into_iter().filter(|d| !d.trim().is_empty()).collect()),
            headers: if self.clear_headers {
                Some(Default::default())
            } else {
                (!self.headers.is_empty()).then(|| self.headers.into_iter().collect())
            },
        }
    }
}

/// Runs one `subscriptions` subcommand.
pub async fn run(cmd: SubscriptionsCommand, config: Config) -> anyhow::Result<()> {
    if let SubscriptionsCommand::Test { id, payload, output } = cmd {
        return run_test(config, &id, payload, output.output).await;
    }
    let ops = Ops::connect(config, Need::Subscriptions).await?;
    let admin = Scope::Admin;
    match cmd {
        // Handled above: it needs the HTTP client and the attempt log.
        SubscriptionsCommand::Test { .. } => {}
        SubscriptionsCommand::Create { url, fields, output } => {
            let sub = ops.create_subscription(&admin, fields.into_input(Some(url), false)).await?;
            match output.output {
                Output::Json => {
                    let mut value = serde_json::to_value(&sub)?;
                    if sub.key_type == KeyType::Hmac {
                        value["secret"] = sub.current_secret().expose().into();
                    }
                    println!("{value}");
                }
                Output::Text if sub.key_type == KeyType::Ed25519 => {
                    print_subscription(&sub);
                    println!("(receivers verify v1a signatures with the public key)");
                }
                Output::Text => {
                    print_subscription(&sub);
                    println!("secret:      {}", sub.current_secret().expose());
                    println!("(the secret is shown only now; receivers verify signatures with it)");
                }
            }
        }
        SubscriptionsCommand::List { tenant, event_type, active, output } => {
            let filter = ListFilter { tenant_id: tenant, event_type, active };
            let subs = ops.list_subscriptions(&admin, &filter).await?;
            match output.output {
                Output::Json => println!("{}", serde_json::to_string(&subs)?),
                Output::Text if subs.is_empty() => println!("no subscriptions"),
                Output::Text => print_table(&subs),
            }
        }
        SubscriptionsCommand::Get { id, output } => {
            show(&ops.get_subscription(&admin, &id).await?, output.output)?;
        }
        SubscriptionsCommand::Update { id, url, fields, all_events, output } => {
            let input = fields.into_input(url, all_events);
            show(&ops.update_subscription(&admin, &id, input).await?, output.output)?;
        }
        SubscriptionsCommand::PublicKey { id, output } => {
            let (_, keys) = ops.public_keys(&admin, &id).await?;
            match output.output {
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"id": id, "public_key": keys[0], "public_keys": keys})
                ),
                Output::Text => keys.iter().for_each(|k| println!("{k}")),
            }
        }
        SubscriptionsCommand::Delete { id } => {
            ops.delete_subscription(&admin, &id).await?;
            println!("deleted {id}");
        }
        SubscriptionsCommand::Activate { id } => {
            ops.set_active(&admin, &id, true).await?;
            println!("activated {id}");
        }
        SubscriptionsCommand::Deactivate { id } => {
            ops.set_active(&admin, &id, false).await?;
            println!("deactivated {id}");
        }
        SubscriptionsCommand::RotateSecret { id, output } => {
            let sub = ops.rotate_secret(&admin, &id).await?;
            match output.output {
                Output::Json if sub.key_type == KeyType::Ed25519 => {
                    println!("{}", serde_json::json!({"id": sub.id, "public_key": sub.public_key}))
                }
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"id": sub.id, "secret": sub.current_secret().expose()})
                ),
                Output::Text => {
                    match &sub.public_key {
                        Some(key) => println!("new public key: {key}"),
                        None => println!("new secret:  {}", sub.current_secret().expose()),
                    }
                    println!(
                        "(the previous secret keeps signing for {} hours)",
                        ops.config().api.secret_rotation_grace_hours
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

fn print_table(subs: &[Subscription]) {
    println!("{:<37} {:<8} {:<12} {:<24} URL", "ID", "ACTIVE", "TENANT", "EVENT TYPES");
    for s in subs {
        let types =
            if s.event_types.is_empty() { "*all*".to_string() } else { s.event_types.join(",") };
        let tenant = s.tenant_id.as_deref().unwrap_or("-");
        println!("{:<37} {:<8} {:<12} {:<24} {}", s.id, s.active, tenant, types, s.url);
    }
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
    if let Some(reason) = &s.disabled_reason {
        println!("inactive:    {reason}");
    }
    if let Some(status) = s.handshake.status {
        let rate = s.handshake.allowed_rate.map_or(String::new(), |n| format!(", {n}/min"));
        println!("validation:  cloudevents, {}{rate}", status.as_str());
    }
    if let Some(key) = &s.public_key {
        println!("public key:  {key} (ed25519, v1a signatures)");
    }
    if let Some(filter) = &s.filter {
        println!("filter:      {}", filter.document());
    }
    if let Some(schedule) = &s.retry_schedule {
        let text = crate::store::subscriptions::schedule_strings(schedule).join(", ");
        println!("retries:     {text}");
    }
    if !s.headers.is_empty() {
        let names: Vec<&str> = s.headers.0.keys().map(String::as_str).collect();
        println!("headers:     {} (values redacted)", names.join(", "));
    }
    println!("created at:  {}", crate::pipeline::headers::rfc3339(s.created_at));
}
