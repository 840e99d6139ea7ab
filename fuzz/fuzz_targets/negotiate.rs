//! Format negotiation: an arbitrary `?format=` value and `Accept` header.
//!
//! Invariants: `?format=` alone decides when present; `Accept` never yields
//! `UnknownFormat`; media ranges are case-insensitive and blanks around
//! `,` and `;` do not matter; a leading `*/*` always leaves something
//! acceptable; the endpoint's default wins when `Accept` is absent or
//! blank.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use meshprobe::format::Format;
use meshprobe::negotiate::{choose, Choice};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    format_param: Option<&'a str>,
    accept: Option<Accept<'a>>,
    default: u8,
}

/// An `Accept` value: raw text, or ranges built from known pieces so the
/// fuzzer reaches q-values and specificity quickly.
#[derive(Arbitrary, Debug)]
enum Accept<'a> {
    Raw(&'a str),
    Ranges(Vec<Range<'a>>),
}

#[derive(Arbitrary, Debug)]
struct Range<'a> {
    media: Media<'a>,
    q: Option<Q<'a>>,
    extra: Option<&'a str>,
}

#[derive(Arbitrary, Debug)]
enum Media<'a> {
    Known(u8),
    Any,
    Kind(u8),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Q<'a> {
    Thousandths(u16),
    Raw(&'a str),
}

const KNOWN: &[&str] = &[
    "text/plain",
    "application/json",
    "application/health+json",
    "text/html",
    "application/xhtml+xml",
    "application/atom+xml",
    "application/rss+xml",
    "application/openmetrics-text",
    "image/png",
];

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list.get(usize::from(i) % list.len()).copied().unwrap_or("")
}

impl Accept<'_> {
    fn text(&self) -> String {
        match self {
            Accept::Raw(s) => (*s).to_string(),
            Accept::Ranges(ranges) => {
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|r| {
                        let mut s = match &r.media {
                            Media::Known(i) => pick(KNOWN, *i).to_string(),
                            Media::Any => "*/*".to_string(),
                            Media::Kind(i) => {
                                format!("{}/*", pick(&["text", "application", "image"], *i))
                            }
                            Media::Raw(m) => (*m).to_string(),
                        };
                        if let Some(extra) = r.extra {
                            s.push(';');
                            s.push_str(extra);
                        }
                        match &r.q {
                            None => {}
                            Some(Q::Thousandths(t)) => {
                                let t = t % 1001;
                                s.push_str(&format!(";q={}.{:03}", t / 1000, t % 1000));
                            }
                            Some(Q::Raw(q)) => s.push_str(&format!(";q={q}")),
                        }
                        s
                    })
                    .collect();
                parts.join(",")
            }
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let default = Format::ALL
        .get(usize::from(input.default) % Format::ALL.len())
        .map_or(Format::Text, |(_, f)| *f);
    let accept = input.accept.as_ref().map(Accept::text);
    let accept = accept.as_deref();
    let got = choose(input.format_param, accept, default);

    // ?format= decides on its own.
    if let Some(name) = input.format_param {
        let want = Format::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Choice::UnknownFormat, |(_, f)| Choice::Format(*f));
        assert_eq!(got, want);
        return;
    }
    assert_ne!(got, Choice::UnknownFormat);

    let Some(accept) = accept else {
        assert_eq!(got, Choice::Format(default));
        return;
    };
    if accept.trim().is_empty() {
        assert_eq!(got, Choice::Format(default));
    }
    // Case does not matter (media types, and `q=`/`Q=`).
    assert_eq!(
        choose(None, Some(&accept.to_ascii_uppercase()), default),
        got,
        "upper-cased {accept:?}"
    );
    assert_eq!(
        choose(None, Some(&accept.to_ascii_lowercase()), default),
        got,
        "lower-cased {accept:?}"
    );
    // Blanks around the separators do not matter.
    let spaced = accept.replace(',', " , ").replace(';', " ; ");
    assert_eq!(choose(None, Some(&spaced), default), got, "{spaced:?}");
    // A leading */* makes the default (or a better match) acceptable.
    let any = format!("*/*,{accept}");
    assert!(matches!(
        choose(None, Some(&any), Format::Dhc),
        Choice::Format(_)
    ));
    // Naming a format's own media type alone selects it.
    if let Choice::Format(f) = got {
        for media in f.media_types() {
            assert_eq!(choose(None, Some(media), default), Choice::Format(f));
        }
    }
});
