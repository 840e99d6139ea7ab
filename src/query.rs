//! Minimal query-string handling: find a parameter, percent-decode a value,
//! and remove a parameter (the token must not reach the app).
use crate::text::join;

/// The parameters of a query string in order, raw (not decoded).
pub fn params(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// The first raw value of `name`, `None` when absent (at once for the
/// empty query of almost every probe).
pub fn first<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    if query.is_empty() {
        return None;
    }
    params(query).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// True when `name` is present as a flag (`?verbose`, `?verbose=1`,
/// `?verbose=true`); `?verbose=0` and `?verbose=false` turn it off.
pub fn flag(query: &str, name: &str) -> bool {
    first(query, name).is_some_and(|v| !matches!(v, "0" | "false"))
}

/// Percent-decodes a query value (`+` is a space). Malformed escapes are
/// kept as they are, so a bad value never matches a secret by accident.
pub fn decode(raw: &str) -> Vec<u8> {
    percent_decode(raw, true)
}

/// Percent-decodes a path segment (`+` stays `+`).
pub fn decode_path(raw: &str) -> Vec<u8> {
    percent_decode(raw, false)
}

fn percent_decode(raw: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1)
                    .and_then(|h| hex_val(*h))
                    .zip(bytes.get(i + 2).and_then(|l| hex_val(*l)));
                if let Some((h, l)) = hex {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `path?query` without every occurrence of `name`; `None` when the query
/// does not contain it (nothing to rewrite).
pub fn without(path: &str, query: &str, name: &str) -> Option<String> {
    if !params(query).any(|(k, _)| k == name) {
        return None;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split_once('=').map_or(*p, |(k, _)| k) != name)
        .collect();
    if kept.is_empty() {
        Some(path.to_string())
    } else {
        Some(format!("{path}?{}", join(&kept, "&")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn finds_and_decodes() {
        assert_eq!(first("a=1&token=x%2By&b", "token"), Some("x%2By"));
        assert_eq!(decode("x%2By"), b"x+y");
        assert_eq!(decode("a+b"), b"a b");
        assert_eq!(decode("%zz%4"), b"%zz%4");
        assert_eq!(decode_path("a+b%2F"), b"a+b/");
        assert_eq!(first("a=1", "token"), None);
    }

    #[test]
    fn flags() {
        assert!(flag("verbose", "verbose"));
        assert!(flag("x=1&verbose=1", "verbose"));
        assert!(!flag("verbose=0", "verbose"));
        assert!(!flag("verbosee", "verbose"));
    }

    #[test]
    fn removes_a_parameter() {
        assert_eq!(
            without("/app", "token=s&x=1", "token"),
            Some("/app?x=1".into())
        );
        assert_eq!(without("/app", "token=s", "token"), Some("/app".into()));
        assert_eq!(
            without("/app", "a=1&token=s&token=t&b=2", "token"),
            Some("/app?a=1&b=2".into())
        );
        assert_eq!(without("/app", "tokens=1", "token"), None);
    }
}
