//! Probes that are malformed or hostile, and the protocols a probe may come in.

use super::*;

/// `/readyz` over one passing check `db` (no cache: one callout per
/// authorized probe, so the callout count is the authorized-probe count).
fn probe_rig() -> Stack {
    rig(
        "600ms",
        &[r#"{"name": "db", "cluster": "db"}"#],
        &[("db", Mode::Status(200))],
    )
}

/// Percent-encodes every byte.
fn encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn try_get(s: &Stack, path: &str, headers: &[(&str, &str)]) -> Option<Response> {
    support::http::try_request(s.envoy.port, "GET", path, headers, "HTTP/1.1")
}

/// Asserts each request gets `status`, and returns how many did.
fn expect_all(s: &Stack, status: u16, cases: &[(String, Vec<(&str, &str)>)]) -> usize {
    for (path, headers) in cases {
        let r = try_get(s, path, headers);
        let got = r.as_ref().map(|r| (r.status, r.body.as_str()));
        match status {
            200 => assert_eq!(got, Some((200, VERBOSE_OK)), "{path} {headers:?}"),
            404 => assert_eq!(got, Some((404, "")), "{path} {headers:?}"),
            _ => assert_eq!(got.map(|g| g.0), Some(status), "{path} {headers:?}"),
        }
    }
    cases.len()
}

#[test]
fn a_64_kib_path_is_refused_by_envoy_and_the_next_probe_is_fine() {
    let s = probe_rig();
    let huge = "a".repeat(64 * 1024);
    // Envoy's max_request_headers_kb (60 KiB by default) counts the path:
    // Envoy answers 431 itself, before any filter sees the request.
    for path in [
        format!("/readyz?verbose&pad={huge}"),
        format!("/readyz/{huge}"),
        format!("/health/{SECRET}/ready?pad={huge}"),
        format!("/health/{huge}/ready"),
        format!("/{huge}"),
    ] {
        let r = try_get(&s, &path, &[auth()]).expect("an answer");
        assert_eq!(
            (r.status, r.body.as_str()),
            (431, "Request Header Fields Too Large"),
            "{}...",
            &path[..20]
        );
    }
    assert_eq!((s.dep("db").hits(), s.app.hits()), (0, 0));
    // Half of it gets through to the module, which handles it.
    let big = "a".repeat(32 * 1024);
    let r = s.get(&format!("/readyz?pad={big}&verbose"), &[auth()]);
    assert_eq!((r.status, r.body.as_str()), (200, VERBOSE_OK));
    let r = s.get(&format!("/health/{big}/ready"), &[]);
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    let r = s.get(&format!("/readyz/{big}"), &[auth()]);
    assert!(
        r.body.starts_with(&format!("GET /readyz/{big} HTTP/1.1")),
        "a path that is no check goes to the app: {}",
        &r.body[..40.min(r.body.len())]
    );
    assert_eq!((s.dep("db").hits(), s.app.hits()), (1, 1));
    let r = s.get("/readyz?verbose", &[auth()]);
    assert_eq!((r.status, r.body.as_str()), (200, VERBOSE_OK));
    assert_healthy(&s);
}

#[test]
fn a_query_with_1000_parameters_is_read_whole() {
    let s = probe_rig();
    let many: Vec<String> = (0..1000).map(|i| format!("p{i}={i}")).collect();
    let q = many.join("&");
    // The flag and the token come after the thousand others.
    let cases = vec![
        (format!("/readyz?{q}&verbose"), vec![auth()]),
        (format!("/readyz?{q}&health_token={SECRET}&verbose"), vec![]),
        (format!("/readyz?health_token={SECRET}&{q}&verbose"), vec![]),
    ];
    let n = expect_all(&s, 200, &cases);
    let r = s.get(&format!("/readyz?{q}&format=json"), &[auth()]);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["checks"]["db"]["status"], "pass");
    let wrong = vec![(format!("/readyz?{q}&health_token=wrong&verbose"), vec![])];
    expect_all(&s, 404, &wrong);
    // Passed through: only the token is gone, the rest in order.
    let r = s.get(&format!("/orders?{q}&health_token={SECRET}&last=1"), &[]);
    let first = r.body.lines().next().unwrap();
    assert_eq!(first, format!("GET /orders?{q}&last=1 HTTP/1.1"));
    assert_eq!(s.dep("db").hits(), n + 1);
    assert_healthy(&s);
}

