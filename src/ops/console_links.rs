//! Console links: a signed, expiring URL that opens the web console with the rights of one
//! tenant (or an admin's without one). Admin only; the signing itself is
//! [`crate::console_link`]. Needs no backend, so the CLI makes links without connecting.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Ops, OpsError, Scope};
use crate::config::Config;
use crate::ids::TenantId;

/// A link's lifetime when none is asked for.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// What a link is asked for.
#[derive(Debug, Clone, Default)]
pub struct ConsoleLinkRequest {
    /// The tenant whose portal the link opens; none: the admin console.
    pub tenant_id: Option<TenantId>,
    /// Lifetime (default [`DEFAULT_TTL`], at most `api.console_link_max_ttl`).
    pub ttl: Option<Duration>,
}

/// A made link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConsoleLink {
    /// `<base>/console#t=<token>`: the token is in the fragment, never sent to a server.
    pub url: String,
    /// When the link stops working (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Ops {
    /// Makes a console link under `base` (e.g. `https://hooks.example.com`); admin only.
    pub fn console_link(
        &self,
        scope: &Scope,
        request: ConsoleLinkRequest,
        base: &str,
    ) -> Result<ConsoleLink, OpsError> {
        console_link(&self.config, scope, request, base)
    }
}

/// [`Ops::console_link`] without an [`Ops`] (the CLI connects nothing for it).
pub fn console_link(
    config: &Config,
    scope: &Scope,
    request: ConsoleLinkRequest,
    base: &str,
) -> Result<ConsoleLink, OpsError> {
    if *scope != Scope::Admin {
        return Err(OpsError::NotFound("console links are made with an admin token".into()));
    }
    let key = &config.api.console_link_key.0;
    if key.is_empty() {
        return Err(OpsError::Unprocessable {
            code: "console_links_disabled",
            message: "console links are off: set api.console_link_key (at least 32 characters)"
                .into(),
        });
    }
    let ttl = request.ttl.unwrap_or(DEFAULT_TTL);
    let max = config.api.console_link_max_ttl;
    if ttl < Duration::from_secs(1) || ttl > max {
        return Err(OpsError::invalid(
            "ttl",
            format!(
                "ttl must be between 1s and {} (api.console_link_max_ttl)",
                humantime::format_duration(max)
            ),
        ));
    }
    let expires_at = OffsetDateTime::now_utc() + ttl;
    let expires_at = expires_at.replace_nanosecond(0).unwrap_or(expires_at);
    let token =
        crate::console_link::sign(key, request.tenant_id.as_ref(), expires_at.unix_timestamp());
    let base = base.trim_end_matches('/');
    Ok(ConsoleLink { url: format!("{base}/console#t={token}"), expires_at })
}
