//! The classifier on a fixed set of policies (every way of presenting a
//! secret, every `details` and `on_unauthorized` mode) and arbitrary
//! requests: raw paths, token paths, query parameters, probe header,
//! `Authorization`, `Accept`, method.
//!
//! Request values are either arbitrary text or a configured secret,
//! encoded or slightly altered, so that both sides of every check are
//! reached. The oracle below says, independently of the classifier, whether
//! any carrier holds a valid secret.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshprobe::classify::{classify, Decision, RequestHeaders};
use meshprobe::policy::{Access, Details, Policy, Unauthorized};
use meshprobe::query;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

/// Valid policies; each endpoint list is small so the fuzzer hits them.
const POLICIES: &[&str] = &[
    // Every carrier at once (the unit tests' fixture).
    r#"{
      "authorization": {"header": "x-health", "secrets": [{"value": "s3cret"}, {"value": "n+xt/1"}],
                        "path_prefix": "/health", "query_param": "token", "bearer": true},
      "endpoints": [
        {"name": "live", "path": "/livez", "access": "public"},
        {"name": "ready", "path": "/readyz", "checks": ["db", "cache", "search"]},
        {"name": "deep", "path": "/deep", "checks": ["db"], "on_unauthorized": "forbidden", "format": "json"},
        {"name": "app", "path": "/appz", "checks": ["db"], "on_unauthorized": "pass_through"},
        {"name": "open", "path": "/openz", "checks": ["db"], "access": "public"}
      ],
      "checks": [
        {"name": "db", "cluster": "db"},
        {"name": "cache", "cluster": "cache", "critical": false},
        {"name": "search", "cluster": "search"}
      ]
    }"#,
    // Header only, a non-ASCII secret; the three details modes.
    r#"{
      "authorization": {"header": "X-Probe-Key", "secrets": [{"value": "ünï-cödé%2F"}], "on_unauthorized": "forbidden"},
      "endpoints": [
        {"name": "never", "path": "/n", "checks": ["a"], "details": "never"},
        {"name": "always", "path": "/a", "checks": ["a", "b"], "access": "public", "details": "always"},
        {"name": "auth", "path": "/", "checks": ["b"], "details": "authorized", "on_unauthorized": "not_found"},
        {"name": "pub", "path": "/p", "include": ["always"], "access": "public", "details": "authorized"}
      ],
      "checks": [{"name": "a", "cluster": "a"}, {"name": "b", "cluster": "b"}]
    }"#,
    // Path prefix only, nested; a secret that needs encoding in a segment.
    r#"{
      "authorization": {"path_prefix": "/_/probe/", "secrets": [{"value": "a/b+c%25d"}, {"value": "plain"}],
                        "on_unauthorized": "pass_through"},
      "endpoints": [
        {"name": "ready", "path": "/_/probe", "checks": ["x", "y"]},
        {"name": "x-only", "path": "/x", "checks": ["x"], "details": "always", "on_unauthorized": "not_found"},
        {"name": "pub", "path": "/pub", "checks": ["y"], "access": "public", "details": "never"}
      ],
      "checks": [{"name": "x", "cluster": "x"}, {"name": "y", "cluster": "y"}]
    }"#,
    // Query parameter only; a secret with '&', '=' and '+'.
    r#"{
      "authorization": {"query_param": "k", "secrets": [{"value": "p+q&r=s"}]},
      "endpoints": [
        {"name": "r", "path": "/r", "checks": ["c"], "details": "always"},
        {"name": "s", "path": "/r/s", "checks": ["c"], "on_unauthorized": "pass_through", "format": "html"},
        {"name": "t", "path": "/t", "access": "public", "checks": ["c"]}
      ],
      "checks": [{"name": "c", "cluster": "c"}, {"name": "s", "cluster": "s"}]
    }"#,
    // Bearer only.
    r#"{
      "authorization": {"bearer": true, "secrets": [{"value": "Bearer"}, {"value": "tok.en~"}]},
      "endpoints": [
        {"name": "r", "path": "/r", "checks": ["c", "d"], "format": "health"},
        {"name": "q", "path": "/q", "checks": ["d"], "access": "public", "details": "always", "format": "rss"}
      ],
      "checks": [{"name": "c", "cluster": "c"}, {"name": "d", "cluster": "d"}]
    }"#,
    // Source ranges (policy-wide and per endpoint) and detail peers.
    r#"{
      "authorization": {"header": "x-h", "secrets": [{"value": "k"}], "sources": ["10.0.0.0/8", "fd00::/8"],
                        "detail_peers": ["spiffe://cluster.local/ns/mon/sa/prober", "spiffe://cluster.local/ns/ops/*"]},
      "endpoints": [
        {"name": "r", "path": "/r", "checks": ["c"]},
        {"name": "p", "path": "/p", "access": "public", "details": "always", "checks": ["c"],
         "sources": ["192.168.1.7", "::1", "10.1.0.0/16"]},
        {"name": "any", "path": "/any", "access": "public", "details": "always", "sources": ["0.0.0.0/0"]}
      ],
      "checks": [{"name": "c", "cluster": "c"}]
    }"#,
    // No secrets at all: everything public.
    r#"{
      "endpoints": [
        {"name": "a", "path": "/a", "access": "public", "checks": ["c"], "details": "always"},
        {"name": "b", "path": "/b", "access": "public", "checks": ["c"], "details": "authorized"},
        {"name": "c", "path": "/c", "access": "public", "details": "never"}
      ],
      "checks": [{"name": "c", "cluster": "c"}]
    }"#,
];