#[test]
fn malformed_percent_encoding_never_authorizes() {
    let s = probe_rig();
    let mut refused: Vec<(String, Vec<(&str, &str)>)> = Vec::new();
    for bad in ["%zz", "%", "%C0%AF", "%%", "%0", "%u0041"] {
        refused.push((format!("/health/{bad}/ready?verbose"), vec![]));
        refused.push((format!("/health/{SECRET}{bad}/ready?verbose"), vec![]));
        refused.push((format!("/readyz?health_token={bad}&verbose"), vec![]));
        refused.push((
            format!("/readyz?health_token={SECRET}{bad}&verbose"),
            vec![],
        ));
        refused.push((
            format!("/readyz?verbose&health_token={bad}{SECRET}"),
            vec![],
        ));
    }
    // "%fa" + "ults-s3cret" decodes to 0xFA + "ults-s3cret".
    refused.push((format!("/health/%{SECRET}/ready"), vec![]));
    refused.push((format!("/readyz?health_token=%{SECRET}"), vec![]));
    refused.push((format!("/readyz?health_token={SECRET}%00"), vec![]));
    refused.push((format!("/health/{SECRET}%00/ready"), vec![]));
    expect_all(&s, 404, &refused);
    assert_eq!(s.dep("db").hits(), 0, "a malformed token caused a callout");

    // Well-formed escapes are decoded: the same secret, fully encoded, works
    // (so the refusals above are about the malformed bytes).
    let encoded = encode_all(SECRET);
    let ok = vec![
        (format!("/health/{encoded}/ready?verbose"), vec![]),
        (format!("/readyz?health_token={encoded}&verbose"), vec![]),
    ];
    let n = expect_all(&s, 200, &ok);
    // A malformed path that is no endpoint goes to the app as it came.
    for path in ["/readyz%zz", "/orders%", "/orders/%C0%AF"] {
        let r = s.get(path, &[auth()]);
        let first = r.body.lines().next().unwrap_or("");
        assert_eq!(first, format!("GET {path} HTTP/1.1"));
    }
    // Malformed escapes elsewhere in an authorized probe change nothing.
    let r = s.get("/readyz?verbose&exclude=%C0%AF&x=%zz", &[auth()]);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("[+]db ok\n") && r.body.contains("unknown check"),
        "{}",
        r.body
    );
    assert_eq!(s.dep("db").hits(), n + 1);
    assert_healthy(&s);
}

/// Envoy keeps a repeated probe header as separate entries, and
/// proxy-wasm's `get_header` returns the first (Envoy's
/// `getHeaderMapValue`); the classifier compares that one value, and
/// `query::first` likewise takes the first token parameter. So the first
/// value decides: a wrong value first is refused whatever follows, and
/// every copy of the header is removed upstream.
#[test]
fn repeated_secrets_are_decided_by_the_first_value() {
    let s = probe_rig();
    let bearer = format!("Bearer {SECRET}");
    let granted = vec![
        (
            "/readyz?verbose".to_string(),
            vec![("x-health", SECRET), ("x-health", "wrong")],
        ),
        (
            format!("/readyz?verbose&health_token={SECRET}&health_token=wrong"),
            vec![],
        ),
        // One carrier right is enough (header, then query, then bearer).
        (
            format!("/readyz?verbose&health_token={SECRET}"),
            vec![("x-health", "wrong")],
        ),
        (
            "/readyz?verbose&health_token=wrong".to_string(),
            vec![("authorization", bearer.as_str())],
        ),
    ];
    let n = expect_all(&s, 200, &granted);
    let refused = vec![
        (
            "/readyz?verbose".to_string(),
            vec![("x-health", "wrong"), ("x-health", SECRET)],
        ),
        (
            "/readyz?verbose".to_string(),
            vec![("x-health", ""), ("x-health", SECRET)],
        ),
        // Envoy joins repeated `authorization` headers (one of its inline
        // headers) with ",": `Bearer <secret>,Bearer wrong` is no secret,
        // in either order.
        (
            "/readyz?verbose".to_string(),
            vec![
                ("authorization", "Bearer wrong"),
                ("authorization", bearer.as_str()),
            ],
        ),
        (
            "/readyz?verbose".to_string(),
            vec![
                ("authorization", bearer.as_str()),
                ("authorization", "Bearer wrong"),
            ],
        ),
        (
            format!("/readyz?verbose&health_token=wrong&health_token={SECRET}"),
            vec![],
        ),
        // A token path decides alone: a right header does not help it.
        ("/health/wrong/ready?verbose".to_string(), vec![auth()]),
        (
            format!("/health/wrong/ready?verbose&health_token={SECRET}"),
            vec![],
        ),
    ];
    expect_all(&s, 404, &refused);
    assert_eq!(s.dep("db").hits(), n);
    // Upstream, no copy of the header is left, in either order.
    for headers in [
        vec![("x-health", SECRET), ("x-health", "wrong")],
        vec![("x-health", "wrong"), ("x-health", SECRET)],
    ] {
        let r = s.get("/orders", &headers);
        assert!(r.body.starts_with("GET /orders HTTP/1.1"), "{}", r.body);
        assert!(!r.body.contains("x-health"), "{}", r.body);
        assert!(!r.body.contains(SECRET) && !r.body.contains("wrong"));
    }
    assert_healthy(&s);
}

