use super::*;
use crate::report::CheckReport;

fn report() -> Report {
    Report::new(
        "ready",
        vec![
            CheckReport::new("db", true, Ok(()), 12),
            CheckReport::new("cache", false, Err("timeout after 300ms".into()), 300),
            CheckReport::new("we\"ird<name>", true, Err("status \"5\\0\"\n".into()), 1),
        ],
    )
}

fn view(format: Format, verbose: bool, details: bool) -> View {
    View {
        format,
        verbose,
        details,
    }
}

fn body(r: &Reply) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[test]
fn text_views() {
    let r = report();
    assert_eq!(
        body(&render(&r, &view(Format::Text, false, true))),
        "fail\n"
    );
    assert_eq!(
        body(&render(&r, &view(Format::Text, true, true))),
        "[+]db ok\n[!]cache warn: timeout after 300ms\n[-]we\"ird<name> failed: status \"5\\0\"\n\nready check failed\n"
    );
    // Without details, verbose shows nothing more than the status.
    assert_eq!(
        body(&render(&r, &view(Format::Text, true, false))),
        "fail\n"
    );
    let pass = Report::new("live", vec![]);
    assert_eq!(
        body(&render(&pass, &view(Format::Text, false, false))),
        "ok\n"
    );
    assert_eq!(
        body(&render(&pass, &view(Format::Text, true, true))),
        "live check passed\n"
    );
    let warn = Report::new(
        "ready",
        vec![CheckReport::new("cache", false, Err("down".into()), 3)],
    );
    assert_eq!(
        body(&render(&warn, &view(Format::Text, false, true))),
        "warn\n"
    );
}

#[test]
fn json_views_are_valid_json_in_a_fixed_order() {
    let r = report();
    let full = render(&r, &view(Format::Json, false, true));
    assert_eq!(
        body(&full),
        concat!(
            r#"{"status":"fail","checks":{"db":{"status":"pass","latency_ms":12},"#,
            r#""cache":{"status":"warn","reason":"timeout after 300ms","latency_ms":300},"#,
            r#""we\"ird<name>":{"status":"fail","reason":"status \"5\\0\"\n","latency_ms":1}}}"#,
            "\n"
        )
    );
    let parsed: serde_json::Value = serde_json::from_slice(&full.body).unwrap();
    assert_eq!(
        parsed["checks"]["we\"ird<name>"]["reason"],
        "status \"5\\0\"\n"
    );
    let anonymous = render(&r, &view(Format::Json, true, false));
    assert_eq!(body(&anonymous), "{\"status\":\"fail\"}\n");
}

#[test]
fn statuses_and_headers() {
    let r = report();
    let reply = render(&r, &view(Format::Json, false, true));
    assert_eq!(reply.status, 503);
    assert!(reply
        .headers
        .contains(&("content-type", "application/json".into())));
    assert!(reply
        .headers
        .contains(&("cache-control", "no-store".into())));
    let ok = render(
        &Report::new("live", vec![]),
        &view(Format::Text, false, false),
    );
    assert_eq!(ok.status, 200);
    assert!(ok
        .headers
        .contains(&("content-type", "text/plain; charset=utf-8".into())));
    assert!(Reply::plain(404, "")
        .headers
        .contains(&("cache-control", "no-store".into())));
}
