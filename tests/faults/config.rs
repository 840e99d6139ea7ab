//! Configuration: policies that Envoy must refuse.

use super::*;

/// A policy Envoy must refuse, and what its log must say (each line after
/// `meshprobe: invalid policy: `, so it names the field).
struct Refusal {
    what: &'static str,
    policy: String,
    env: &'static [(&'static str, &'static str)],
    log: &'static [&'static str],
    /// Text that must not be in the log (a secret).
    secret: Option<&'static str>,
}

/// A minimal valid policy with one field replaced: `endpoint` and `check`
/// are JSON members added to `/readyz` and to check `db`.
fn with(endpoint: &str, check: &str) -> String {
    format!(
        r#"{{"authorization": {{"header": "x-health", "secrets": [{{"value": "cfg-s3cret"}}]}},
  "endpoints": [{{"name": "ready", "path": "/readyz", "checks": ["db"] {endpoint}}}],
  "checks": [{{"name": "db", "cluster": "db" {check}}}]}}"#
    )
}

fn with_secret(secret: &str) -> String {
    format!(
        r#"{{"authorization": {{"header": "x-health", "secrets": [{secret}]}},
  "endpoints": [{{"name": "ready", "path": "/readyz"}}]}}"#
    )
}

fn refusals() -> Vec<Refusal> {
    let r = |what, policy: String, log| Refusal {
        what,
        policy,
        env: &[],
        log,
        secret: None,
    };
    vec![
        // Sanity of the table itself: `with("", "")` is accepted (below).
        r(
            "wrong type: a number for a duration",
            with(r#", "deadline": 800"#, ""),
            &["endpoints[0].deadline: expected a string, found a number"],
        ),
        r(
            "wrong type: a string for a bool",
            with("", r#", "critical": "yes""#),
            &["checks[0].critical: expected true or false, found a string"],
        ),
        r(
            "wrong type: a string for a list",
            with(r#", "access": "public""#, "").replace(r#""checks": ["db"]"#, r#""checks": "db""#),
            &["endpoints[0].checks: expected an array, found a string"],
        ),
        r(
            "wrong type: a negative size",
            with("", r#", "max_body": -1"#),
            &["checks[0].max_body: expected a whole number, found -1"],
        ),
        r(
            "wrong type: the policy is a list",
            "[]".into(),
            &["invalid policy: expected an object, found an array"],
        ),
        r(
            "unknown field at the top",
            with("", "").replacen('{', r#"{"endpoint": [], "#, 1),
            &["invalid policy: endpoint: unknown field (expected one of: "],
        ),
        r(
            "unknown field in a check",
            with("", r#", "timeout_ms": 300"#),
            &["checks[0].timeout_ms: unknown field (expected one of: "],
        ),
        r(
            "unknown field in an endpoint",
            with(r#", "deadline_ms": 300"#, ""),
            &["endpoints[0].deadline_ms: unknown field (expected one of: "],
        ),
        r(
            "duplicate endpoint paths",
            with("", "").replace(
                r#"["db"] }]"#,
                r#"["db"] }, {"name": "again", "path": "/readyz"}]"#,
            ),
            &["endpoints[1].path: duplicate endpoint path \"/readyz\""],
        ),
        r(
            "check referenced but not defined",
            with("", "").replace(r#""checks": ["db"]"#, r#""checks": ["db", "dbb"]"#),
            &["endpoints[0].checks[1]: unknown check \"dbb\""],
        ),
        r(
            "negative timeout",
            with("", r#", "timeout": "-5ms""#),
            &["checks[0].timeout: \"-5ms\" is not a duration"],
        ),
        r(
            "zero timeout",
            with("", r#", "timeout": "0ms""#),
            &["checks[0].timeout: must be greater than zero"],
        ),
        r(
            "negative deadline",
            with(r#", "deadline": "-1s""#, ""),
            &["endpoints[0].deadline: \"-1s\" is not a duration"],
        ),
        r(
            "zero deadline",
            with(r#", "deadline": "0s""#, ""),
            &["endpoints[0].deadline: must be greater than zero"],
        ),
        r(
            "deadline shorter than a check's timeout",
            with(r#", "deadline": "300ms""#, r#", "timeout": "500ms""#),
            &["endpoints[0].deadline: 300ms is shorter than check \"db\"'s timeout 500ms"],
        ),
        r(
            "not JSON",
            "{endpoints: []".into(),
            &["invalid policy: the policy is not valid JSON"],
        ),
        r(
            "empty configuration",
            String::new(),
            &["invalid policy: the plugin configuration is empty"],
        ),
        r(
            "every problem at once, each named",
            with(
                r#", "deadline": "soon""#,
                r#", "critical": 1, "color": "red""#,
            ),
            &[
                "endpoints[0].deadline: \"soon\" is not a duration",
                "checks[0].critical: expected true or false, found a number",
                "checks[0].color: unknown field",
                "policy refused (3 error(s))",
            ],
        ),
        Refusal {
            what: "empty inline secret",
            policy: with_secret(r#"{"value": ""}"#),
            env: &[],
            log: &["authorization.secrets[0].value: the secret is empty"],
            secret: None,
        },
        Refusal {
            what: "empty secret from the environment",
            policy: with_secret(r#"{"env": "EMPTY_TOKEN"}"#),
            env: &[("EMPTY_TOKEN", "")],
            log: &["authorization.secrets[0].env: the secret is empty"],
            secret: None,
        },
        Refusal {
            what: "secret's environment variable missing",
            policy: with_secret(r#"{"env": "MISSING_TOKEN"}"#),
            env: &[("OTHER_TOKEN", "other-s3cret-value")],
            log: &[
                "authorization.secrets[0].env: environment variable \"MISSING_TOKEN\" is not set",
            ],
            secret: Some("other-s3cret-value"),
        },
        Refusal {
            what: "secret with white space",
            policy: with_secret(r#"{"value": "padded-s3cret-value "}"#),
            env: &[],
            log: &["authorization.secrets[0].value: the secret contains white space"],
            secret: Some("padded-s3cret-value"),
        },
        Refusal {
            what: "protected endpoint without any secret",
            policy: r#"{"endpoints": [{"name": "ready", "path": "/readyz"}]}"#.into(),
            env: &[],
            log: &["authorization.secrets: a protected endpoint needs at least one secret"],
            secret: None,
        },
    ]
}

/// Starts Envoy on `policy`: `Err(log)` when it refused to start.
fn try_envoy(policy: &str, env: &[(&str, &str)]) -> Result<support::envoy::Envoy, String> {
    support::envoy::Envoy::try_start(&support::envoy::Setup {
        policy,
        clusters: &[("app", 1), ("db", 1)],
        env,
        workers: 1,
    })
    .map_err(|refused| {
        assert!(!refused.status.success(), "{}", refused.status);
        refused.log
    })
}

#[test]
fn invalid_policies_stop_envoy_and_the_log_names_the_field() {
    // The base of the table is valid: each row fails for its own change.
    try_envoy(&with("", ""), &[]).expect("the table's base policy is refused");
    let rows = refusals();
    // Six Envoys at a time: two dozen at once (each compiling the module
    // in V8) outlast the 30 s start-up wait on a loaded 2-core machine.
    let failures: Vec<String> = rows
        .chunks(6)
        .flat_map(|batch| {
            std::thread::scope(|scope| {
                let running: Vec<_> = batch
                    .iter()
                    .map(|row| scope.spawn(move || check_refusal(row)))
                    .collect();
                running
                    .into_iter()
                    .filter_map(|t| t.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `None` when Envoy refused `row` as it should, else what went wrong.
fn check_refusal(row: &Refusal) -> Option<String> {
    let log = match try_envoy(&row.policy, row.env) {
        Ok(_) => return Some(format!("{}: Envoy started", row.what)),
        Err(log) => log,
    };
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("meshprobe")).collect();
    for want in row.log {
        let named = lines.iter().any(|l| {
            l.split_once("meshprobe: ")
                .is_some_and(|(_, rest)| rest.contains(want))
        });
        if !named {
            return Some(format!(
                "{}: no log line holds {want:?}:\n{}",
                row.what,
                lines.join("\n")
            ));
        }
    }
    if let Some(secret) = row.secret {
        if log.contains(secret) {
            return Some(format!("{}: the log holds the secret", row.what));
        }
    }
    None
}
