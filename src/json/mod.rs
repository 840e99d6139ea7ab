//! A small JSON value, parser and writer: the policy, `expect_body.pointer`
//! bodies, Envoy's admin answers and the shared result cache.
//!
//! It stands in for `serde_json::Value` in the module, with the same
//! behaviour where meshprobe shows it: the same numbers (`u64`, `i64` or
//! `f64`, never equal across kinds), objects sorted by key with the last
//! duplicate key winning, the same compact text, the same JSON pointers and
//! the same error messages with line and column (the tests in
//! `json/tests.rs` compare both on every case). serde's generic machinery
//! (derives, visitors, float `Display`) cost the module some 90 KB.

mod parse;
mod write;

pub use parse::{from_slice, Error};
pub use write::quote;

use std::fmt;

/// A JSON object: keys sorted and unique (the last of duplicates wins), as
/// `serde_json::Map` without `preserve_order`. A sorted vector: a
/// `BTreeMap` cost the module some 6 KB.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map(Vec<(String, Value)>);

impl Map {
    /// From entries in document order: each goes in its place by key, a
    /// later duplicate over the earlier one. (The standard library's
    /// stable sort cost the module 3 KB.)
    fn from_entries(entries: Vec<(String, Value)>) -> Map {
        let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match out.binary_search_by(|(k, _)| k.as_str().cmp(&entry.0)) {
                Ok(at) => {
                    if let Some(slot) = out.get_mut(at) {
                        *slot = entry;
                    }
                }
                Err(at) => out.insert(at, entry),
            }
        }
        Map(out)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        let i = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        self.0.get(i).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A JSON number: kept as parsed, an integer when it is one.
#[derive(Debug, Clone, Copy)]
pub struct Number(N);

#[derive(Debug, Clone, Copy)]
enum N {
    /// A whole number of zero or more.
    PosInt(u64),
    /// A whole number below zero.
    NegInt(i64),
    /// Any other number: finite.
    Float(f64),
}

impl PartialEq for Number {
    /// Integers and floats never compare equal (`1` is not `1.0`), as in
    /// `serde_json`.
    fn eq(&self, other: &Number) -> bool {
        match (self.0, other.0) {
            (N::PosInt(a), N::PosInt(b)) => a == b,
            (N::NegInt(a), N::NegInt(b)) => a == b,
            (N::Float(a), N::Float(b)) => a == b,
            _ => false,
        }
    }
}

impl Number {
    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            N::PosInt(n) => Some(n),
            _ => None,
        }
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Number {
        Number(N::PosInt(n))
    }
}

/// A JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

impl Value {
    /// The field `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// The value at a JSON pointer (RFC 6901): `""` is the whole document;
    /// `~1` is `/` and `~0` is `~`; an array index has no sign and no
    /// leading zero.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/')
            .map(|t| tilde(&tilde(t, '1', '/'), '0', '~'))
            .try_fold(self, |target, token| match target {
                Value::Object(map) => map.get(&token),
                Value::Array(items) => index(&token).and_then(|i| items.get(i)),
                _ => None,
            })
    }
}

/// `s` with every `~<digit>` replaced by `to`, left to right (as
/// `str::replace`, without its two-way searcher: ~3 KB of the module).
fn tilde(s: &str, digit: char, to: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && chars.peek() == Some(&digit) {
            chars.next();
            out.push(to);
        } else {
            out.push(c);
        }
    }
    out
}

fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Number(n.into())
    }
}

impl fmt::Display for Value {
    /// Compact JSON text, as `serde_json`'s `to_string`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write::value(&mut out, self);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests;
