//! Durations written as strings in the policy: `"500ms"`, `"2s"`, `"1.5s"`, `"1m"`.

/// Parses a duration string into whole milliseconds.
///
/// Accepted units: `ms`, `s`, `m`. A fractional part is allowed for `s` and
/// `m` as long as the result is a whole number of milliseconds.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s or m, e.g. \"500ms\")"))?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a duration (a number then ms, s or m, e.g. \"500ms\")"
        ));
    }
    let scale: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        _ => {
            return Err(format!(
                "{text:?} has unknown unit {unit:?} (use ms, s or m)"
            ))
        }
    };
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return Err(format!("{text:?} has no number"));
    }
    let whole_value: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("{text:?} is not a valid number"))?
    };
    // Fraction: scale each digit; reject precision finer than 1 ms.
    let mut frac_ms: u64 = 0;
    let mut place = scale;
    for c in frac.chars() {
        let digit = u64::from(
            c.to_digit(10)
                .ok_or_else(|| format!("{text:?} is not a valid number"))?,
        );
        if place % 10 != 0 {
            if digit != 0 {
                return Err(format!("{text:?} is finer than one millisecond"));
            }
            continue;
        }
        place /= 10;
        frac_ms += digit * place;
    }
    whole_value
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_ms))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Formats milliseconds the way the policy accepts them back (`"800ms"`, `"2s"`).
pub fn format_millis(ms: u64) -> String {
    if ms >= 1_000 && ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn parses_the_accepted_forms() {
        let cases = [
            ("500ms", 500),
            ("2s", 2_000),
            ("1.5s", 1_500),
            ("0.25s", 250),
            ("1m", 60_000),
            (" 30ms ", 30),
            ("0ms", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_millis(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for text in [
            "",
            "500",
            "ms",
            "5h",
            "1.0001s",
            "-1s",
            "1..2s",
            "abc",
            "99999999999999999999s",
        ] {
            assert!(parse_millis(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn formats_round_trip() {
        for ms in [1, 500, 1_000, 1_500, 60_000] {
            assert_eq!(parse_millis(&format_millis(ms)), Ok(ms));
        }
    }
}