/// The ranges an endpoint accepts probes from, read from the policy's
/// JSON and parsed with std (`None`: from anywhere).
fn ranges(policy: usize, endpoint: &str) -> Option<Vec<(IpAddr, u32)>> {
    let doc: serde_json::Value = serde_json::from_str(POLICIES.get(policy)?).ok()?;
    let ep = doc["endpoints"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == endpoint)?;
    let list = ep
        .get("sources")
        .or_else(|| doc["authorization"].get("sources"))?
        .as_array()?;
    Some(
        list.iter()
            .filter_map(|r| {
                let text = r.as_str()?;
                let (addr, bits) = text.split_once('/').unwrap_or((text, ""));
                let ip: IpAddr = addr.parse().ok()?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                Some((ip, bits.parse().unwrap_or(max)))
            })
            .collect(),
    )
}

fn in_range(addr: IpAddr, (net, bits): (IpAddr, u32)) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            bits == 0 || (u32::from(a) ^ u32::from(n)) >> (32 - bits) == 0
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            bits == 0 || (u128::from(a) ^ u128::from(n)) >> (128 - bits) == 0
        }
        _ => false,
    }
}

/// The address in a `source.address` value: `ip`, `ip:port`, `[ip6]:port`.
fn source_addr(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    // Lenient like the module: "[ip6]" with anything after, a "+port".
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (ip, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse().ok()
}

fn policies() -> &'static [Policy] {
    static CELL: OnceLock<Vec<Policy>> = OnceLock::new();
    CELL.get_or_init(|| {
        POLICIES
            .iter()
            .map(|json| match Policy::from_json(json.as_bytes(), &|_| None) {
                Ok(p) => p,
                Err(e) => panic!("fuzz policy is invalid: {e:?}"),
            })
            .collect()
    })
}