#[test]
fn near_miss_tokens_are_refused_in_every_carrier() {
    let s = probe_rig();
    let last_flipped = format!("{}T", &SECRET[..SECRET.len() - 1]);
    let near = [
        SECRET.to_uppercase(),
        "Faults-s3cret".to_string(),
        format!("{SECRET}x"),
        format!("{SECRET}{SECRET}"),
        format!("x{SECRET}"),
        SECRET[..SECRET.len() - 1].to_string(),
        SECRET[1..].to_string(),
        last_flipped,
        "next-secret".to_string(),
    ];
    let mut refused = Vec::new();
    let bearers: Vec<String> = near.iter().map(|t| format!("Bearer {t}")).collect();
    for (t, bearer) in near.iter().zip(&bearers) {
        refused.push((
            "/readyz?verbose".to_string(),
            vec![("x-health", t.as_str())],
        ));
        refused.push((
            "/readyz?verbose".to_string(),
            vec![("authorization", bearer.as_str())],
        ));
        refused.push((format!("/readyz?verbose&health_token={t}"), vec![]));
        refused.push((format!("/health/{t}/ready?verbose"), vec![]));
    }
    expect_all(&s, 404, &refused);
    assert_eq!(s.dep("db").hits(), 0, "a near miss caused a callout");
    // The exact secret, each way (header names and the scheme are
    // case-insensitive; the secret is not).
    let upper_scheme = format!("BEARER {SECRET}");
    let granted = vec![
        ("/readyz?verbose".to_string(), vec![auth()]),
        ("/readyz?verbose".to_string(), vec![("X-Health", SECRET)]),
        (
            "/readyz?verbose".to_string(),
            vec![("authorization", upper_scheme.as_str())],
        ),
        (format!("/readyz?verbose&health_token={SECRET}"), vec![]),
        (format!("/health/{SECRET}/ready?verbose"), vec![]),
    ];
    let n = expect_all(&s, 200, &granted);
    assert_eq!(s.dep("db").hits(), n);
}

/// HTTP field values carry no leading or trailing white space (RFC 9110
/// 5.5): Envoy's codec strips it (spaces and tabs) before any filter runs,
/// so `x-health:   <secret>  ` reaches the module as `<secret>` and is
/// accepted. White space that survives parsing is part of the token and
/// is refused: percent-encoded or `+` in the query, in the path, or more
/// than one space after `Bearer` (the module splits at the first one).
#[test]
fn white_space_around_a_token() {
    let s = probe_rig();
    let padded = format!("   {SECRET}   ");
    let tabbed = format!("\t{SECRET}\t");
    let bearer_trailing = format!("Bearer {SECRET}   ");
    let granted = vec![
        (
            "/readyz?verbose".to_string(),
            vec![("x-health", padded.as_str())],
        ),
        (
            "/readyz?verbose".to_string(),
            vec![("x-health", tabbed.as_str())],
        ),
        (
            "/readyz?verbose".to_string(),
            vec![("authorization", bearer_trailing.as_str())],
        ),
    ];
    let n = expect_all(&s, 200, &granted);
    let bearer_two = format!("Bearer  {SECRET}");
    let inner = format!("{} {}", &SECRET[..3], &SECRET[3..]);
    let refused = vec![
        (
            "/readyz?verbose".to_string(),
            vec![("authorization", bearer_two.as_str())],
        ),
        (
            "/readyz?verbose".to_string(),
            vec![("x-health", inner.as_str())],
        ),
        (format!("/readyz?verbose&health_token=%20{SECRET}"), vec![]),
        (format!("/readyz?verbose&health_token={SECRET}%20"), vec![]),
        (format!("/readyz?verbose&health_token=+{SECRET}"), vec![]),
        (format!("/readyz?verbose&health_token={SECRET}+"), vec![]),
        (format!("/readyz?verbose&health_token={SECRET}%09"), vec![]),
        (format!("/health/%20{SECRET}/ready?verbose"), vec![]),
        (format!("/health/{SECRET}%20/ready?verbose"), vec![]),
    ];
    expect_all(&s, 404, &refused);
    assert_eq!(s.dep("db").hits(), n);
}

