//! Is this request a probe, may the caller see it, and how is it answered?
//!
//! Headers are read lazily through [`RequestHeaders`], so ordinary traffic
//! costs one look at `:path` (plus the probe header's removal by the host).

use crate::cidr::{self, Cidr};
use crate::negotiate::{self, Choice};
use crate::policy::{Access, Details, Format, Policy, Unauthorized};
use crate::query;
use crate::render::{Parts, Reply};
use crate::secret;
use crate::text::join;

/// Where the classifier reads request headers (and connection properties)
/// from.
pub trait RequestHeaders {
    /// The (first) value of header `name`, borrowed: reading one costs
    /// no allocation.
    fn get(&mut self, name: &str) -> Option<&str>;

    /// A host property as text, e.g. `["source", "address"]` or
    /// `["connection", "uri_san_peer_certificate"]`; `None` when the host
    /// has none (then `sources` and `detail_peers` admit nobody).
    fn property(&mut self, _path: &[&str]) -> Option<String> {
        None
    }
}

/// The caller's address is in the endpoint's `sources` (or it has none).
fn source_allowed(sources: Option<&[Cidr]>, headers: &mut dyn RequestHeaders) -> bool {
    let Some(ranges) = sources else {
        return true;
    };
    headers
        .property(&["source", "address"])
        .and_then(|a| cidr::source_ip(&a))
        .is_some_and(|ip| ranges.iter().any(|r| r.contains(ip)))
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a probe (or an unauthorized one configured `pass_through`): send
    /// it upstream, with `:path` replaced when it is `Some` (the token query
    /// parameter removed).
    PassThrough { new_path: Option<String> },
    /// Answer locally with this reply and stop.
    Reply(Reply),
    /// A protected endpoint without a valid secret: answered with `reply`
    /// (404 or 403), or, when `None`, passed upstream like `PassThrough`.
    /// Never a callout, never a detail.
    Unauthorized {
        endpoint: usize,
        reply: Option<Reply>,
        new_path: Option<String>,
    },
    /// Run the endpoint and answer with its report.
    Probe(Probe),
}

/// An accepted probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub endpoint: usize,
    /// The caller presented a valid secret.
    pub authorized: bool,
    /// The caller may see check names, reasons and latencies.
    pub details: bool,
    pub format: Format,
    pub verbose: bool,
    /// The checks to run (indexes into `Policy::checks`) when not all the
    /// endpoint's ([`Probe::checks`]): those less `?exclude=`, or the one
    /// of a per-check path.
    pub checks: Option<Vec<usize>>,
    /// Remarks for the answer (unknown names in `?exclude=`).
    pub notes: Vec<String>,
}

/// Classifies a request from its raw `:path` and its headers.
pub fn classify(policy: &Policy, raw_path: &str, headers: &mut dyn RequestHeaders) -> Decision {
    let (path, query) = raw_path.split_once('?').unwrap_or((raw_path, ""));
    let Some(Target {
        endpoint,
        check: single,
        token: path_token,
    }) = target(policy, path)
    else {
        if under_path_prefix(policy, path) {
            // `<path_prefix>/...` belongs to meshprobe: whatever it names,
            // it never goes upstream (it may carry a secret).
            return Decision::Reply(Reply::plain(404, ""));
        }
        return pass_through(policy, path, query);
    };
    let Some(ep) = policy.endpoints.get(endpoint) else {
        return pass_through(policy, path, query);
    };

    let from_allowed_source = source_allowed(ep.sources.as_deref(), headers);
    let authorized = from_allowed_source && is_authorized(policy, path_token, query, headers);
    if !from_allowed_source || (ep.access == Access::Protected && !authorized) {
        let reply = match ep.on_unauthorized {
            Unauthorized::NotFound => Some(Reply::plain(404, "")),
            Unauthorized::Forbidden => Some(Reply::plain(403, "forbidden\n")),
            // A token path never goes upstream, even with a wrong token (a
            // near miss would put most of a secret in the app's logs); nor
            // does any other path below path_prefix (a per-check path of an
            // endpoint at the prefix itself).
            Unauthorized::PassThrough if under_path_prefix(policy, path) => {
                Some(Reply::plain(404, ""))
            }
            Unauthorized::PassThrough => None,
        };
        let new_path = match (&reply, pass_through(policy, path, query)) {
            (None, Decision::PassThrough { new_path }) => new_path,
            _ => None,
        };
        return Decision::Unauthorized {
            endpoint,
            reply,
            new_path,
        };
    }

    match headers.get(":method") {
        Some("GET" | "HEAD") => {}
        _ => {
            let mut reply = Parts::plain(405, "method not allowed\n");
            reply.headers.push(("allow", "GET, HEAD".into()));
            return Decision::Reply(reply.into());
        }
    }

    let details = match ep.details {
        Details::Never => false,
        Details::Authorized => authorized,
        Details::Always => true,
    } && (policy.authorization.detail_peers.is_empty()
        || headers
            .property(&["connection", "uri_san_peer_certificate"])
            .is_some_and(|san| policy.authorization.peer_may_see_details(&san)));
    // Naming checks (a per-check path, ?exclude=) is for callers that may
    // see them; to others a per-check path is not there.
    let mut checks = match single {
        Some(_) if !details => return Decision::Reply(Reply::plain(404, "")),
        Some(c) => Some(vec![c]),
        None => None,
    };
    let mut notes = Vec::new();
    if details && !query.is_empty() {
        for (key, raw) in query::params(query) {
            if key != "exclude" {
                continue;
            }
            let name = String::from_utf8_lossy(&query::decode(raw)).into_owned();
            let checks = checks.get_or_insert_with(|| ep.checks.clone());
            let before = checks.len();
            checks.retain(|&c| policy.checks.get(c).is_none_or(|k| k.name != name));
            if checks.len() == before
                && !ep
                    .checks
                    .iter()
                    .any(|&c| policy.checks.get(c).is_some_and(|k| k.name == name))
            {
                notes.push(format!("unknown check {name:?} in exclude"));
            }
        }
    }

    let accept = headers.get("accept");
    let format = match negotiate::choose(query::first(query, "format"), accept, ep.format) {
        Choice::Format(f) => f,
        Choice::UnknownFormat => {
            let names: Vec<&str> = Format::ALL.iter().map(|(n, _)| *n).collect();
            return Decision::Reply(Reply::plain(
                400,
                &format!("unknown format; use one of: {}\n", join(&names, ", ")),
            ));
        }
        Choice::NotAcceptable => {
            return Decision::Reply(Reply::plain(
                406,
                "none of the accepted media types is available\n",
            ));
        }
    };
    Decision::Probe(Probe {
        endpoint,
        authorized,
        details,
        format,
        verbose: query::flag(query, "verbose"),
        checks,
        notes,
    })
}

