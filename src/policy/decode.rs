//! Phase one of reading a policy: the JSON document, walked with the path of
//! every value, into plain typed fields. Every problem is collected (not just
//! the first), and each names the field path, e.g. `checks[2].timeout`.
//!
//! The set of fields an object accepts is its `&[FieldDoc]` table in
//! [`super::fields`]: the same tables render the README's configuration
//! reference, so the decoder and the docs cannot drift apart.

use super::fields::FieldDoc;
use super::ConfigError;
use crate::json::{Map, Value};
use crate::text;

/// Collects configuration errors while decoding and validating.
#[derive(Default, Debug)]
pub struct Errors(pub Vec<ConfigError>);

impl Errors {
    pub fn push(&mut self, path: &str, reason: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.to_string(),
            reason: reason.into(),
        });
    }
}

/// A JSON type name for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An object being decoded: knows its path and which fields it accepts.
pub struct Obj<'a> {
    map: &'a Map,
    path: String,
}

impl<'a> Obj<'a> {
    /// Opens `value` as an object at `path`; reports a wrong type or any
    /// field not listed in `fields`.
    pub fn open(
        value: &'a Value,
        path: &str,
        fields: &'static [FieldDoc],
        errs: &mut Errors,
    ) -> Option<Obj<'a>> {
        let Value::Object(map) = value else {
            errs.push(
                path,
                format!("expected an object, found {}", type_name(value)),
            );
            return None;
        };
        for key in map.keys() {
            if !fields.iter().any(|f| f.name == key) {
                let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                errs.push(
                    &join(path, key),
                    format!(
                        "unknown field (expected one of: {})",
                        text::join(&known, ", ")
                    ),
                );
            }
        }
        Some(Obj {
            map,
            path: path.to_string(),
        })
    }

    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of a field, `None` when absent or `null`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        let value = self.get(key)?;
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                errs.push(
                    &self.path_of(key),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A required string: reports its absence.
    pub fn required_string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        if self.get(key).is_none() {
            errs.push(&self.path_of(key), "is required");
            return None;
        }
        self.string(key, errs)
    }

    pub fn bool(&self, key: &str, errs: &mut Errors) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                errs.push(
                    &self.path_of(key),
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn array(&self, key: &str, errs: &mut Errors) -> Option<&'a Vec<Value>> {
        match self.get(key)? {
            Value::Array(items) => Some(items),
            other => {
                errs.push(
                    &self.path_of(key),
                    format!("expected an array, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn object(&self, key: &str, errs: &mut Errors) -> Option<&'a Map> {
        match self.get(key)? {
            Value::Object(map) => Some(map),
            other => {
                errs.push(
                    &self.path_of(key),
                    format!("expected an object, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A whole number (not negative).
    pub fn number(&self, key: &str, errs: &mut Errors) -> Option<u64> {
        match self.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                errs.push(
                    &self.path_of(key),
                    format!("expected a whole number, found {other}"),
                );
                None
            }
        }
    }

    /// A duration string (`"500ms"`) in milliseconds; zero is refused.
    pub fn duration(&self, key: &str, errs: &mut Errors) -> Option<u64> {
        let text = self.string(key, errs)?;
        match crate::duration::parse_millis(&text) {
            Ok(0) => {
                errs.push(&self.path_of(key), "must be greater than zero");
                None
            }
            Ok(ms) => Some(ms),
            Err(reason) => {
                errs.push(&self.path_of(key), reason);
                None
            }
        }
    }

    /// A duration string in milliseconds where zero is allowed.
    pub fn duration_or_zero(&self, key: &str, errs: &mut Errors) -> Option<u64> {
        let text = self.string(key, errs)?;
        crate::duration::parse_millis(&text)
            .map_err(|reason| errs.push(&self.path_of(key), reason))
            .ok()
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(
        &self,
        key: &str,
        choices: &[(&str, T)],
        errs: &mut Errors,
    ) -> Option<T> {
        let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
        let at = self.word(key, &words, errs)?;
        choices.get(at).map(|(_, value)| *value)
    }

    /// Which of `words` the value is (one function for every set of
    /// choices: a generic one cost the module a copy per type).
    fn word(&self, key: &str, words: &[&str], errs: &mut Errors) -> Option<usize> {
        let text = self.string(key, errs)?;
        if let Some(at) = words.iter().position(|word| *word == text) {
            return Some(at);
        }
        errs.push(
            &self.path_of(key),
            format!("{text:?} is not one of: {}", text::join(words, ", ")),
        );
        None
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// An HTTP token (RFC 9110): method names and header names.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
