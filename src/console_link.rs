//! Console links: the signed, expiring credential that opens the web console (`/console`),
//! pure (no I/O).
//!
//! A link is `<base>/console#t=<token>`: the token travels in the URL fragment, which browsers
//! never send to a server, so it stays out of access logs and `Referer` headers. The console
//! sends it back as `Authorization: Bearer <token>`, and the admin API accepts it with exactly
//! the rights of its tenant (or of an admin token without one) until it expires.
//!
//! Token: `hlc1.<base64url tenant>.<expiry, unix seconds>.<base64url HMAC-SHA256>`, the MAC
//! keyed by `api.console_link_key` over everything before the last dot. Invariant: a token
//! whose MAC does not verify is refused before any of its fields is trusted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::ids::TenantId;

type HmacSha256 = Hmac<Sha256>;

/// Every console token starts with this (static API tokens never do in practice, and a token
/// that does but does not verify is simply refused).
pub const PREFIX: &str = "hlc1.";

/// Why a token was refused; the API answers 401 for all of them alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("console link is malformed")]
    Malformed,
    #[error("console link signature does not verify")]
    BadSignature,
    #[error("console link expired")]
    Expired,
}

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    /// `None`: the admin console.
    pub tenant: Option<TenantId>,
    /// Unix seconds after which the token is refused.
    pub expires_at: i64,
}

fn mac(key: &str, signed: &str) -> HmacSha256 {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("hmac accepts any key length");
    mac.update(signed.as_bytes());
    mac
}

/// Signs a token for `tenant` (none: admin) that expires at `expires_at` (unix seconds).
pub fn sign(key: &str, tenant: Option<&TenantId>, expires_at: i64) -> String {
    let tenant = B64.encode(tenant.map(TenantId::as_str).unwrap_or("").as_bytes());
    let signed = format!("{PREFIX}{tenant}.{expires_at}");
    let tag = B64.encode(mac(key, &signed).finalize().into_bytes());
    format!("{signed}.{tag}")
}

/// Checks `token`'s signature with `key`, then its expiry against `now` (unix seconds).
pub fn verify(key: &str, token: &str, now: i64) -> Result<LinkClaims, LinkError> {
    if key.is_empty() || !token.starts_with(PREFIX) {
        return Err(LinkError::Malformed);
    }
    let (signed, tag) = token.rsplit_once('.').ok_or(LinkError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| LinkError::Malformed)?;
    mac(key, signed).verify_slice(&tag).map_err(|_| LinkError::BadSignature)?;
    let mut parts = signed[PREFIX.len()..].split('.');
    let (Some(tenant), Some(exp), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(LinkError::Malformed);
    };
    let expires_at: i64 = exp.parse().map_err(|_| LinkError::Malformed)?;
    if now >= expires_at {
        return Err(LinkError::Expired);
    }
    let tenant = B64.decode(tenant).map_err(|_| LinkError::Malformed)?;
    let tenant = String::from_utf8(tenant).map_err(|_| LinkError::Malformed)?;
    let tenant = match tenant.as_str() {
        "" => None,
        t => Some(TenantId::parse(t).map_err(|_| LinkError::Malformed)?),
    };
    Ok(LinkClaims { tenant, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a-console-link-key-of-32-chars-ok";

    #[test]
    fn a_signed_token_verifies_with_its_tenant_and_expiry_until_it_expires() {
        let acme: TenantId = "acme.eu:1".parse().unwrap();
        let t = sign(KEY, Some(&acme), 1_000);
        assert_eq!(
            verify(KEY, &t, 999).unwrap(),
            LinkClaims { tenant: Some(acme), expires_at: 1_000 }
        );
        assert_eq!(verify(KEY, &t, 1_000), Err(LinkError::Expired));
        let admin = sign(KEY, None, 1_000);
        assert_eq!(verify(KEY, &admin, 0).unwrap().tenant, None);
    }

    #[test]
    fn an_altered_token_or_another_key_is_refused() {
        let acme: TenantId = "acme".parse().unwrap();
        let t = sign(KEY, Some(&acme), 1_000);
        let globex = t.replacen(&B64.encode("acme"), &B64.encode("globex"), 1);
        assert_eq!(verify(KEY, &globex, 0), Err(LinkError::BadSignature));
        let later = t.replacen(".1000.", ".9999.", 1);
        assert_eq!(verify(KEY, &later, 0), Err(LinkError::BadSignature));
        assert_eq!(
            verify("another-key-of-32-characters-long", &t, 0),
            Err(LinkError::BadSignature)
        );
        assert_eq!(verify(KEY, "hlc1.x", 0), Err(LinkError::Malformed));
        assert_eq!(verify(KEY, "admin-token-0123456789", 0), Err(LinkError::Malformed));
        assert_eq!(verify("", &t, 0), Err(LinkError::Malformed));
    }
}
