//! Egress control (SSRF protection): which endpoints deliveries may reach. On by default.
//!
//! One policy ([`EgressPolicy`], from `[egress]`), two checkpoints:
//! - **subscription create/update** ([`EgressPolicy::check_endpoint`]): the scheme (http or
//!   https; https only when `egress.https_only`), an IP-literal host against the classifier in
//!   [`crate::ip_ranges`], a name resolved once and refused when any of its addresses is
//!   blocked. The store turns a refusal into `invalid url` naming `url` (API 400, CLI exit 2).
//! - **every delivery** ([`client::guard`], installed on the shared reqwest client by
//!   [`client::http_client`]): reqwest's resolver is replaced by one that resolves
//!   once, drops blocked addresses and hands only the checked ones to the connector, so the
//!   address connected to is the address checked (no second lookup: no DNS-rebinding window).
//!   IP-literal hosts, which reqwest connects to without asking a resolver, are checked per
//!   request by the client's proxy hook; a blocked one is routed to an unresolvable sentinel,
//!   so the attempt fails with `ssrf_blocked: ...` before any connection is opened. Redirects
//!   are never followed (the client's policy), so a 3xx cannot lead anywhere else.
//!
//! `egress.allow_cidrs` exempts networks (tests and local development allow 127.0.0.0/8).
//! With `egress.proxy` set, every delivery goes through that proxy and the proxy resolves
//! names: hookline still refuses blocked IP literals and schemes; run a proxy that filters
//! destinations (e.g. smokescreen) for the rest. System proxy variables (`HTTPS_PROXY`, ...)
//! are ignored, since they would bypass the checks.

pub mod client;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::EgressConfig;
pub use crate::config::EgressConfigError;
pub use crate::ip_ranges::{Cidr, not_public};

/// The DLQ / attempt-log reason of a delivery refused by egress control.
pub const BLOCKED_REASON: &str = "ssrf_blocked";

/// How long a subscription create/update waits for DNS before accepting the name unchecked (it
/// is checked again at every delivery).
const CREATE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an endpoint or a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("scheme {0:?} is not allowed: only http and https")]
    Scheme(String),
    #[error("only https endpoints are allowed (egress.https_only)")]
    HttpsOnly,
    /// The destination is not public and not allow-listed.
    #[error("ssrf_blocked: {target} is {why}; allow it with egress.allow_cidrs if intended")]
    Blocked { target: String, why: String },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("resolving {host}: {error}")]
    Lookup { host: String, error: String },
}

/// A DNS lookup: system by default, injectable for tests and embedders.
pub trait Lookup: Send + Sync + 'static {
    /// Every address `host` resolves to.
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver (getaddrinfo on a blocking thread), as reqwest's default uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect())
        })
    }
}

/// Where deliveries may go. `Default` is the strict policy: protection on, nothing allowed
/// beyond public addresses, direct connections, system DNS.
#[derive(Clone)]
pub struct EgressPolicy {
    protect: bool,
    https_only: bool,
    allow: Vec<Cidr>,
    proxy: Option<url::Url>,
    lookup: Arc<dyn Lookup>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy {
            protect: true,
            https_only: false,
            allow: Vec::new(),
            proxy: None,
            lookup: Arc::new(SystemLookup),
        }
    }
}

impl std::fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressPolicy")
            .field("protect", &self.protect)
            .field("https_only", &self.https_only)
            .field("allow", &self.allow)
            .field("proxy", &self.proxy.as_ref().map(|_| "[set]"))
            .finish()
    }
}

impl EgressPolicy {
    /// The policy `[egress]` describes (its values are parsed by [`EgressConfig`], which
    /// configuration loading has already checked).
    pub fn from_config(config: &EgressConfig) -> Result<EgressPolicy, EgressConfigError> {
        Ok(EgressPolicy {
            protect: config.ssrf_protection,
            https_only: config.https_only,
            allow: config.allowed_networks()?,
            proxy: config.proxy_url()?,
            ..Default::default()
        })
    }

    /// No address checks at all (schemes are still checked): for embedders on a trusted network.
    pub fn unrestricted() -> EgressPolicy {
        EgressPolicy { protect: false, ..Default::default() }
    }

    /// The same policy with its DNS answers taken from `lookup`.
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> EgressPolicy {
        self.lookup = lookup;
        self
    }

    /// The same policy with `cidr` reachable as well.
    pub fn allowing(mut self, cidr: Cidr) -> EgressPolicy {
        self.allow.push(cidr);
        self
    }

    /// The configured egress proxy, if any.
    pub fn proxy(&self) -> Option<&url::Url> {
        self.proxy.as_ref()
    }

    /// Whether https is required.
    pub fn https_only(&self) -> bool {
        self.https_only
    }