#[test]
fn empty_tokens_are_refused() {
    let s = probe_rig();
    let refused = vec![
        ("/readyz?verbose".to_string(), vec![("x-health", "")]),
        ("/readyz?verbose".to_string(), vec![("x-health", "   ")]),
        ("/readyz?verbose&health_token=".to_string(), vec![]),
        ("/readyz?verbose&health_token".to_string(), vec![]),
        (
            "/readyz?verbose".to_string(),
            vec![("authorization", "Bearer")],
        ),
        (
            "/readyz?verbose".to_string(),
            vec![("authorization", "Bearer ")],
        ),
        ("/readyz?verbose".to_string(), vec![("authorization", "")]),
    ];
    expect_all(&s, 404, &refused);
    // An empty path token: below path_prefix nothing goes upstream.
    let r = s.get("/health//ready?verbose", &[]);
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    assert_eq!((s.dep("db").hits(), s.app.hits()), (0, 0));
}

/// `curl --http2-prior-knowledge` (h2c): (status, HTTP version, body).
fn h2c(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--http2-prior-knowledge", "--max-time", "10"])
        .args(["-w", "\n%{http_code} %{http_version}"]);
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = cmd
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // The body, then the line `-w` adds.
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (code, version) = tail.split_once(' ').unwrap();
    (code.parse().unwrap(), version.to_string(), body.to_string())
}

#[test]
fn http_1_0_1_1_and_h2c_probes_are_answered_alike() {
    let s = probe_rig();
    let port = s.envoy.port;
    for version in ["HTTP/1.0", "HTTP/1.1"] {
        let r = support::http::request_version(port, "GET", "/readyz?verbose", &[auth()], version);
        assert_eq!((r.status, r.body.as_str()), (200, VERBOSE_OK), "{version}");
        let r = support::http::request_version(port, "GET", "/readyz?verbose", &[], version);
        assert_eq!((r.status, r.body.as_str()), (404, ""), "{version}");
    }
    let (status, version, body) = h2c(port, "/readyz?verbose", &[auth()]);
    assert_eq!(
        (status, version.as_str(), body.as_str()),
        (200, "2", VERBOSE_OK)
    );
    let (status, version, body) = h2c(port, "/readyz?verbose", &[("x-health", "wrong")]);
    assert_eq!((status, version.as_str(), body.as_str()), (404, "2", ""));
    // Repeated headers decide by the first in h2 too.
    let (status, _, _) = h2c(port, "/readyz", &[("x-health", "wrong"), auth()]);
    assert_eq!(status, 404);
    let (status, _, _) = h2c(port, "/readyz", &[auth(), ("x-health", "wrong")]);
    assert_eq!(status, 200);
    let bearer = format!("Bearer {SECRET}");
    let (status, _, body) = h2c(port, "/readyz?format=json", &[("authorization", &bearer)]);
    assert_eq!(status, 200);
    assert!(body.starts_with("{\"status\":\"pass\""), "{body}");
    // Passed through over h2: the secret stays behind.
    let (status, _, body) = h2c(port, &format!("/orders?health_token={SECRET}"), &[auth()]);
    assert_eq!(status, 200);
    assert!(body.starts_with("GET /orders HTTP/1.1"), "{body}");
    assert!(
        !body.contains(SECRET) && !body.contains("x-health"),
        "{body}"
    );
    assert_eq!(s.dep("db").hits(), 5);
    assert_eq!(s.app.hits(), 1);
}