/// A value presented as a secret.
#[derive(Arbitrary, Debug)]
enum Value<'a> {
    /// The `n`th secret, encoded as chosen.
    Secret(u8, Encoding),
    /// The `n`th secret, altered.
    Near(u8, Alteration),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Encoding {
    Exact,
    /// Every byte escaped.
    Percent,
    /// Only the bytes that need it escaped.
    Minimal,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Alteration {
    DropLast,
    AddByte(u8),
    FlipCase,
    Pad,
}

#[derive(Arbitrary, Debug)]
enum PathKind<'a> {
    Endpoint(u8),
    Check(u8, u8),
    Token {
        token: Value<'a>,
        endpoint: u8,
        check: Option<u8>,
    },
    EndpointSuffix(u8, &'a str),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Key<'a> {
    TokenParam,
    Format,
    Verbose,
    Exclude,
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Param<'a> {
    Pair(Key<'a>, Value<'a>),
    Flag(Key<'a>),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Auth<'a> {
    Bearer(&'a str, Value<'a>),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Method<'a> {
    Get,
    Head,
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Request<'a> {
    policy: u8,
    path: PathKind<'a>,
    query: Option<Vec<Param<'a>>>,
    header: Option<Value<'a>>,
    authorization: Option<Auth<'a>>,
    accept: Option<&'a str>,
    method: Option<Method<'a>>,
    other: Vec<(&'a str, &'a str)>,
    source: Option<Source<'a>>,
    san: Option<San<'a>>,
}

/// Envoy's `source.address`.
#[derive(Arbitrary, Debug)]
enum Source<'a> {
    V4([u8; 4], Option<u16>),
    V6([u8; 16], Option<u16>),
    Mapped([u8; 4], u16),
    Raw(&'a str),
}

impl Source<'_> {
    fn text(&self) -> String {
        match self {
            Source::V4(a, None) => Ipv4Addr::from(*a).to_string(),
            Source::V4(a, Some(p)) => format!("{}:{p}", Ipv4Addr::from(*a)),
            Source::V6(a, None) => Ipv6Addr::from(*a).to_string(),
            Source::V6(a, Some(p)) => format!("[{}]:{p}", Ipv6Addr::from(*a)),
            Source::Mapped(a, p) => format!("[{}]:{p}", Ipv4Addr::from(*a).to_ipv6_mapped()),
            Source::Raw(s) => (*s).to_string(),
        }
    }
}

/// A peer certificate's URI SAN.
#[derive(Arbitrary, Debug)]
enum San<'a> {
    Prober,
    Ops(&'a str),
    Raw(&'a str),
}

const PROBER: &str = "spiffe://cluster.local/ns/mon/sa/prober";
const OPS: &str = "spiffe://cluster.local/ns/ops/";

impl San<'_> {
    fn text(&self) -> String {
        match self {
            San::Prober => PROBER.into(),
            San::Ops(s) => format!("{OPS}{s}"),
            San::Raw(s) => (*s).to_string(),
        }
    }
}

fn nth<T>(items: &[T], i: u8) -> Option<&T> {
    if items.is_empty() {
        return None;
    }
    items.get(usize::from(i) % items.len())
}

/// `%XX` for bytes outside `keep`.
fn percent(bytes: &[u8], keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::new();
    for &b in bytes {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Where a value is written: its encoding differs.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Header,
    Query,
    Segment,
}

fn render_value(policy: &Policy, v: &Value<'_>, place: Place) -> String {
    let secrets = &policy.authorization.secrets;
    match v {
        Value::Raw(s) => (*s).to_string(),
        Value::Secret(i, enc) => {
            let Some(s) = nth(secrets, *i) else {
                return String::new();
            };
            match (enc, place) {
                (_, Place::Header) | (Encoding::Exact, _) => s.clone(),
                (Encoding::Percent, _) => percent(s.as_bytes(), |_| false),
                (Encoding::Minimal, _) => percent(s.as_bytes(), is_unreserved),
            }
        }
        Value::Near(i, alt) => {
            let Some(s) = nth(secrets, *i) else {
                return String::new();
            };
            match alt {
                Alteration::DropLast => {
                    let mut t = s.clone();
                    t.pop();
                    t
                }
                Alteration::AddByte(b) => format!("{s}{}", char::from(*b)),
                Alteration::FlipCase => s
                    .chars()
                    .map(|c| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect(),
                Alteration::Pad => format!(" {s}"),
            }
        }
    }
}

struct Headers {
    list: Vec<(String, String)>,
    read: Vec<String>,
    source: Option<String>,
    san: Option<String>,
}

impl RequestHeaders for Headers {
    fn get(&mut self, name: &str) -> Option<&str> {
        self.read.push(name.to_string());
        self.list
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        self.read.push(path.join("."));
        match path {
            ["source", "address"] => self.source.clone(),
            ["connection", "uri_san_peer_certificate"] => self.san.clone(),
            _ => None,
        }
    }
}

fn is_secret(policy: &Policy, candidate: &[u8]) -> bool {
    policy
        .authorization
        .secrets
        .iter()
        .any(|s| s.as_bytes() == candidate)
}

/// Which carriers hold a valid secret, judged from the spec.
struct Carried {
    token: bool,
    others: bool,
}

fn carried(policy: &Policy, raw_path: &str, headers: &Headers) -> Carried {
    let auth = &policy.authorization;
    let (path, query_str) = raw_path.split_once('?').unwrap_or((raw_path, ""));
    let header = |name: &str| {
        headers
            .list
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let token = auth.path_prefix.as_deref().is_some_and(|prefix| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.split('/').next())
            .is_some_and(|t| is_secret(policy, &query::decode_path(t)))
    });
    let by_header = auth
        .header
        .as_deref()
        .and_then(header)
        .is_some_and(|v| is_secret(policy, v.as_bytes()));
    let by_query = auth.query_param.as_deref().is_some_and(|name| {
        query_str
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .find(|(k, _)| *k == name)
            .is_some_and(|(_, v)| is_secret(policy, &query::decode(v)))
    });
    let by_bearer = auth.bearer
        && header("authorization").is_some_and(|v| {
            v.len() > 7
                && v.get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
                && v.get(7..).is_some_and(|t| is_secret(policy, t.as_bytes()))
        });
    Carried {
        token,
        others: by_header || by_query || by_bearer,
    }
}

fuzz_target!(|req: Request<'_>| {
    let Some(policy) = nth(policies(), req.policy) else {
        return;
    };
    let auth = &policy.authorization;
    let check_name = |c: usize| policy.checks.get(c).map_or("", |k| k.name.as_str());

    // The path, and what it is meant to reach.
    let mut exact_endpoint = None;
    let mut token_path = false;
    let mut token_valid = false;
    // A per-check token path to an endpoint that never shows details: 404.
    let mut hidden_check = false;
    // The endpoint a token path names.
    let mut token_endpoint = None;
    let path = match &req.path {
        PathKind::Endpoint(i) => {
            let Some(e) = nth(&policy.endpoints, *i) else {
                return;
            };
            exact_endpoint = policy.endpoint_by_path(&e.path);
            e.path.clone()
        }
        PathKind::Check(i, c) => {
            let Some(e) = nth(&policy.endpoints, *i) else {
                return;
            };
            let name = nth(&e.checks, *c).map_or("nope", |&c| check_name(c));
            format!("{}/{name}", e.path)
        }
        PathKind::Token {
            token,
            endpoint,
            check,
        } => {
            let Some(e) = nth(&policy.endpoints, *endpoint) else {
                return;
            };
            token_endpoint = policy.endpoint_by_name(&e.name);
            let prefix = auth.path_prefix.as_deref().unwrap_or("/health");
            let t = render_value(policy, token, Place::Segment);
            if !t.is_empty() && !t.contains(['/', '?']) {
                token_path = auth.path_prefix.is_some();
                token_valid = is_secret(policy, &query::decode_path(&t));
            }
            match check.and_then(|c| nth(&e.checks, c)) {
                Some(&c) => {
                    hidden_check = e.details == Details::Never;
                    format!("{prefix}/{t}/{}/{}", e.name, check_name(c))
                }
                None => format!("{prefix}/{t}/{}", e.name),
            }
        }
        PathKind::EndpointSuffix(i, s) => {
            let Some(e) = nth(&policy.endpoints, *i) else {
                return;
            };
            format!("{}{s}", e.path)
        }
        PathKind::Raw(s) => (*s).to_string(),
    };
    let mut raw_path = path.clone();
    let mut format_param = None;
    if let Some(params) = &req.query {
        let key = |k: &Key<'_>| match k {
            Key::TokenParam => auth.query_param.clone().unwrap_or_else(|| "token".into()),
            Key::Format => "format".into(),
            Key::Verbose => "verbose".into(),
            Key::Exclude => "exclude".into(),
            Key::Raw(s) => (*s).to_string(),
        };
        let parts: Vec<String> = params
            .iter()
            .map(|p| match p {
                Param::Pair(k, v) => {
                    format!("{}={}", key(k), render_value(policy, v, Place::Query))
                }
                Param::Flag(k) => key(k),
                Param::Raw(s) => (*s).to_string(),
            })
            .collect();
        raw_path.push('?');
        raw_path.push_str(&parts.join("&"));
        let q = raw_path.split_once('?').map_or("", |(_, q)| q);
        format_param = query::first(q, "format").map(str::to_string);
    }

    let mut list: Vec<(String, String)> = Vec::new();
    match &req.method {
        Some(Method::Get) => list.push((":method".into(), "GET".into())),
        Some(Method::Head) => list.push((":method".into(), "HEAD".into())),
        Some(Method::Raw(m)) => list.push((":method".into(), (*m).to_string())),
        None => {}
    }
    if let Some(v) = &req.header {
        let name = auth.header.clone().unwrap_or_else(|| "x-health".into());
        list.push((name, render_value(policy, v, Place::Header)));
    }
    match &req.authorization {
        Some(Auth::Bearer(scheme, v)) => {
            let scheme = if scheme.is_empty() { "Bearer" } else { scheme };
            let v = render_value(policy, v, Place::Header);
            list.push(("authorization".into(), format!("{scheme} {v}")));
        }
        Some(Auth::Raw(s)) => list.push(("authorization".into(), (*s).to_string())),
        None => {}
    }
    if let Some(a) = req.accept {
        list.push(("accept".into(), a.to_string()));
    }
    for (k, v) in &req.other {
        list.push(((*k).to_string(), (*v).to_string()));
    }
    let get_or_head = matches!(
        list.iter()
            .find(|(k, _)| k == ":method")
            .map(|(_, v)| v.as_str()),
        Some("GET" | "HEAD")
    );

    let mut headers = Headers {
        list,
        read: Vec::new(),
        source: req.source.as_ref().map(Source::text),
        san: req.san.as_ref().map(San::text),
    };
    let policy_index = usize::from(req.policy) % POLICIES.len();
    // The source may probe endpoint `e` (by the std-parsed ranges).
    let source_ok_of = |e: usize| {
        let Some(list) = ranges(policy_index, &policy.endpoints[e].name) else {
            return true;
        };
        headers
            .source
            .as_deref()
            .and_then(source_addr)
            .is_some_and(|ip| list.iter().any(|&r| in_range(ip, r)))
    };
    let peer_ok = auth.detail_peers.is_empty()
        || headers
            .san
            .as_deref()
            .is_some_and(|s| s == PROBER || s.starts_with(OPS));
    let source_ok: Vec<bool> = (0..policy.endpoints.len()).map(source_ok_of).collect();
    let decision = classify(policy, &raw_path, &mut headers);
    let carried = carried(policy, &raw_path, &headers);
    let under_prefix = auth.path_prefix.as_deref().is_some_and(|prefix| {
        let path = raw_path
            .split_once('?')
            .map_or(raw_path.as_str(), |(p, _)| p);
        path.strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('/'))
    });
    let any_secret = carried.token || carried.others;

    // Only the headers the classifier is documented to read.
    for name in &headers.read {
        assert!(
            name == ":method"
                || name == "source.address"
                || name == "connection.uri_san_peer_certificate"
                || name == "accept"
                || name == "authorization"
                || Some(name) == auth.header.as_ref(),
            "read header {name:?}"
        );
    }

    // A token parameter never reaches the application.
    let check_token_removed = |new_path: &Option<String>| {
        if let Some(param) = &auth.query_param {
            let effective = new_path.as_deref().unwrap_or(&raw_path);
            let q = effective.split_once('?').map_or("", |(_, q)| q);
            assert_eq!(query::first(q, param), None, "{raw_path:?} -> {new_path:?}");
        } else {
            assert_eq!(*new_path, None);
        }
    };

    // A protected endpoint's own path without any valid secret is
    // answered as unauthorized, whatever the method.
    if let Some(e) = exact_endpoint {
        let ep = &policy.endpoints[e];
        if (ep.access == Access::Protected && !any_secret) || !source_ok[e] {
            assert!(
                matches!(decision, Decision::Unauthorized { endpoint, .. } if endpoint == e),
                "{raw_path:?}: {decision:?}"
            );
        }
        // A valid probe header, query token or bearer token is honoured.
        if carried.others && get_or_head && source_ok[e] {
            assert!(
                matches!(&decision, Decision::Probe(p) if p.authorized && p.endpoint == e)
                    || matches!(&decision, Decision::Reply(r) if r.status == 400 || r.status == 406),
                "{raw_path:?} {:?}: {decision:?}",
                headers.list
            );
        }
    }
    // A valid token in a token path is honoured.
    if token_path && token_valid && get_or_head && token_endpoint.is_some_and(|e| source_ok[e]) {
        assert!(
            matches!(&decision, Decision::Probe(p) if p.authorized)
                || matches!(&decision, Decision::Reply(r) if r.status == 400 || r.status == 406
                    || (r.status == 404 && hidden_check)),
            "{raw_path:?}: {decision:?}"
        );
    }

    match &decision {
        Decision::PassThrough { new_path } => {
            // Ordinary traffic costs no header read.
            assert!(headers.read.is_empty(), "read {:?}", headers.read);
            // Nothing below path_prefix (it may carry a secret) goes upstream.
            assert!(!under_prefix, "{raw_path:?} went upstream");
            assert!(exact_endpoint.is_none());
            check_token_removed(new_path);
        }
        Decision::Unauthorized {
            endpoint,
            reply,
            new_path,
        } => {
            let ep = &policy.endpoints[*endpoint];
            assert!(ep.access == Access::Protected || !source_ok[*endpoint]);
            match (ep.on_unauthorized, reply) {
                (Unauthorized::NotFound, Some(r)) => {
                    assert_eq!((r.status, r.body.as_slice()), (404, &b""[..]));
                    assert_eq!(*new_path, None);
                }
                (Unauthorized::Forbidden, Some(r)) => {
                    assert_eq!((r.status, r.body.as_slice()), (403, &b"forbidden\n"[..]));
                    assert_eq!(*new_path, None);
                }
                // A token path never goes upstream, even unauthorized.
                (Unauthorized::PassThrough, Some(r)) if under_prefix => {
                    assert_eq!((r.status, r.body.as_slice()), (404, &b""[..]));
                    assert_eq!(*new_path, None);
                }
                (Unauthorized::PassThrough, None) => {
                    assert!(!under_prefix, "{raw_path:?} went upstream");
                    check_token_removed(new_path)
                }
                other => panic!("unexpected unauthorized answer {other:?}"),
            }
        }
        Decision::Reply(r) => {
            // Fixed texts only: never a check name or a reason.
            let body = String::from_utf8_lossy(&r.body);
            let fixed = [
                "",
                "method not allowed\n",
                "none of the accepted media types is available\n",
                "unknown format; use one of: text, json, health, html, atom, rss, dhc, openmetrics\n",
            ];
            assert!(fixed.contains(&body.as_ref()), "{body:?}");
            assert!(matches!(r.status, 400 | 404 | 405 | 406), "{r:?}");
            if r.status == 405 {
                assert!(!get_or_head);
            }
        }
        Decision::Probe(p) => {
            assert!(get_or_head);
            let ep = &policy.endpoints[p.endpoint];
            // Never authorized without a valid secret somewhere.
            if p.authorized {
                assert!(any_secret, "{raw_path:?} {:?}", headers.list);
            }
            if ep.access == Access::Protected {
                assert!(p.authorized);
            }
            assert!(source_ok[p.endpoint], "probe from {:?}", headers.source);
            let may_see = match ep.details {
                Details::Never => false,
                Details::Authorized => p.authorized,
                Details::Always => true,
            };
            assert_eq!(p.details, may_see && peer_ok, "san {:?}", headers.san);
            let checks = p.checks(&policy);
            if !p.details {
                assert!(p.notes.is_empty());
                assert_eq!(p.checks, None);
            }
            // The checks run are the endpoint's, each at most once.
            for (i, c) in checks.iter().enumerate() {
                assert!(ep.checks.contains(c));
                assert!(!checks.get(..i).is_some_and(|before| before.contains(c)));
            }
            if let Some(name) = &format_param {
                assert_eq!(p.format.name(), name);
            }
            let q = raw_path.split_once('?').map_or("", |(_, q)| q);
            assert_eq!(p.verbose, query::flag(q, "verbose"));
            if exact_endpoint.is_some() {
                assert_eq!(Some(p.endpoint), exact_endpoint);
            }
        }
    }
});
