//! Rendering a report into an HTTP answer: pure functions, one per format.

mod feed;
pub mod grpc;
mod html;
mod json;
mod openmetrics;
mod text;
pub mod time;

use crate::policy::{Format, Service, StatusCodes};
use crate::report::{Health, Report};
use std::borrow::Cow;
use std::rc::Rc;

/// The response header on every probe answer meshprobe renders (not on its
/// 400/404/405/406 refusals): `x-meshprobe: probe`. Access-log filters
/// match it to keep probes out of the logs.
pub const ANSWER_HEADER: &str = "x-meshprobe";

/// A local reply, shared: a reply rendered once is sent for every probe
/// of its view, and cloning it copies nothing. Its parts are read through
/// it ([`Parts`]); the `Age` header of an answer from a result is its
/// own ([`Reply::with_age`]), so the rest stays shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    parts: Rc<Parts>,
    age: Option<u64>,
}

/// A header of a reply: its value is mostly a constant, borrowed.
pub type Header = (&'static str, Cow<'static, str>);

/// A reply's status, headers and body (or gRPC status). Header values are mostly
/// constants, borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// The answer to a gRPC probe ([`grpc::reply`]): no HTTP answer, but
    /// this status (see [`grpc::action`]).
    pub grpc: Option<grpc::Status>,
    /// Its headers as the host serializes them, with and without its
    /// last `Age`, once ([`Reply::sent`]).
    map: Memo,
}

/// What a reply's headers serialize to, once known, and the same with the
/// `Age` header of the last age it was sent with (probes from one result
/// in the same second share it): kept, not part of the reply's value
/// (every reply equals itself before and after; a copy starts empty).
#[derive(Default)]
struct Memo {
    map: std::cell::OnceCell<Vec<u8>>,
    aged: std::cell::Cell<Option<(u64, Vec<u8>)>>,
}

impl Clone for Memo {
    fn clone(&self) -> Memo {
        Memo::default()
    }
}

impl PartialEq for Memo {
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

impl Eq for Memo {}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

impl Parts {
    /// The parts of [`Reply::plain`], to add to.
    pub fn plain(status: u16, body: &str) -> Parts {
        Parts {
            status,
            headers: headers("text/plain; charset=utf-8"),
            body: body.as_bytes().to_vec(),
            grpc: None,
            map: Memo::default(),
        }
    }
}

impl std::ops::Deref for Reply {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.parts
    }
}

impl From<Parts> for Reply {
    fn from(parts: Parts) -> Reply {
        Reply {
            parts: Rc::new(parts),
            age: None,
        }
    }
}

/// The headers of every answer on a probe endpoint, whatever its status:
/// never cached, the format depends on `Accept`, never sniffed.
const EVERY_ANSWER: [(&str, &str); 3] = [
    ("cache-control", "no-store"),
    ("vary", "Accept"),
    ("x-content-type-options", "nosniff"),
];

/// `content-type`, then [`EVERY_ANSWER`].
fn headers(content_type: &'static str) -> Vec<Header> {
    let mut headers = vec![("content-type", content_type.into())];
    headers.extend(EVERY_ANSWER.iter().map(|&(k, v)| (k, v.into())));
    headers
}

impl Reply {
    /// A short plain-text answer (errors: 400, 403, 404, 405, 406...),
    /// with the headers of every answer.
    pub fn plain(status: u16, body: &str) -> Reply {
        Reply::from(Parts::plain(status, body))
    }

    /// The same reply with an `Age` header of `secs` seconds, sent after
    /// its other headers.
    pub fn with_age(self, secs: u64) -> Reply {
        Reply {
            age: Some(secs),
            ..self
        }
    }

    /// Its `Age` header, in seconds, if it has one (the host reads it
    /// through [`Reply::sent`]).
    #[cfg(test)]
    pub fn age(&self) -> Option<u64> {
        self.age
    }

    /// Its headers as `serialize` writes them, with its `Age` header added
    /// by `age` to that map, given to `send`. Each is called once per
    /// reply (and per age) however often it is sent: a reply rendered once
    /// is serialized once, and aged once a second.
    pub fn sent<R>(
        &self,
        serialize: impl FnOnce(&[Header]) -> Vec<u8>,
        age: impl FnOnce(&[u8], u64) -> Vec<u8>,
        send: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let memo = &self.parts.map;
        let map = memo.map.get_or_init(|| serialize(&self.parts.headers));
        let Some(secs) = self.age else {
            return send(map);
        };
        // Taken out while sent: a send from within it ages its own.
        let aged = match memo.aged.take() {
            Some((at, map)) if at == secs => map,
            _ => age(map, secs),
        };
        let sent = send(&aged);
        memo.aged.set(Some((secs, aged)));
        sent
    }
}

/// How a report is shown to this caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub format: Format,
    pub verbose: bool,
    /// Check names, reasons, latencies and the version may be shown.
    pub details: bool,
    pub codes: StatusCodes,
    /// `x-envoy-degraded` on a `warn` answer.
    pub degraded_header: bool,
}

impl View {
    /// A view with the default status codes and no degraded header.
    pub fn new(format: Format, verbose: bool, details: bool) -> View {
        View {
            format,
            verbose,
            details,
            codes: StatusCodes::default(),
            degraded_header: false,
        }
    }
}

/// Renders `report` for `view`. For `HEAD` the same reply is sent: Envoy
/// keeps its headers (with the `content-length` a GET would get) and never
/// writes the body.
pub fn render(report: &Report, view: &View, service: &Service) -> Reply {
    let body = match view.format {
        Format::Text => text::text(report, view),
        Format::Json => json::json(report, view),
        Format::Dhc => json::dhc(report, view),
        Format::Health => json::health(report, view, service),
        Format::Html => html::page(report, view),
        Format::Atom => feed::atom(report, view),
        Format::Rss => feed::rss(report, view),
        Format::OpenMetrics => openmetrics::openmetrics(report, view),
        Format::Grpc => return grpc::reply(report, view),
    };
    let status = if view.format.always_ok() {
        200
    } else {
        report.health.http_status(&view.codes)
    };
    let mut headers = headers(view.format.content_type());
    // Marks an answer meshprobe gave itself, so that an access-log filter
    // can leave probes out (docs/observability.md).
    headers.push((ANSWER_HEADER, "probe".into()));
    if view.format == Format::Html {
        // Defence in depth: the page needs no script and no external asset.
        headers.push((
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'".into(),
        ));
    }
    if view.degraded_header && report.health == Health::Warn {
        headers.push(("x-envoy-degraded", "true".into()));
    }
    Reply::from(Parts {
        status,
        headers,
        body: body.into_bytes(),
        grpc: None,
        map: Memo::default(),
    })
}

/// Escapes text for HTML and XML (element content and quoted attributes).
pub(crate) fn escape_markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
