//! The parser and writer against `serde_json` (native tests only): the same
//! values, the same text, the same errors at the same positions.

use super::{from_slice, quote, Value};

/// Texts that are JSON, and texts that are not, each failing somewhere.
const CASES: &[&str] = &[
    "",
    " ",
    "null",
    "true",
    "false",
    "nul",
    "nulx",
    "tru",
    "fals",
    "x",
    "\n\n  x",
    "0",
    "-0",
    "7",
    "-7",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1.5",
    "-1.5",
    "0.1",
    "1e3",
    "1E3",
    "1e+3",
    "1e-3",
    "2.5e10",
    "1e308",
    "1e309",
    "-1e309",
    "1e-400",
    "0e99999999999",
    "1e99999999999",
    "1e-99999999999",
    "1.",
    "1.x",
    "1e",
    "1e+",
    "1ex",
    "01",
    "-",
    "-x",
    "--1",
    "1 2",
    "1,",
    "12345678901234567890.5",
    "0.12345678901234567890123",
    "1.7976931348623157e308",
    "\"\"",
    "\"abc\"",
    "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
    "\"\\u0041\\u00e9\\u20ac\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\ud83dx\"",
    "\"\\ud83d\\x\"",
    "\"\\ude00\"",
    "\"\\ud83d\\u0041\"",
    "\"\\u12\"",
    "\"\\u12g4\"",
    "\"\\q\"",
    "\"abc",
    "\"a\\",
    "\"a\u{1}b\"",
    "\"tab\there\"",
    "\"\u{e9}\u{1F600}\"",
    "[]",
    "[1]",
    "[1,2]",
    "[1,]",
    "[1 2]",
    "[",
    "[1",
    "[1,",
    " [ 1 , 2 ] ",
    "[,]",
    "{}",
    "{\"a\":1}",
    "{\"a\":1,}",
    "{\"a\" 1}",
    "{\"a\":}",
    "{1:2}",
    "{\"a\":1 \"b\":2}",
    "{",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "{\"a\":1,",
    "{\"a\":1,2}",
    "{,}",
    "{\"b\":1,\"a\":[true,{\"c\":null}],\"b\":2}",
    "{\"x\":\"\\u0000\\u001f\\u007f\"}",
    "{\n  \"a\": 1,\n  \"b\": [1, 2,\n  ]\n}",
    "{\"a\":1}\n\nx",
    "[\"\\u00e9\", -0.0, 1e-7]",
];

#[test]
fn parses_and_writes_as_serde_json() {
    for case in CASES {
        let ours = from_slice(case.as_bytes());
        let theirs: Result<serde_json::Value, _> = serde_json::from_str(case);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a.to_string(), b.to_string(), "{case:?}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{case:?}"),
            _ => panic!("{case:?}: ours {ours:?}, serde_json {theirs:?}"),
        }
    }
}

#[test]
fn invalid_utf8_in_a_string_is_refused_where_serde_json_refuses_it() {
    for case in [&b"\"a\xffb\""[..], b"{\"k\xc3\":1}", b"\"\xe2\x82\""] {
        let ours = from_slice(case)
            .map(|v| v.to_string())
            .map_err(|e| e.to_string());
        let theirs = serde_json::from_slice::<serde_json::Value>(case)
            .map(|v| v.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "{case:?}");
    }
}

#[test]
fn deep_nesting_is_refused_as_serde_json_refuses_it() {
    for depth in [127, 128, 200] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let ours = from_slice(text.as_bytes())
            .map(|v| v.to_string())
            .map_err(|e| e.to_string());
        let theirs = serde_json::from_str::<serde_json::Value>(&text)
            .map(|v| v.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "depth {depth}");
    }
}

#[test]
fn numbers_compare_as_in_serde_json() {
    let pairs = [
        ("1", "1"),
        ("1", "1.0"),
        ("1.0", "1.00"),
        ("-1", "-1"),
        ("0", "-0"),
        ("1e2", "100"),
    ];
    for (a, b) in pairs {
        let ours = from_slice(a.as_bytes()).ok() == from_slice(b.as_bytes()).ok();
        let theirs = serde_json::from_str::<serde_json::Value>(a).ok()
            == serde_json::from_str::<serde_json::Value>(b).ok();
        assert_eq!(ours, theirs, "{a} == {b}");
    }
}

#[test]
fn pointers_find_what_serde_json_finds() {
    let doc = r#"{"a":{"b":[10,{"c~d":1,"e/f":2}]},"":3,"0":4,"arr":[1,2],"~1":5,"/":6,"~":7}"#;
    let ours = from_slice(doc.as_bytes()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(doc).unwrap();
    for p in [
        "",
        "/",
        "/a",
        "/a/b",
        "/a/b/0",
        "/a/b/1/c~0d",
        "/a/b/1/e~1f",
        "/a/b/2",
        "/a/b/01",
        "/a/b/+1",
        "/0",
        "/arr/1",
        "/arr/-1",
        "/x",
        "a",
        "/a/b/1/c~d",
    ] {
        assert_eq!(
            ours.pointer(p).map(Value::to_string),
            theirs.pointer(p).map(serde_json::Value::to_string),
            "{p:?}"
        );
    }
}

#[test]
fn quote_escapes_as_serde_json() {
    for s in [
        "",
        "plain",
        "q\"b\\",
        "\u{0}\u{1f}\u{7f}\n\r\t\u{8}\u{c}",
        "é €😀",
    ] {
        assert_eq!(quote(s), serde_json::Value::from(s).to_string());
    }
}
