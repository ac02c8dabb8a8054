//! `[egress]`: where deliveries may go, parsed here (CIDRs, proxy URL) and applied by
//! [`crate::egress`].

use serde::Deserialize;

use super::{ConfigError, Redacted, invalid};
use crate::ip_ranges::{BadCidr, Cidr};

/// `[egress]`: where deliveries may go (SSRF protection; see [`crate::egress`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Refuse endpoints whose address is not public (loopback, private, link-local, ...).
    pub ssrf_protection: bool,
    /// Refuse http:// endpoints.
    pub https_only: bool,
    /// Networks reachable despite `ssrf_protection`, e.g. `127.0.0.0/8` for local development.
    pub allow_cidrs: Vec<String>,
    /// HTTP(S) proxy every delivery goes through; empty means direct. May carry credentials.
    pub proxy: Redacted,
}

/// An `[egress]` value that cannot be used; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressConfigError {
    #[error("egress.allow_cidrs: {0}")]
    Cidr(#[from] BadCidr),
    #[error("egress.proxy: {0}")]
    Proxy(String),
}

impl EgressConfig {
    /// `allow_cidrs`, parsed.
    pub fn allowed_networks(&self) -> Result<Vec<Cidr>, EgressConfigError> {
        Ok(self.allow_cidrs.iter().map(|c| Cidr::parse(c)).collect::<Result<Vec<_>, _>>()?)
    }

    /// `proxy`, parsed: `None` for direct connections.
    pub fn proxy_url(&self) -> Result<Option<url::Url>, EgressConfigError> {
        let raw = self.proxy.0.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let url = url::Url::parse(raw)
            .map_err(|e| EgressConfigError::Proxy(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(EgressConfigError::Proxy(
                "must be an http:// or https:// URL with a host".into(),
            ));
        }
        Ok(Some(url))
    }

    /// Checks the section's values; the error names the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.allowed_networks().and_then(|_| self.proxy_url()) {
            Err(EgressConfigError::Cidr(e)) => Err(invalid("egress.allow_cidrs", e.to_string())),
            Err(EgressConfigError::Proxy(e)) => Err(invalid("egress.proxy", e)),
            Ok(_) => Ok(()),
        }
    }
}
