//! Address ranges (`10.0.0.0/8`, `fd00::/8`) and the caller's address as
//! Envoy's `source.address` property gives it (`10.1.2.3:5678`,
//! `[fd00::1]:5678`).

use std::net::IpAddr;

mod ip;

/// An address range: the first `bits` bits of `net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n`, or a single address (a /32 or /128).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let net = ip::parse(addr).ok_or_else(|| {
            format!("{text:?} is not an address or range (e.g. \"10.0.0.0/8\", \"fd00::/8\")")
        })?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.parse::<u8>() {
                Ok(n) if n <= max && !b.starts_with('+') => n,
                _ => return Err(format!("{text:?}: the prefix length must be 0-{max}")),
            },
        };
        if mask(net, bits) != net {
            return Err(format!(
                "{text:?} has bits set past its prefix length (did you mean {}/{bits}?)",
                ip::text(mask(net, bits))
            ));
        }
        Ok(Cidr { net, bits })
    }

    /// `addr` is in the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        addr.is_ipv4() == self.net.is_ipv4() && mask(addr, self.bits) == self.net
    }
}

fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// The address in Envoy's `source.address` (`ip:port`, `[ip6]:port`, or a
/// bare address); `None` for anything else (e.g. a pipe path).
pub fn source_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Some(ip) = ip::parse(text) {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip::parse(ip);
    }
    let (ip, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip::parse(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_they_should() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::1", false),
            ("127.0.0.0/8", "::ffff:127.0.0.1", true),
            ("fd00::/8", "fd12:3456::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
            ("::1", "::1", true),
            ("::1/128", "127.0.0.1", false),
        ];
        for (range, addr, want) in cases {
            let c = Cidr::parse(range).unwrap();
            assert_eq!(c.contains(ip(addr)), want, "{range} contains {addr}");
        }
    }

    #[test]
    fn bad_ranges_say_why() {
        let cases = [
            (
                "10.0.0.0/33",
                "\"10.0.0.0/33\": the prefix length must be 0-32",
            ),
            (
                "10.0.0.1/8",
                "\"10.0.0.1/8\" has bits set past its prefix length (did you mean 10.0.0.0/8?)",
            ),
            (
                "fd00::/129",
                "\"fd00::/129\": the prefix length must be 0-128",
            ),
            (
                "10.0.0.0/+8",
                "\"10.0.0.0/+8\": the prefix length must be 0-32",
            ),
            (
                "10.0.0/8",
                "\"10.0.0/8\" is not an address or range (e.g. \"10.0.0.0/8\", \"fd00::/8\")",
            ),
            (
                "",
                "\"\" is not an address or range (e.g. \"10.0.0.0/8\", \"fd00::/8\")",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Cidr::parse(text), Err(want.to_string()), "{text}");
        }
    }

    #[test]
    fn source_addresses_as_envoy_writes_them() {
        assert_eq!(source_ip("10.1.2.3:5678"), Some(ip("10.1.2.3")));
        assert_eq!(source_ip("[fd00::1]:5678"), Some(ip("fd00::1")));
        assert_eq!(source_ip("127.0.0.1"), Some(ip("127.0.0.1")));
        assert_eq!(source_ip("fd00::1"), Some(ip("fd00::1")));
        assert_eq!(source_ip("/var/run/envoy.sock"), None);
        assert_eq!(source_ip("10.1.2.3:99999"), None);
        assert_eq!(source_ip(""), None);
        assert_eq!(source_ip("[fd00::1"), None);
    }
}
