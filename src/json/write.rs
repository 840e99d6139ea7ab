//! Compact JSON text, byte for byte what `serde_json::to_string` writes.

use super::{Number, Value, N};

/// `s` as a JSON string literal: `"` and `\` escaped, control characters
/// as `\b \t \n \f \r` or `\u00XX` (lowercase hex), everything else as is.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    string(&mut out, s);
    out
}

pub(super) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = u32::from(c) as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX.get(b >> 4).copied().unwrap_or(b'0')));
                out.push(char::from(HEX.get(b & 0xf).copied().unwrap_or(b'0')));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn number(out: &mut String, n: &Number) {
    use std::fmt::Write as _;
    let _ = match n.0 {
        N::PosInt(v) => write!(out, "{v}"),
        N::NegInt(v) => write!(out, "{v}"),
        N::Float(v) if v.is_finite() => {
            out.push_str(zmij::Buffer::new().format_finite(v));
            Ok(())
        }
        N::Float(_) => {
            out.push_str("null");
            Ok(())
        }
    };
}

pub(super) fn value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => number(out, n),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, key);
                out.push(':');
                value(out, item);
            }
            out.push('}');
        }
    }
}
