//! Which IP addresses are public: the pure classifier behind SSRF protection, and [`Cidr`] for
//! the allow-list. No I/O, no crate imports: configuration parses `egress.allow_cidrs` with it,
//! [`crate::egress`] applies it (and re-exports it).
//!
//! An address is blocked when it is not a public unicast address: loopback, private (RFC 1918),
//! CGNAT, link-local (cloud metadata at 169.254.169.254 included), multicast, broadcast,
//! unspecified, reserved, benchmarking and documentation ranges, and the IPv6 equivalents (ULA,
//! link-local, site-local, discard, IETF protocol assignments such as Teredo, and anything
//! outside global unicast 2000::/3). Addresses that embed an IPv4 address (IPv4-mapped
//! `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) are judged by the
//! embedded address; deprecated IPv4-compatible `::a.b.c.d` is blocked outright.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a CIDR such as 10.0.0.0/8 or fd00::/8: {why}")]
pub struct BadCidr {
    pub text: String,
    pub why: &'static str,
}

impl Cidr {
    /// `addr/prefix`; host bits are masked off.
    pub const fn new(addr: IpAddr, prefix: u8) -> Cidr {
        Cidr { addr, prefix }
    }

    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix)
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Cidr {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr::new(IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)), prefix)
    }

    /// Parses `a.b.c.d/n`, `x:y::/n` or a bare address.
    pub fn parse(text: &str) -> Result<Cidr, BadCidr> {
        let bad = |why| BadCidr { text: text.to_string(), why };
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad("prefix length is not a number"))?
            }
            Some(_) => return Err(bad("prefix length is not a number")),
        };
        if prefix > max {
            return Err(bad("prefix length too long for the address family"));
        }
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), 32, self.prefix)
                    == masked(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 { 0 } else { bits >> (width - prefix) }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// IPv4 networks that are not public, with what they are.
const V4_BLOCKED: &[(Cidr, &str)] = &[
    (Cidr::v4(0, 0, 0, 0, 8), "\"this network\" / unspecified (0.0.0.0/8)"),
    (Cidr::v4(10, 0, 0, 0, 8), "private (RFC 1918, 10.0.0.0/8)"),
    (Cidr::v4(100, 64, 0, 0, 10), "shared address space / CGNAT (100.64.0.0/10)"),
    (Cidr::v4(127, 0, 0, 0, 8), "loopback (127.0.0.0/8)"),
    (Cidr::v4(169, 254, 0, 0, 16), "link-local, incl. cloud metadata (169.254.0.0/16)"),
    (Cidr::v4(172, 16, 0, 0, 12), "private (RFC 1918, 172.16.0.0/12)"),
    (Cidr::v4(192, 0, 0, 0, 24), "IETF protocol assignments (192.0.0.0/24)"),
    (Cidr::v4(192, 0, 2, 0, 24), "documentation (TEST-NET-1, 192.0.2.0/24)"),
    (Cidr::v4(192, 88, 99, 0, 24), "reserved (former 6to4 relay anycast, 192.88.99.0/24)"),
    (Cidr::v4(192, 168, 0, 0, 16), "private (RFC 1918, 192.168.0.0/16)"),
    (Cidr::v4(198, 18, 0, 0, 15), "benchmarking (198.18.0.0/15)"),
    (Cidr::v4(198, 51, 100, 0, 24), "documentation (TEST-NET-2, 198.51.100.0/24)"),
    (Cidr::v4(203, 0, 113, 0, 24), "documentation (TEST-NET-3, 203.0.113.0/24)"),
    (Cidr::v4(224, 0, 0, 0, 4), "multicast (224.0.0.0/4)"),
    (Cidr::v4(255, 255, 255, 255, 32), "broadcast (255.255.255.255)"),
    (Cidr::v4(240, 0, 0, 0, 4), "reserved (240.0.0.0/4)"),
];

/// IPv6 networks that are not public, checked after the ones embedding IPv4 addresses.
const V6_BLOCKED: &[(Cidr, &str)] = &[
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified (::)"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback (::1)"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 96), "IPv4-compatible IPv6, deprecated (::/96)"),
    (Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "local-use NAT64 (64:ff9b:1::/48)"),
    (Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only (100::/64)"),
    (Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation (2001:db8::/32)"),
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments incl. Teredo (2001::/23)",
    ),
    (Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation (3fff::/20)"),
    (Cidr::v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), "segment routing SIDs (5f00::/16)"),
    (Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "unique local (ULA, fc00::/7)"),
    (Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local (fe80::/10)"),
    (Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local, deprecated (fec0::/10)"),
    (Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast (ff00::/8)"),
];

const NAT64: Cidr = Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: Cidr = Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
const GLOBAL_UNICAST: Cidr = Cidr::v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn not_public(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => not_public_v4(v4).map(str::to_string),
        IpAddr::V6(v6) => not_public_v6(v6),
    }
}

fn not_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_BLOCKED.iter().find(|(net, _)| net.contains(IpAddr::V4(ip))).map(|(_, why)| *why)
}

fn not_public_v6(ip: Ipv6Addr) -> Option<String> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return not_public_v4(v4).map(|why| format!("IPv4-mapped {v4}: {why}"));
    }
    let bits = u128::from(ip);
    if NAT64.contains(IpAddr::V6(ip)) {
        let v4 = Ipv4Addr::from(bits as u32);
        return not_public_v4(v4).map(|why| format!("NAT64 of {v4}: {why}"));
    }
    if SIX_TO_FOUR.contains(IpAddr::V6(ip)) {
        let v4 = Ipv4Addr::from((bits >> 80) as u32);
        return not_public_v4(v4).map(|why| format!("6to4 of {v4}: {why}"));
    }
    if let Some((_, why)) = V6_BLOCKED.iter().find(|(net, _)| net.contains(IpAddr::V6(ip))) {
        return Some((*why).to_string());
    }
    if !GLOBAL_UNICAST.contains(IpAddr::V6(ip)) {
        return Some("reserved (outside global unicast 2000::/3)".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        not_public(s.parse().unwrap()).is_some()
    }

    #[test]
    fn ipv4_special_ranges_are_blocked() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(blocked(ip), "{ip} passed");
        }
    }

    #[test]
    fn public_ipv4_passes_including_neighbours_of_blocked_ranges() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!blocked(ip), "{ip} blocked: {:?}", not_public(ip.parse().unwrap()));
        }
    }

    #[test]
    fn ipv6_special_ranges_are_blocked() {
        for ip in [
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "5f00::1",
            "64:ff9b:1::1",
            "4000::1",
            "1234::1",
            "e000::1",
        ] {
            assert!(blocked(ip), "{ip} passed");
        }
    }

    #[test]
    fn ipv6_embedding_ipv4_is_judged_by_the_embedded_address() {
        for (ip, is_blocked) in [
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:10.1.2.3", true),
            ("::ffff:8.8.8.8", false),
            ("64:ff9b::10.0.0.1", true),
            ("64:ff9b::192.168.0.1", true),
            ("64:ff9b::169.254.169.254", true),
            ("64:ff9b::8.8.8.8", false),
            ("2002:0a00:0001::1", true),
            ("2002:c0a8:0101::1", true),
            ("2002:0808:0808::1", false),
        ] {
            assert_eq!(blocked(ip), is_blocked, "{ip}: {:?}", not_public(ip.parse().unwrap()));
        }
    }

    #[test]
    fn public_ipv6_passes() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:82b::200e",
            "2001:4860:4860::8888",
            "2400:cb00::1",
        ] {
            assert!(!blocked(ip), "{ip} blocked: {:?}", not_public(ip.parse().unwrap()));
        }
    }

    #[test]
    fn reasons_name_the_range() {
        let why = not_public("169.254.169.254".parse().unwrap()).unwrap();
        assert!(why.contains("link-local") && why.contains("169.254.0.0/16"), "{why}");
        let why = not_public("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        assert!(why.contains("IPv4-mapped 10.0.0.1") && why.contains("RFC 1918"), "{why}");
    }

    #[test]
    fn cidrs_parse_and_match() {
        let lo = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(lo.contains("127.3.4.5".parse().unwrap()));
        assert!(lo.contains("::ffff:127.0.0.1".parse().unwrap()), "mapped counts as IPv4");
        assert!(!lo.contains("128.0.0.1".parse().unwrap()));
        assert!(!lo.contains("::1".parse().unwrap()));
        let host = Cidr::parse("10.1.2.3").unwrap();
        assert!(
            host.contains("10.1.2.3".parse().unwrap())
                && !host.contains("10.1.2.4".parse().unwrap())
        );
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("255.1.2.3".parse().unwrap()));
        let ula = Cidr::parse("fd00::/8").unwrap();
        assert!(
            ula.contains("fd12::1".parse().unwrap()) && !ula.contains("fe80::1".parse().unwrap())
        );
        assert!(Cidr::parse("::/0").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "host/8",
            "1.2.3.4/8/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
