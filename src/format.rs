//! The output formats, their names (`?format=`), media types and
//! `Content-Type`s.

/// An output format of a probe answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `ok` / `warn` / `fail`; Kubernetes-style lines with `?verbose`.
    Text,
    /// meshprobe's JSON object.
    Json,
    /// `application/health+json` (draft-inadarei-api-health-check).
    Health,
    /// django-health-check's map, `{"db": "working"}`.
    Dhc,
    /// A self-contained status page.
    Html,
    /// Atom feed of the checks not passing.
    Atom,
    /// RSS 2.0 feed of the checks not passing.
    Rss,
    /// OpenMetrics text: status and response-time gauges for a scraper.
    OpenMetrics,
    /// The answer to a gRPC health probe (`grpc-status`, `grpc-message`);
    /// never negotiated, not in [`Format::ALL`].
    Grpc,
}

impl Format {
    /// Every format by its `?format=` name, in negotiation order.
    pub const ALL: &'static [(&'static str, Format)] = &[
        ("text", Format::Text),
        ("json", Format::Json),
        ("health", Format::Health),
        ("html", Format::Html),
        ("atom", Format::Atom),
        ("rss", Format::Rss),
        ("dhc", Format::Dhc),
        ("openmetrics", Format::OpenMetrics),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("text", |(n, _)| n)
    }

    /// Media types that select this format through `Accept`. `dhc` has
    /// none: it is chosen with `?format=dhc` only.
    pub fn media_types(self) -> &'static [&'static str] {
        match self {
            Format::Text => &["text/plain"],
            Format::Json => &["application/json"],
            Format::Health => &["application/health+json"],
            Format::Dhc => &[],
            Format::Html => &["text/html", "application/xhtml+xml"],
            Format::Atom => &["application/atom+xml"],
            Format::Rss => &["application/rss+xml"],
            Format::OpenMetrics => &["application/openmetrics-text"],
            Format::Grpc => &[],
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json | Format::Dhc => "application/json",
            Format::Health => "application/health+json",
            Format::Html => "text/html; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Grpc => "application/grpc",
        }
    }

    /// Feeds answer 200 whatever the health, as feeds should.
    pub fn is_feed(self) -> bool {
        matches!(self, Format::Atom | Format::Rss)
    }

    /// Answered 200 whatever the health: the feeds, and OpenMetrics (a
    /// scraper must never take a failing service for a failed scrape; the
    /// health is in the gauges).
    pub fn always_ok(self) -> bool {
        self.is_feed() || self == Format::OpenMetrics
    }
}
