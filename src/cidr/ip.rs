//! IP address text, read and written as `std` does (`"::ffff:1.2.3.4"`,
//! RFC 5952 `::` compression), by hand: `std`'s parser and `Display` cost
//! the module some 6 KB. The tests compare both on every case.

use crate::text::join;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `a.b.c.d` (four decimal octets, no leading zero) or an IPv6 address
/// (hex groups, one `::` at most, an IPv4 address in its last 32 bits).
pub fn parse(text: &str) -> Option<IpAddr> {
    let b = text.as_bytes();
    if let Some((v4, n)) = ipv4(b) {
        return (n == b.len()).then_some(IpAddr::V4(v4));
    }
    ipv6(b).map(IpAddr::V6)
}

/// Up to `max` digits in `radix`, below `limit`; a leading zero only alone
/// when `radix` is 10. Returns the value and the digits read.
fn number(b: &[u8], radix: u32, max: usize, limit: u32) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    let mut n = 0;
    while let Some(d) = b.get(n).and_then(|&c| char::from(c).to_digit(radix)) {
        if n == max || (radix == 10 && n == 1 && value == 0) {
            return None;
        }
        value = value * radix + d;
        n += 1;
    }
    (n > 0 && value < limit).then_some((value, n))
}

/// An IPv4 address at the start of `b`, and its length.
fn ipv4(b: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            if b.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let (v, n) = number(b.get(at..)?, 10, 3, 256)?;
        *octet = v as u8;
        at += n;
    }
    Some((Ipv4Addr::from(octets), at))
}

/// Groups at the start of `b` into `out` (an IPv4 address counts as two
/// when room is left for it); returns the groups filled and bytes read.
fn groups(b: &[u8], out: &mut [u16]) -> (usize, usize) {
    let mut at = 0;
    let mut filled = 0;
    while filled < out.len() {
        let sep = usize::from(filled > 0);
        if sep == 1 && b.get(at) != Some(&b':') {
            break;
        }
        let rest = b.get(at + sep..).unwrap_or_default();
        if filled + 1 < out.len() {
            if let Some((v4, n)) = ipv4(rest) {
                let [h0, h1, l0, l1] = v4.octets();
                if let Some(pair) = out.get_mut(filled..filled + 2) {
                    pair.copy_from_slice(&[
                        u16::from_be_bytes([h0, h1]),
                        u16::from_be_bytes([l0, l1]),
                    ]);
                }
                return (filled + 2, at + sep + n);
            }
        }
        let Some((v, n)) = number(rest, 16, 4, 0x1_0000) else {
            break;
        };
        if let Some(slot) = out.get_mut(filled) {
            *slot = v as u16;
        }
        filled += 1;
        at += sep + n;
    }
    (filled, at)
}

fn ipv6(b: &[u8]) -> Option<Ipv6Addr> {
    let mut head = [0u16; 8];
    let (head_len, mut at) = groups(b, &mut head);
    if head_len == 8 {
        return (at == b.len()).then_some(Ipv6Addr::from(head));
    }
    if b.get(at..at + 2) != Some(b"::") {
        return None;
    }
    at += 2;
    // `::` stands for at least one group.
    let mut tail = [0u16; 7];
    let limit = 8 - (head_len + 1);
    let (tail_len, n) = groups(b.get(at..).unwrap_or_default(), tail.get_mut(..limit)?);
    if at + n != b.len() {
        return None;
    }
    let start = 8 - tail_len;
    for (slot, v) in head.iter_mut().skip(start).zip(tail.iter()) {
        *slot = *v;
    }
    Some(Ipv6Addr::from(head))
}

/// The address as `std` writes it: IPv6 in lowercase hex, the longest
/// run of two or more zero groups (the first of equals) as `::`, and an
/// IPv4-mapped address as `::ffff:a.b.c.d`.
pub fn text(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4_text(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return format!("::ffff:{}", v4_text(v4));
            }
            let (mut start, mut len) = (0, 0);
            let mut run = 0;
            for (i, &g) in s.iter().enumerate() {
                run = if g == 0 { run + 1 } else { 0 };
                if run > len {
                    (start, len) = (i + 1 - run, run);
                }
            }
            let hex = |gs: &[u16]| {
                let groups: Vec<String> = gs.iter().map(|g| format!("{g:x}")).collect();
                join(&groups, ":")
            };
            if len > 1 {
                let before = s.get(..start).unwrap_or_default();
                let after = s.get(start + len..).unwrap_or_default();
                format!("{}::{}", hex(before), hex(after))
            } else {
                hex(&s)
            }
        }
    }
}

fn v4_text(v4: Ipv4Addr) -> String {
    let [a, b, c, d] = v4.octets();
    format!("{a}.{b}.{c}.{d}")
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    const CASES: &[&str] = &[
        "",
        "1.2.3.4",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.04",
        "1..2.3",
        " 1.2.3.4",
        "1.2.3.4 ",
        "+1.2.3.4",
        "1.2.3.-4",
        "1234.1.1.1",
        "::",
        "::1",
        "1::",
        "1::2",
        "fd00::",
        "FD00::1",
        "::ffff:1.2.3.4",
        "::1.2.3.4",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6::7:8",
        "1:2:3:4:5:6:7::8",
        "1::2::3",
        ":::",
        ":1::",
        "1:",
        ":1",
        "12345::",
        "0001:0002::",
        "1:2:3:4:5:6:1.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4",
        "::1.2.3",
        "::1.2.3.4.5",
        "fe80::1%eth0",
        "g::",
        "::ffff:0.0.0.0",
        "1::1.2.3.4",
        "1:2:3:4:5::1.2.3.4",
        "1:2:3:4:5:6::1.2.3.4",
        "0:0:0:0:0:0:0:0",
        "[::1]",
    ];

    #[test]
    fn reads_addresses_as_std_does() {
        for case in CASES {
            assert_eq!(parse(case), case.parse::<IpAddr>().ok(), "{case:?}");
        }
        // Random strings over the characters addresses are made of.
        let alphabet = b"0123456789abcdefABF:.:.";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 59) as usize + 1;
            let mut s = String::new();
            let mut r = seed;
            for _ in 0..len {
                r = r
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                s.push(char::from(alphabet[(r >> 33) as usize % alphabet.len()]));
            }
            assert_eq!(parse(&s), s.parse::<IpAddr>().ok(), "{s:?}");
        }
    }

    #[test]
    fn writes_addresses_as_std_does() {
        let mut seed: u64 = 7;
        for i in 0..100_000u32 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Mostly zero groups, so every compression case comes up.
            let mut g = [0u16; 8];
            for (k, slot) in g.iter_mut().enumerate() {
                if (seed >> (k * 3)) & 3 == 0 {
                    *slot = (seed >> (k * 5 + 16)) as u16;
                }
            }
            if i % 10 == 0 {
                g = [0, 0, 0, 0, 0, 0xffff, g[6], g[7]];
            }
            let v6 = IpAddr::V6(Ipv6Addr::from(g));
            assert_eq!(text(v6), v6.to_string(), "{g:?}");
            let v4 = IpAddr::V4(Ipv4Addr::from(seed as u32));
            assert_eq!(text(v4), v4.to_string());
        }
    }
}
