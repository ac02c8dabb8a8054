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

/// A token from an example or a template (`change-me-0123456789` was compose/'s built-in
/// default): published, so it protects nothing.
fn is_placeholder_token(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    ["change-me", "changeme", "change_me"].iter().any(|p| lower.starts_with(p))
}
