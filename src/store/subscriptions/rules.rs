//! What a caller's subscription input must satisfy, field by field (the url's syntax and its
//! egress check, event-type filters, metadata, tenant); each refusal names the field.

use std::collections::{BTreeMap, BTreeSet};

use super::{SignatureScheme, SubscriptionError};
use crate::filter::EventFilter;
use crate::ids::TenantId;

/// Longest accepted endpoint URL.
const MAX_URL_LEN: usize = 2048;

/// Checks an endpoint URL's syntax: http(s), a host, no fragment, bounded length. The address
/// check (SSRF protection) follows in [`check_endpoint`], which needs the egress policy and DNS.
pub fn validate_url(url: &str) -> Result<(), SubscriptionError> {
    let bad = |why: &str| SubscriptionError::BadUrl { url: url.to_string(), why: why.to_string() };
    if url.len() > MAX_URL_LEN {
        return Err(bad("longer than 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("a host is required"));
    }
    if parsed.fragment().is_some() {
        return Err(bad("a fragment is not allowed"));
    }
    Ok(())
}

/// [`validate_url`], then the egress policy: scheme, IP literal, and the name's addresses.
pub async fn check_endpoint(
    url: &str,
    egress: &crate::egress::EgressPolicy,
) -> Result<(), SubscriptionError> {
    validate_url(url)?;
    egress
        .check_endpoint(url)
        .await
        .map_err(|e| SubscriptionError::BadUrl { url: url.to_string(), why: e.to_string() })
}

pub(super) fn validate_filters(types: &[String]) -> Result<Vec<String>, SubscriptionError> {
    let set: BTreeSet<String> = types
        .iter()
        .map(|t| EventFilter::parse(t).map(|f| f.as_str().to_string()))
        .collect::<Result<_, _>>()?;
    Ok(set.into_iter().collect())
}

pub(super) fn validate_metadata(m: &BTreeMap<String, String>) -> Result<(), SubscriptionError> {
    let ok =
        m.len() <= 32 && m.iter().all(|(k, v)| !k.is_empty() && k.len() <= 64 && v.len() <= 512);
    if ok { Ok(()) } else { Err(SubscriptionError::BadMetadata) }
}

pub(super) fn dedup_schemes(mut schemes: Vec<SignatureScheme>) -> Vec<SignatureScheme> {
    schemes.sort();
    schemes.dedup();
    schemes
}

pub(super) fn validate_tenant(tenant: &str) -> Result<(), SubscriptionError> {
    if TenantId::is_valid(tenant) {
        Ok(())
    } else {
        Err(SubscriptionError::BadTenant(tenant.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_validated() {
        assert!(validate_url("https://example.com/hook").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/").is_ok());
        for bad in ["ftp://x/", "not a url", "http://", "https://x/#frag", "mailto:a@b"] {
            assert!(validate_url(bad).is_err(), "{bad} accepted");
        }
    }
}