    /// `Err(why)` when a connection to `ip` is refused.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if !self.protect || self.allow.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        match not_public(ip) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Scheme and IP-literal checks: everything that needs no DNS.
    pub fn check_static(&self, url: &url::Url) -> Result<(), EgressError> {
        match url.scheme() {
            "https" => {}
            "http" if self.https_only => return Err(EgressError::HttpsOnly),
            "http" => {}
            other => return Err(EgressError::Scheme(other.to_string())),
        }
        if let Some(ip) = literal_ip(url) {
            self.check_ip(ip)
                .map_err(|why| EgressError::Blocked { target: format!("address {ip}"), why })?;
        }
        Ok(())
    }

    /// The subscription-time check of an endpoint URL: [`check_static`](Self::check_static),
    /// then (without a proxy) the name resolved once, refused if any address is blocked. A
    /// name that does not resolve now is accepted: every delivery checks again.
    pub async fn check_endpoint(&self, raw: &str) -> Result<(), EgressError> {
        let url = url::Url::parse(raw)
            .map_err(|e| EgressError::Lookup { host: raw.to_string(), error: e.to_string() })?;
        self.check_static(&url)?;
        let Some(url::Host::Domain(host)) = url.host() else { return Ok(()) };
        if !self.protect || self.proxy.is_some() {
            return Ok(());
        }
        let addrs = match tokio::time::timeout(
            CREATE_LOOKUP_TIMEOUT,
            self.lookup.lookup(host.to_string()),
        )
        .await
        {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                tracing::debug!(host, error = %e, "endpoint name does not resolve now; checked again at delivery");
                return Ok(());
            }
            Err(_) => {
                tracing::debug!(host, "endpoint name lookup timed out; checked again at delivery");
                return Ok(());
            }
        };
        for ip in addrs {
            self.check_ip(ip).map_err(|why| EgressError::Blocked {
                target: format!("{host} (resolves to {ip})"),
                why,
            })?;
        }
        Ok(())
    }

    /// The delivery-time lookup: resolves `host` once and returns only the addresses that may
    /// be connected to; `Blocked` when none remains.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, EgressError> {
        if let Some(ip) = client::sentinel_ip(host) {
            let why = self.check_ip(ip).err().unwrap_or_else(|| "refused".into());
            return Err(EgressError::Blocked { target: format!("address {ip}"), why });
        }
        let lookup_error = |e: std::io::Error| EgressError::Lookup {
            host: host.to_string(),
            error: e.to_string(),
        };
        let addrs = self.lookup.lookup(host.to_string()).await.map_err(lookup_error)?;
        let trusted = self
            .proxy
            .as_ref()
            .and_then(|p| p.host_str())
            .is_some_and(|p| p.eq_ignore_ascii_case(host));
        if trusted {
            return Ok(addrs);
        }
        let mut refused = None;
        let allowed: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|ip| match self.check_ip(*ip) {
                Ok(()) => true,
                Err(why) => {
                    refused.get_or_insert((*ip, why));
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (false, Some((ip, why))) => {
                tracing::warn!(host, %ip, why, "dropped blocked addresses from the DNS answer; connecting to the others");
                Ok(allowed)
            }
            (false, None) => Ok(allowed),
            (true, Some((ip, why))) => {
                Err(EgressError::Blocked { target: format!("{host} (resolves to {ip})"), why })
            }
            (true, None) => Err(EgressError::NoAddress(host.to_string())),
        }
    }
}

