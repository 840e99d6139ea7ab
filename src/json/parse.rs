//! The JSON parser: RFC 8259 text into a [`Value`], with `serde_json`'s
//! error messages and positions (`expected value at line 1 column 1`),
//! which meshprobe shows in policy refusals and check reasons.
//!
//! Numbers as `serde_json` parses them on wasm32: a whole number is a
//! `u64` (or an `i64` below zero), anything else an `f64` from the
//! significand's first 19-20 digits and the exponent, scaled by a power of
//! ten; beyond `f64` is `number out of range`.

use super::{Map, Value};
use std::fmt;

/// Nesting deeper than this is refused (`recursion limit exceeded`).
const MAX_DEPTH: u8 = 128;

/// Why a text is not JSON, and where (1-based line, 0-based column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    line: usize,
    column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    EofWhileParsingList,
    EofWhileParsingObject,
    EofWhileParsingString,
    EofWhileParsingValue,
    ExpectedColon,
    ExpectedListCommaOrEnd,
    ExpectedObjectCommaOrEnd,
    ExpectedSomeIdent,
    ExpectedSomeValue,
    InvalidEscape,
    InvalidNumber,
    NumberOutOfRange,
    InvalidUnicodeCodePoint,
    ControlCharacterWhileParsingString,
    KeyMustBeAString,
    LoneLeadingSurrogateInHexEscape,
    TrailingComma,
    TrailingCharacters,
    UnexpectedEndOfHexEscape,
    RecursionLimitExceeded,
}

