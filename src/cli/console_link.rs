//! `hookline console-link [--tenant T] [--ttl 1h] [--base-url URL]`: prints a signed, expiring
//! link to the web console (the admin console, or one tenant's portal), like
//! `POST /v1/console-links`. Signs locally with `api.console_link_key`; connects nothing.

use std::time::Duration;

use super::{Output, OutputArg};
use crate::config::Config;
use crate::ids::TenantId;
use crate::ops::{ConsoleLinkRequest, Scope};

#[derive(Debug, clap::Args)]
pub struct ConsoleLinkArgs {
    /// Open this tenant's portal; default: the admin console.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// Lifetime, e.g. 15m, 1h (at most api.console_link_max_ttl).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub ttl: Duration,
    /// Where hookline's API is reached; default: api.console_public_url, else api.listen.
    #[arg(long)]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub output: OutputArg,
}

/// Prints the link (and its expiry).
pub async fn run(args: ConsoleLinkArgs, config: Config) -> anyhow::Result<()> {
    let base = match args.base_url {
        Some(b) => b,
        None if !config.api.console_public_url.is_empty() => config.api.console_public_url.clone(),
        None => format!("http://{}", config.api.listen),
    };
    let request = ConsoleLinkRequest { tenant_id: args.tenant, ttl: Some(args.ttl) };
    let link = crate::ops::console_link(&config, &Scope::Admin, request, &base)?;
    if args.output.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&link)?);
    } else {
        println!("{}", link.url);
        println!("expires at {}", crate::pipeline::headers::rfc3339(link.expires_at));
    }
    Ok(())
}
