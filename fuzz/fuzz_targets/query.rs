//! Query-string helpers on arbitrary input: `params`, `first`, `flag`,
//! `decode`, `decode_path` and `without`, plus the duration parser the
//! policy uses for every timeout.
//!
//! Invariants: decoding never grows the input and undoes percent-encoding
//! exactly; `without` removes every occurrence of a parameter and keeps the
//! others in order; a formatted duration reads back as the same value.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshprobe::duration::{format_millis, parse_millis};
use meshprobe::query::{decode, decode_path, first, flag, params, without};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// A raw `:path`, split at the first `?` as the classifier does.
    raw_path: &'a str,
    /// The parameter looked for and removed.
    name: Name<'a>,
    /// Bytes to percent-encode and decode back.
    bytes: &'a [u8],
    /// Which bytes to encode although they need not be, and in which case.
    style: u64,
    /// A duration string, and milliseconds to format.
    duration: &'a str,
    millis: u64,
}

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Token,
    Format,
    Verbose,
    Raw(&'a str),
}

impl<'a> Name<'a> {
    fn as_str(&self) -> &'a str {
        match self {
            Name::Token => "token",
            Name::Format => "format",
            Name::Verbose => "verbose",
            Name::Raw(s) => s,
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes `bytes`; `style` picks hex case, optional encoding of
/// unreserved bytes, and (for queries) `+` for spaces.
fn encode(bytes: &[u8], style: u64, plus_for_space: bool) -> String {
    let mut out = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        let bit = (style >> (i % 64)) & 1 == 1;
        if b == b' ' && plus_for_space && bit {
            out.push('+');
        } else if is_unreserved(b) && !bit {
            out.push(char::from(b));
        } else if bit {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|input: Input<'_>| {
    let (path, query) = input
        .raw_path
        .split_once('?')
        .unwrap_or((input.raw_path, ""));
    let name = input.name.as_str();

    // params: raw pieces of the query, split at '&' then the first '='.
    let all: Vec<(&str, &str)> = params(query).collect();
    for (k, v) in &all {
        assert!(!k.contains('&') && !k.contains('=') && !v.contains('&'));
    }
    let found = all.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    assert_eq!(first(query, name), found);
    assert_eq!(
        flag(query, name),
        found.is_some_and(|v| v != "0" && v != "false")
    );

    // decode: never longer than the input; identity without escapes.
    for raw in [query, path, name] {
        let d = decode(raw);
        let dp = decode_path(raw);
        assert!(d.len() <= raw.len() && dp.len() <= raw.len());
        if !raw.contains('%') {
            assert_eq!(dp, raw.as_bytes());
            let plus: Vec<u8> = raw
                .bytes()
                .map(|b| if b == b'+' { b' ' } else { b })
                .collect();
            assert_eq!(d, plus);
        }
    }

    // Round trip of arbitrary bytes through percent-encoding.
    let q = encode(input.bytes, input.style, true);
    assert_eq!(decode(&q), input.bytes, "{q:?}");
    let p = encode(input.bytes, input.style, false);
    assert_eq!(decode_path(&p), input.bytes, "{p:?}");

    // without: every occurrence of `name` gone, the rest kept in order.
    match without(path, query, name) {
        None => assert!(found.is_none()),
        Some(rewritten) => {
            assert!(found.is_some());
            let rest = rewritten
                .strip_prefix(path)
                .unwrap_or_else(|| panic!("{rewritten:?} does not start with {path:?}"));
            let new_query = match rest.strip_prefix('?') {
                Some(q) => {
                    assert!(!q.is_empty());
                    q
                }
                None => {
                    assert!(rest.is_empty());
                    ""
                }
            };
            assert_eq!(first(new_query, name), None);
            let kept: Vec<(&str, &str)> = all.iter().copied().filter(|(k, _)| *k != name).collect();
            let now: Vec<(&str, &str)> = params(new_query).collect();
            assert_eq!(kept, now);
        }
    }

    // Durations: no panic on any text; formatting reads back.
    if let Ok(ms) = parse_millis(input.duration) {
        assert_eq!(parse_millis(&format_millis(ms)), Ok(ms));
    }
    assert_eq!(parse_millis(&format_millis(input.millis)), Ok(input.millis));
});