impl Probe {
    /// The checks to run: [`Probe::checks`], or all of the endpoint's in
    /// `policy` (the one it was classified with).
    pub fn checks<'a>(&'a self, policy: &'a Policy) -> &'a [usize] {
        match &self.checks {
            Some(checks) => checks,
            None => policy
                .endpoints
                .get(self.endpoint)
                .map_or(&[], |e| &e.checks),
        }
    }
}

/// What a probe path points at.
struct Target<'a> {
    endpoint: usize,
    /// A per-check path: that one check.
    check: Option<usize>,
    /// The token of a `<path_prefix>/<token>/...` path.
    token: Option<&'a str>,
}

/// `<endpoint path>`, `<endpoint path>/<check>`,
/// `<path_prefix>/<token>/<endpoint name>[/<check>]`; `None` for any other
/// path.
fn target<'a>(policy: &Policy, path: &'a str) -> Option<Target<'a>> {
    if let Some(endpoint) = policy.endpoint_by_path(path) {
        return Some(Target {
            endpoint,
            check: None,
            token: None,
        });
    }
    if let Some(t) = token_path(policy, path) {
        return Some(t);
    }
    let (base, check) = path.rsplit_once('/')?;
    let endpoint = policy.endpoint_by_path(base)?;
    Some(Target {
        endpoint,
        check: Some(check_of(policy, endpoint, check)?),
        token: None,
    })
}

/// `path` lies below `authorization.path_prefix`.
fn under_path_prefix(policy: &Policy, path: &str) -> bool {
    policy
        .authorization
        .path_prefix
        .as_deref()
        .and_then(|prefix| path.strip_prefix(prefix))
        .is_some_and(|rest| rest.starts_with('/'))
}

fn token_path<'a>(policy: &Policy, path: &'a str) -> Option<Target<'a>> {
    let prefix = policy.authorization.path_prefix.as_deref()?;
    let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
    let (token, name) = rest.split_once('/')?;
    if token.is_empty() {
        return None;
    }
    let (name, check) = match name.split_once('/') {
        Some((n, c)) => (n, Some(c)),
        None => (name, None),
    };
    let endpoint = policy.endpoint_by_name(name)?;
    let check = match check {
        Some(c) => Some(check_of(policy, endpoint, c)?),
        None => None,
    };
    Some(Target {
        endpoint,
        check,
        token: Some(token),
    })
}

/// The check named `name` among `endpoint`'s checks.
fn check_of(policy: &Policy, endpoint: usize, name: &str) -> Option<usize> {
    policy
        .endpoints
        .get(endpoint)?
        .checks
        .iter()
        .copied()
        .find(|&c| policy.checks.get(c).is_some_and(|k| k.name == name))
}

fn is_authorized(
    policy: &Policy,
    path_token: Option<&str>,
    query: &str,
    headers: &mut dyn RequestHeaders,
) -> bool {
    let auth = &policy.authorization;
    let secrets = &auth.secrets;
    if secrets.is_empty() {
        return false;
    }
    if let Some(token) = path_token {
        return secret::matches_any(&query::decode_path(token), secrets);
    }
    if let Some(name) = &auth.header {
        if let Some(value) = headers.get(name) {
            if secret::matches_any(value.as_bytes(), secrets) {
                return true;
            }
        }
    }
    if let Some(param) = &auth.query_param {
        if let Some(raw) = query::first(query, param) {
            if secret::matches_any(&query::decode(raw), secrets) {
                return true;
            }
        }
    }
    if auth.bearer {
        if let Some(value) = headers.get("authorization") {
            let token = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t);
            if let Some(token) = token {
                if secret::matches_any(token.as_bytes(), secrets) {
                    return true;
                }
            }
        }
    }
    false
}

fn pass_through(policy: &Policy, path: &str, query: &str) -> Decision {
    let new_path = policy
        .authorization
        .query_param
        .as_deref()
        .and_then(|param| query::without(path, query, param));
    Decision::PassThrough { new_path }
}

pub mod grpc;

#[cfg(test)]
mod tests;
