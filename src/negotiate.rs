//! Choosing the output format: `?format=` wins, else `Accept` with q-values.

use crate::policy::Format;

/// The outcome of negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Format(Format),
    /// `?format=` named a format that does not exist.
    UnknownFormat,
    /// `Accept` allows none of the formats (406).
    NotAcceptable,
}

/// Picks a format from `?format=` (raw query value), then `Accept`, then the
/// endpoint's default.
pub fn choose(format_param: Option<&str>, accept: Option<&str>, default: Format) -> Choice {
    if let Some(name) = format_param {
        return match Format::ALL.iter().find(|(n, _)| *n == name) {
            Some((_, f)) => Choice::Format(*f),
            None => Choice::UnknownFormat,
        };
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Choice::Format(default);
    };
    // Best (q, specificity) per format; the default wins ties, then the
    // order of Format::ALL.
    let mut best: Option<(u16, Format)> = None;
    let candidates = std::iter::once(default).chain(Format::ALL.iter().map(|(_, f)| *f));
    for format in candidates {
        let q = quality(accept, format);
        if q > 0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    match best {
        Some((_, f)) => Choice::Format(f),
        None => Choice::NotAcceptable,
    }
}

/// The q-value (0-1000) `accept` gives `format`, taken from the most
/// specific matching media range.
fn quality(accept: &str, format: Format) -> u16 {
    let mut best: Option<(u8, u16)> = None; // (specificity, q)
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
            })
            .next()
            .map_or(1000, parse_q);
        let specificity = if media == "*/*" {
            1
        } else if let Some(kind) = media.strip_suffix("/*") {
            if format
                .media_types()
                .iter()
                .any(|t| t.split('/').next() == Some(kind))
            {
                2
            } else {
                0
            }
        } else if format.media_types().contains(&media.as_str()) {
            3
        } else {
            0
        };
        if specificity > 0 && best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0, |(_, q)| q)
}

/// Parses a q-value to thousandths; malformed values count as 0.
fn parse_q(text: &str) -> u16 {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1].get(i).copied().unwrap_or(0);
    }
    (whole + thousandths).min(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;
    use Format::*;

    #[test]
    fn negotiation_table() {
        let cases: &[(Option<&str>, Option<&str>, Format, Choice)] = &[
            (None, None, Text, Choice::Format(Text)),
            (None, None, Json, Choice::Format(Json)),
            (Some("json"), Some("text/plain"), Text, Choice::Format(Json)),
            (Some("text"), None, Json, Choice::Format(Text)),
            (Some("xml"), None, Text, Choice::UnknownFormat),
            (None, Some("application/json"), Text, Choice::Format(Json)),
            (None, Some("*/*"), Json, Choice::Format(Json)),
            (None, Some("*/*"), Text, Choice::Format(Text)),
            (None, Some("text/*"), Json, Choice::Format(Text)),
            (
                None,
                Some("text/plain;q=0.5, application/json"),
                Text,
                Choice::Format(Json),
            ),
            (
                None,
                Some("text/plain, application/json;q=0.9"),
                Json,
                Choice::Format(Text),
            ),
            (
                None,
                Some("application/json;q=0, */*"),
                Json,
                Choice::Format(Text),
            ),
            (None, Some("image/png"), Text, Choice::NotAcceptable),
            (
                None,
                Some("text/html,application/xhtml+xml,*/*;q=0.8"),
                Text,
                Choice::Format(Html),
            ),
            (
                None,
                Some("application/health+json"),
                Text,
                Choice::Format(Health),
            ),
            (
                None,
                Some("application/atom+xml"),
                Json,
                Choice::Format(Atom),
            ),
            (
                None,
                Some("application/rss+xml, application/atom+xml;q=0.5"),
                Json,
                Choice::Format(Rss),
            ),
            (None, Some("application/*"), Text, Choice::Format(Json)),
            (None, Some("application/*"), Health, Choice::Format(Health)),
            (Some("dhc"), Some("text/html"), Text, Choice::Format(Dhc)),
            (Some("health"), None, Text, Choice::Format(Health)),
            (
                None,
                Some("text/html;q=0.1, text/plain;q=0.2"),
                Json,
                Choice::Format(Text),
            ),
            (None, Some("  "), Text, Choice::Format(Text)),
            (
                Some("openmetrics"),
                None,
                Json,
                Choice::Format(OpenMetrics),
            ),
            // What Prometheus sends when it scrapes.
            (
                None,
                Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                Text,
                Choice::Format(OpenMetrics),
            ),
            (
                None,
                Some("application/json;q=abc"),
                Text,
                Choice::NotAcceptable,
            ),
        ];
        for (param, accept, default, want) in cases {
            assert_eq!(
                choose(*param, *accept, *default),
                *want,
                "{param:?} {accept:?} {default:?}"
            );
        }
    }

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), 1000);
        assert_eq!(parse_q("0.5"), 500);
        assert_eq!(parse_q("0.125"), 125);
        assert_eq!(parse_q("1.0"), 1000);
        assert_eq!(parse_q("0.1234"), 0);
        assert_eq!(parse_q("2"), 0);
    }
}
