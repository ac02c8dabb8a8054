//! `[api]`: the admin HTTP API: listen address, tokens (never printed by `Debug`), limits.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Redacted, invalid};

/// A bearer token limited to one tenant.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantToken {
    pub tenant: String,
    pub token: String,
}

impl std::fmt::Debug for TenantToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantToken")
            .field("tenant", &self.tenant)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// `[api]`: the admin HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: std::net::SocketAddr,
    /// Tokens with full access.
    pub admin_tokens: Vec<Redacted>,
    /// Tokens limited to a tenant.
    pub tenant_tokens: Vec<TenantToken>,
    /// Request body limit.
    pub body_limit_bytes: usize,
    /// Grace window of a rotated-out secret, hours (fractions allowed).
    pub secret_rotation_grace_hours: f64,
    /// Key that signs console links (`POST /v1/console-links`); empty: links are refused.
    pub console_link_key: Redacted,
    /// Longest lifetime a console link may be given.
    #[serde(with = "humantime_serde")]
    pub console_link_max_ttl: Duration,
    /// Base URL of the links (`<base>/console#t=...`); empty: the request's `Host`.
    pub console_public_url: String,
    /// CSP `frame-ancestors` sources of `/console` (who may embed it in a frame).
    pub console_frame_ancestors: Vec<String>,
    /// Accent colour of the console, `#rgb` or `#rrggbb`.
    pub console_theme_color: String,
    /// Logo shown in the console's header (http or https URL); empty: none.
    pub console_logo_url: String,
}

impl ApiConfig {
    /// The grace window as a duration.
    pub fn rotation_grace(&self) -> Duration {
        Duration::from_secs_f64(self.secret_rotation_grace_hours * 3600.0)
    }

    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for t in &self.tenant_tokens {
            if t.token.len() < 16 || !crate::ids::TenantId::is_valid(&t.tenant) {
                return Err(invalid(
                    "api.tenant_tokens",
                    "each entry needs a valid tenant and a token of at least 16 characters",
                ));
            }
        }
        if !(0.0..=24.0 * 365.0).contains(&self.secret_rotation_grace_hours) {
            return Err(invalid("api.secret_rotation_grace_hours", "must be between 0 and 8760"));
        }
        self.validate_console()?;
        if self.admin_tokens.iter().any(|t| t.0.len() < 16) {
            return Err(invalid("api.admin_tokens", "tokens must be at least 16 characters"));
        }
        if self.admin_tokens.iter().any(|t| is_placeholder_token(&t.0)) {
            return Err(invalid(
                "api.admin_tokens",
                "holds a placeholder token (`change-me...`) that anyone can read in the \
                 sources: set a secret of your own (env HOOKLINE_API__ADMIN_TOKENS, or \
                 HOOKLINE_ADMIN_TOKEN with compose/)",
            ));
        }
        if self.tenant_tokens.iter().any(|t| is_placeholder_token(&t.token)) {
            return Err(invalid(
                "api.tenant_tokens",
                "holds a placeholder token (`change-me...`): set a secret of your own",
            ));
        }
        Ok(())
    }
}

impl ApiConfig {
    /// The console's keys: a usable link key, a bounded TTL, CSP-safe sources, a colour.
    fn validate_console(&self) -> Result<(), ConfigError> {
        let key = &self.console_link_key.0;
        if !key.is_empty() && (key.len() < 32 || is_placeholder_token(key)) {
            return Err(invalid(
                "api.console_link_key",
                "must be empty (console links off) or a secret of at least 32 characters",
            ));
        }
        let ttl = self.console_link_max_ttl;
        if ttl < Duration::from_secs(60) || ttl > Duration::from_secs(30 * 24 * 3600) {
            return Err(invalid("api.console_link_max_ttl", "must be between 1m and 30d"));
        }
        let url_ok = |u: &str| {
            url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                && !u.contains(['\'', '"', ';', ',', ' '])
        };
        if !self.console_public_url.is_empty() && !url_ok(&self.console_public_url) {
            return Err(invalid("api.console_public_url", "must be empty or an http(s) URL"));
        }
        if !self.console_logo_url.is_empty() && !url_ok(&self.console_logo_url) {
            return Err(invalid("api.console_logo_url", "must be empty or an http(s) URL"));
        }
        let source_ok = |s: &String| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && !matches!(c, ';' | ','))
        };
        if !self.console_frame_ancestors.iter().all(source_ok) {
            return Err(invalid(
                "api.console_frame_ancestors",
                "each entry is one CSP source (e.g. \"'self'\" or \"https://app.example.com\"), \
                 without spaces, ';' or ','",
            ));
        }
        let c = self.console_theme_color.strip_prefix('#').unwrap_or("");
        if !matches!(c.len(), 3 | 6) || !c.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid("api.console_theme_color", "must be #rgb or #rrggbb"));
        }
        Ok(())
    }
}

/// A token from an example or a template (`change-me-0123456789` was compose/'s built-in
/// default): published, so it protects nothing.
fn is_placeholder_token(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    ["change-me", "changeme", "change_me"].iter().any(|p| lower.starts_with(p))
}