impl Code {
    fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            EofWhileParsingList => "EOF while parsing a list",
            EofWhileParsingObject => "EOF while parsing an object",
            EofWhileParsingString => "EOF while parsing a string",
            EofWhileParsingValue => "EOF while parsing a value",
            ExpectedColon => "expected `:`",
            ExpectedListCommaOrEnd => "expected `,` or `]`",
            ExpectedObjectCommaOrEnd => "expected `,` or `}`",
            ExpectedSomeIdent => "expected ident",
            ExpectedSomeValue => "expected value",
            InvalidEscape => "invalid escape",
            InvalidNumber => "invalid number",
            NumberOutOfRange => "number out of range",
            InvalidUnicodeCodePoint => "invalid unicode code point",
            ControlCharacterWhileParsingString => {
                "control character (\\u0000-\\u001F) found while parsing a string"
            }
            KeyMustBeAString => "key must be a string",
            LoneLeadingSurrogateInHexEscape => "lone leading surrogate in hex escape",
            TrailingComma => "trailing comma",
            TrailingCharacters => "trailing characters",
            UnexpectedEndOfHexEscape => "unexpected end of hex escape",
            RecursionLimitExceeded => "recursion limit exceeded",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.code.as_str(),
            self.line,
            self.column
        )
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Parses one JSON value; only white space may follow it.
pub fn from_slice(bytes: &[u8]) -> Result<Value> {
    let mut p = Parser {
        s: bytes,
        i: 0,
        depth: MAX_DEPTH,
    };
    let value = p.value()?;
    match p.whitespace() {
        Some(_) => Err(p.peek_error(Code::TrailingCharacters)),
        None => Ok(value),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: u8,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_or_null(&self) -> u8 {
        self.peek().unwrap_or(0)
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn at(&self, i: usize, code: Code) -> Error {
        let before = self.s.get(..i).unwrap_or(self.s);
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let line = 1 + before.iter().take(start).filter(|&&b| b == b'\n').count();
        Error {
            code,
            line,
            column: i - start,
        }
    }

    /// An error at the current position.
    fn error(&self, code: Code) -> Error {
        self.at(self.i, code)
    }

    /// An error at the byte just peeked.
    fn peek_error(&self, code: Code) -> Error {
        self.at(self.s.len().min(self.i + 1), code)
    }

    fn whitespace(&mut self) -> Option<u8> {
        while let Some(b) = self.peek() {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.i += 1;
        }
        None
    }

    fn value(&mut self) -> Result<Value> {
        let Some(peek) = self.whitespace() else {
            return Err(self.peek_error(Code::EofWhileParsingValue));
        };
        match peek {
            b'n' => self.ident(b"null", Value::Null),
            b't' => self.ident(b"true", Value::Bool(true)),
            b'f' => self.ident(b"false", Value::Bool(false)),
            b'-' => {
                self.i += 1;
                self.integer(false)
            }
            b'0'..=b'9' => self.integer(true),
            b'"' => {
                self.i += 1;
                self.string().map(Value::String)
            }
            b'[' | b'{' => {
                self.depth -= 1;
                if self.depth == 0 {
                    return Err(self.peek_error(Code::RecursionLimitExceeded));
                }
                self.i += 1;
                let value = if peek == b'[' {
                    self.array().map(Value::Array)
                } else {
                    self.object().map(Value::Object)
                };
                self.depth += 1;
                value
            }
            _ => Err(self.peek_error(Code::ExpectedSomeValue)),
        }
    }

    fn ident(&mut self, word: &[u8], value: Value) -> Result<Value> {
        self.i += 1;
        for expected in word.iter().skip(1) {
            match self.next() {
                None => return Err(self.error(Code::EofWhileParsingValue)),
                Some(b) if b != *expected => return Err(self.error(Code::ExpectedSomeIdent)),
                Some(_) => {}
            }
        }
        Ok(value)
    }

    fn array(&mut self) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            let Some(peek) = self.whitespace() else {
                return Err(self.peek_error(Code::EofWhileParsingList));
            };
            if peek == b']' {
                self.i += 1;
                return Ok(items);
            }
            if !items.is_empty() {
                if peek != b',' {
                    return Err(self.peek_error(Code::ExpectedListCommaOrEnd));
                }
                self.i += 1;
                match self.whitespace() {
                    Some(b']') => return Err(self.peek_error(Code::TrailingComma)),
                    Some(_) => {}
                    None => return Err(self.peek_error(Code::EofWhileParsingValue)),
                }
            }
            items.push(self.value()?);
        }
    }

    fn object(&mut self) -> Result<Map> {
        let mut entries = Vec::new();
        let mut first = true;
        loop {
            let Some(peek) = self.whitespace() else {
                return Err(self.peek_error(Code::EofWhileParsingObject));
            };
            if peek == b'}' {
                self.i += 1;
                return Ok(Map::from_entries(entries));
            }
            if !first {
                if peek != b',' {
                    return Err(self.peek_error(Code::ExpectedObjectCommaOrEnd));
                }
                self.i += 1;
                match self.whitespace() {
                    Some(b'"') => {}
                    Some(b'}') => return Err(self.peek_error(Code::TrailingComma)),
                    Some(_) => return Err(self.peek_error(Code::KeyMustBeAString)),
                    None => return Err(self.peek_error(Code::EofWhileParsingValue)),
                }
            } else if peek != b'"' {
                return Err(self.peek_error(Code::KeyMustBeAString));
            }
            first = false;
            self.i += 1;
            let key = self.string()?;
            match self.whitespace() {
                Some(b':') => self.i += 1,
                Some(_) => return Err(self.peek_error(Code::ExpectedColon)),
                None => return Err(self.peek_error(Code::EofWhileParsingObject)),
            }
            let value = self.value()?;
            entries.push((key, value));
        }
    }

    /// The rest of a string, after its opening quote.
    fn string(&mut self) -> Result<String> {
        let mut scratch: Vec<u8> = Vec::new();
        let mut start = self.i;
        loop {
            while self
                .peek()
                .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.i += 1;
            }
            let run = self.s.get(start..self.i).unwrap_or_default();
            match self.next() {
                None => return Err(self.error(Code::EofWhileParsingString)),
                Some(b'"') => {
                    scratch.extend_from_slice(run);
                    return String::from_utf8(scratch).map_err(|e| {
                        let bad = e.as_bytes().len() - e.utf8_error().valid_up_to();
                        let mut err = self.error(Code::InvalidUnicodeCodePoint);
                        err.column = err.column.saturating_sub(bad);
                        err
                    });
                }
                Some(b'\\') => {
                    scratch.extend_from_slice(run);
                    self.escape(&mut scratch)?;
                    start = self.i;
                }
                Some(_) => return Err(self.error(Code::ControlCharacterWhileParsingString)),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let byte = match self.next() {
            None => return Err(self.error(Code::EofWhileParsingString)),
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 8,
            Some(b'f') => 12,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => return self.unicode_escape(out),
            Some(_) => return Err(self.error(Code::InvalidEscape)),
        };
        out.push(byte);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.s.get(self.i..self.i + 4) else {
            self.i = self.s.len();
            return Err(self.error(Code::EofWhileParsingString));
        };
        self.i += 4;
        let mut n = 0;
        for &d in digits {
            let Some(v) = char::from(d).to_digit(16) else {
                return Err(self.error(Code::InvalidEscape));
            };
            n = n * 16 + v;
        }
        Ok(n)
    }

    /// A `\u` escape (the `\u` read), paired surrogates for non-BMP
    /// characters.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let n = self.hex4()?;
        let c = match n {
            0xDC00..=0xDFFF => return Err(self.error(Code::LoneLeadingSurrogateInHexEscape)),
            0xD800..=0xDBFF => {
                for expected in [b'\\', b'u'] {
                    match self.next() {
                        None => return Err(self.error(Code::EofWhileParsingString)),
                        Some(b) if b != expected => {
                            return Err(self.error(Code::UnexpectedEndOfHexEscape))
                        }
                        Some(_) => {}
                    }
                }
                let n2 = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&n2) {
                    return Err(self.error(Code::LoneLeadingSurrogateInHexEscape));
                }
                (((n - 0xD800) << 10) | (n2 - 0xDC00)) + 0x1_0000
            }
            n => n,
        };
        let c = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }
}

mod number;
