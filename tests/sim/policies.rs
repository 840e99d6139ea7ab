//! Random policies: TTLs (none, short, long), background refresh or not,
//! `on_stale`/`on_startup` either way, deadlines and timeouts, a critical
//! and a non-critical check, a narrowed `expect_status`.

use super::rng::Rng;

pub fn random(rng: &mut Rng) -> String {
    let ep = |rng: &mut Rng, name: &str, path: &str, checks: &str| {
        let ttl = *rng.pick(&[0u64, 150, 400, 1000]);
        let refresh = ttl > 0 && rng.pct(50);
        let max_stale = ttl + (*rng.pick(&[0u64, 100, 2000])).max(if ttl == 0 { 100 } else { 0 });
        let miss = |rng: &mut Rng| {
            if refresh {
                *rng.pick(&["run", "fail"])
            } else {
                "run"
            }
        };
        let deadline = *rng.pick(&[300u64, 450, 800]);
        format!(
            r#"{{"name": "{name}", "path": "{path}", "checks": [{checks}], "deadline": "{deadline}ms",
                "ttl": "{ttl}ms", "refresh": {refresh}, "max_stale": "{max_stale}ms",
                "on_stale": "{}", "on_startup": "{}", "warnings_as_errors": {}}}"#,
            miss(rng),
            miss(rng),
            rng.pct(20)
        )
    };
    let ready = ep(rng, "ready", "/readyz", r#""a", "b", "c""#);
    let deep = ep(rng, "deep", "/deep", r#""c""#);
    let timeout = *rng.pick(&[100u64, 250, 300]);
    format!(
        r#"{{"authorization": {{"header": "x-health", "secrets": [{{"value": "s3cret"}}]}},
  "endpoints": [{{"name": "live", "path": "/livez", "access": "public"}}, {ready}, {deep}],
  "checks": [
    {{"name": "a", "cluster": "a", "timeout": "{timeout}ms"}},
    {{"name": "b", "cluster": "b", "critical": false, "timeout": "200ms"}},
    {{"name": "c", "cluster": "c", "expect_status": [200, 204], "timeout": "300ms"}}
  ]}}"#
    )
}

/// A request: path and headers (the secret, or not; a format).
pub fn request(rng: &mut Rng) -> (String, Vec<(&'static str, String)>) {
    let path = rng.pick(&[
        "/readyz",
        "/readyz?verbose",
        "/readyz?format=json",
        "/readyz/a",
        "/readyz?exclude=b",
        "/readyz?exclude=zz",
        "/deep",
        "/deep?format=json",
        "/livez",
        "/other",
    ]);
    let mut headers = vec![(
        ":method",
        if rng.pct(95) { "GET" } else { "POST" }.to_string(),
    )];
    match rng.below(10) {
        0 => headers.push(("x-health", "wrong".into())),
        1 => {}
        _ => headers.push(("x-health", "s3cret".into())),
    }
    if rng.pct(20) {
        headers.push(("accept", "application/json".into()));
    }
    (path.to_string(), headers)
}