/// The URL's host when it is an IP literal.
pub fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// The `ssrf_blocked: ...` text when `error` (or any error it wraps) is an egress refusal, e.g.
/// to dead-letter a delivery at once with reason [`BLOCKED_REASON`].
pub fn blocked_detail(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(blocked @ EgressError::Blocked { .. }) = e.downcast_ref::<EgressError>() {
            return Some(blocked.to_string());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Answers from a fixed table; unknown names fail.
    struct Table(HashMap<&'static str, Vec<IpAddr>>);

    impl Lookup for Table {
        fn lookup(
            &self,
            host: String,
        ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
            let found = self.0.get(host.as_str()).cloned();
            Box::pin(async move { found.ok_or_else(|| std::io::Error::other("no such host")) })
        }
    }

    fn policy() -> EgressPolicy {
        let ips = |list: &[&str]| list.iter().map(|s| s.parse().unwrap()).collect::<Vec<IpAddr>>();
        let table = Table(HashMap::from([
            ("public.test", ips(&["93.184.216.34"])),
            ("metadata.test", ips(&["169.254.169.254"])),
            ("mixed.test", ips(&["10.0.0.5", "93.184.216.34"])),
            ("loop.test", ips(&["127.0.0.1"])),
        ]));
        EgressPolicy::default().with_lookup(Arc::new(table))
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn endpoints_are_checked_by_scheme_literal_and_resolved_name() {
        let p = policy();
        block_on(async {
            assert_eq!(p.check_endpoint("https://public.test/hook").await, Ok(()));
            assert_eq!(p.check_endpoint("https://8.8.8.8/hook").await, Ok(()));
            assert_eq!(
                p.check_endpoint("https://unknown.test/hook").await,
                Ok(()),
                "unresolvable now: checked at delivery"
            );
            for bad in [
                "http://127.0.0.1:8080/",
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/",
                "http://[::ffff:10.0.0.1]/",
                "http://[64:ff9b::c0a8:1]/",
                "http://[fd00::1]/",
                "http://0x7f.1/",
                "http://2130706433/",
                "http://metadata.test/",
                "http://mixed.test/",
                "http://loop.test/",
            ] {
                let err = p.check_endpoint(bad).await.unwrap_err();
                assert!(matches!(err, EgressError::Blocked { .. }), "{bad}: {err}");
                assert!(err.to_string().starts_with("ssrf_blocked: "), "{err}");
            }
            assert_eq!(
                p.check_endpoint("ftp://public.test/").await,
                Err(EgressError::Scheme("ftp".into()))
            );
            assert!(matches!(
                p.check_endpoint("file:///etc/passwd").await,
                Err(EgressError::Scheme(_))
            ));
        });
    }

    #[test]
    fn allow_list_https_only_and_unrestricted_change_the_verdict() {
        let allowed = policy().allowing(Cidr::parse("127.0.0.0/8").unwrap());
        block_on(async {
            assert_eq!(allowed.check_endpoint("http://127.0.0.1:9/").await, Ok(()));
            assert_eq!(allowed.check_endpoint("http://loop.test/").await, Ok(()));
            assert!(allowed.check_endpoint("http://10.0.0.1/").await.is_err());
            let mut https = policy();
            https.https_only = true;
            assert_eq!(
                https.check_endpoint("http://public.test/").await,
                Err(EgressError::HttpsOnly)
            );
            assert_eq!(https.check_endpoint("https://public.test/").await, Ok(()));
            let open = EgressPolicy::unrestricted();
            assert_eq!(open.check_endpoint("http://10.0.0.1/").await, Ok(()));
            assert!(open.check_endpoint("gopher://10.0.0.1/").await.is_err());
        });
    }

    #[test]
    fn delivery_lookup_keeps_only_checked_addresses() {
        let p = policy();
        block_on(async {
            assert_eq!(p.resolve("mixed.test").await, Ok(vec!["93.184.216.34".parse().unwrap()]));
            let err = p.resolve("metadata.test").await.unwrap_err();
            assert!(
                err.to_string().contains("169.254.169.254")
                    && err.to_string().contains("link-local"),
                "{err}"
            );
            assert!(matches!(p.resolve("unknown.test").await, Err(EgressError::Lookup { .. })));
            let ip: IpAddr = "10.1.2.3".parse().unwrap();
            let err = p.resolve(&client::sentinel_host(ip)).await.unwrap_err();
            assert!(err.to_string().contains("address 10.1.2.3 is private"), "{err}");
        });
    }

    #[test]
    fn config_values_are_validated_with_their_key() {
        let mut c = EgressConfig {
            ssrf_protection: true,
            https_only: false,
            allow_cidrs: vec!["10.0.0.0/33".into()],
            proxy: Default::default(),
        };
        assert!(
            EgressPolicy::from_config(&c)
                .unwrap_err()
                .to_string()
                .starts_with("egress.allow_cidrs")
        );
        c.allow_cidrs = vec!["10.0.0.0/8".into()];
        c.proxy = crate::config::Redacted("socks5://proxy:1080".into());
        assert!(EgressPolicy::from_config(&c).unwrap_err().to_string().starts_with("egress.proxy"));
        c.proxy = crate::config::Redacted("http://user:pw@proxy.internal:3128".into());
        let p = EgressPolicy::from_config(&c).unwrap();
        assert!(!format!("{p:?}").contains("pw"), "{p:?}");
    }

    #[test]
    fn blocked_detail_finds_the_refusal_inside_wrapping_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Wrapper(#[source] EgressError);
        let inner =
            EgressError::Blocked { target: "address 10.0.0.1".into(), why: "private".into() };
        let detail = blocked_detail(&Wrapper(inner)).unwrap();
        assert!(detail.starts_with("ssrf_blocked: address 10.0.0.1"), "{detail}");
        assert_eq!(blocked_detail(&Wrapper(EgressError::HttpsOnly)), None);
    }
}
