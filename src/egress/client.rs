//! The delivery-time half of egress control: the shared HTTP client of every delivery
//! ([`http_client`]) and what [`guard`] installs on it.
//!
//! - A resolver ([`GuardedResolver`]) that resolves each name once per new connection through
//!   [`EgressPolicy::resolve`] and gives the connector only the addresses that passed, so the
//!   connection goes to a checked address and no second lookup can answer differently.
//! - A per-request routing hook (reqwest's custom proxy): reqwest connects to IP-literal hosts
//!   without asking the resolver, so the hook checks them; a blocked literal is routed to a
//!   sentinel host under `.invalid` (RFC 6761, never resolvable) that the resolver turns into
//!   `ssrf_blocked: ...` — no connection is ever opened. Otherwise the hook returns the
//!   configured egress proxy, or none (direct).
//! - System proxy variables are ignored (`no_proxy`), and `https_only` is enforced by reqwest.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::EgressPolicy;
use crate::config::DeliveryConfig;

/// Suffix of the sentinel host a blocked IP literal is routed to.
const SENTINEL_SUFFIX: &str = ".ssrf-blocked.invalid";

/// `hookline/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("hookline/", env!("CARGO_PKG_VERSION"));

/// The shared HTTP client: rustls (ring), pooled keep-alive connections, HTTP/2 when offered,
/// per-request timeout, redirects never followed (a 3xx is a failed attempt), and `egress`
/// enforced on every connection ([`guard`]: checked DNS answers only, blocked IP literals
/// refused before connecting, system proxy variables ignored).
pub fn http_client(
    config: &DeliveryConfig,
    egress: Arc<EgressPolicy>,
) -> anyhow::Result<reqwest::Client> {
    crate::tls::install_provider();
    let builder = guard(reqwest::Client::builder(), egress);
    let client = builder
        .timeout(config.request_timeout)
        .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(if config.user_agent.is_empty() {
            DEFAULT_USER_AGENT.to_string()
        } else {
            config.user_agent.clone()
        })
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    Ok(client)
}

/// Installs the policy's resolver, routing hook, proxy and https-only rule on `builder`.
pub fn guard(builder: reqwest::ClientBuilder, policy: Arc<EgressPolicy>) -> reqwest::ClientBuilder {
    let builder = builder.no_proxy().https_only(policy.https_only());
    if !policy.protect {
        return match policy.proxy() {
            Some(proxy) => {
                let proxy = proxy.clone();
                builder.proxy(reqwest::Proxy::custom(move |_| Some(proxy.clone())))
            }
            None => builder,
        };
    }
    let route = policy.clone();
    builder
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .proxy(reqwest::Proxy::custom(move |url| route_request(&route, url)))
}

/// Where one request's connection goes: the sentinel for a blocked literal, else the proxy
/// (or `None`: direct).
fn route_request(policy: &EgressPolicy, url: &url::Url) -> Option<url::Url> {
    if let Some(ip) = super::literal_ip(url)
        && policy.check_ip(ip).is_err()
    {
        return url::Url::parse(&format!("http://{}:9/", sentinel_host(ip))).ok();
    }
    policy.proxy().cloned()
}

/// `<hex of the address>.ssrf-blocked.invalid`.
pub(crate) fn sentinel_host(ip: IpAddr) -> String {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    format!("{}{SENTINEL_SUFFIX}", hex::encode(bytes))
}

/// The address a sentinel host stands for.
pub(crate) fn sentinel_ip(host: &str) -> Option<IpAddr> {
    let bytes = hex::decode(host.strip_suffix(SENTINEL_SUFFIX)?).ok()?;
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// reqwest's resolver, replaced: one lookup, blocked addresses dropped.
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = policy.resolve(&host).await?;
            let addrs: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_hosts_round_trip_both_families() {
        for ip in ["10.0.0.1", "169.254.169.254", "::1", "fd00::1234"] {
            let ip: IpAddr = ip.parse().unwrap();
            let host = sentinel_host(ip);
            assert!(host.ends_with(".invalid"), "{host}");
            assert_eq!(sentinel_ip(&host), Some(ip));
        }
        assert_eq!(sentinel_ip("example.com"), None);
        assert_eq!(sentinel_ip("zz.ssrf-blocked.invalid"), None);
        assert_eq!(sentinel_ip("0a00.ssrf-blocked.invalid"), None);
    }

    #[test]
    fn requests_to_blocked_literals_are_routed_to_the_sentinel_and_others_direct() {
        let policy = EgressPolicy::default();
        let to = |u: &str| {
            route_request(&policy, &url::Url::parse(u).unwrap())
                .map(|u| u.host_str().unwrap_or_default().to_string())
        };
        assert_eq!(
            to("http://169.254.169.254/x"),
            Some(sentinel_host("169.254.169.254".parse().unwrap()))
        );
        assert_eq!(to("http://[::1]:8080/"), Some(sentinel_host("::1".parse().unwrap())));
        assert_eq!(to("https://93.184.216.34/"), None);
        assert_eq!(to("https://example.com/"), None, "names are checked by the resolver");
    }
}
