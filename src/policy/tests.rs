use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(json: &str) -> Result<Policy, Vec<String>> {
    Policy::from_json(json.as_bytes(), &|name| {
        (name == "TOKEN").then(|| "from-env".to_string())
    })
    .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

const GOOD: &str = r#"{
  "service": {"id": "orders", "version": "1.4.2", "description": "Orders API"},
  "authorization": {"header": "X-Health", "secrets": [{"value": "s3cret"}, {"env": "TOKEN"}],
                    "path_prefix": "/health/", "query_param": "token", "bearer": true,
                    "on_unauthorized": "forbidden", "sources": ["10.0.0.0/8", "fd00::/8"],
                    "detail_peers": ["spiffe://cluster.local/ns/monitoring/*"]},
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public", "sources": ["0.0.0.0/0"], "grpc_service": "live"},
    {"name": "ready", "path": "/readyz", "checks": ["db", "cache"], "deadline": "1s", "format": "json",
     "on_unauthorized": "pass_through", "details": "always", "warnings_as_errors": true,
     "status_codes": {"pass": 200, "warn": 299, "fail": 500}, "degraded_header": true,
     "ttl": "1s", "refresh": true, "max_stale": "5s", "on_stale": "fail", "on_startup": "fail"},
    {"name": "pipeline", "path": "/pipelinez", "include": ["ready"], "checks": ["status", "db"], "format": "html"}
  ],
  "checks": [
    {"name": "db", "cluster": "outbound|5432||db.prod.svc.cluster.local", "path": "/health", "timeout": "300ms",
     "expect_status": [200, "300-399"], "headers": {"X-Probe": "1"}},
    {"name": "cache", "cluster": "cache", "method": "HEAD", "authority": "cache.local", "critical": false,
     "expect_body": {"contains": "PONG"}, "max_body": 1024, "warn_after": "100ms", "component_type": "datastore"},
    {"name": "status", "cluster": "statuspage", "path": "/api/v2/status.json",
     "expect_body": {"pointer": "/status/indicator", "equals": "none"}},
    {"name": "celery", "cluster": "celery", "expect_body": {"pointer": "/ok", "one_of": ["pong"]}},
    {"name": "hosts", "cluster": "envoy_admin", "kind": "envoy_cluster", "target_cluster": "db", "min_healthy_percent": 50},
    {"name": "mem", "cluster": "envoy_admin", "kind": "envoy_memory", "memory_limit": 1073741824},
    {"name": "pay", "cluster": "payments_h2", "kind": "grpc", "service": "pay.v1.Payments", "metadata": {"x-probe": "1"}}
  ]
}"#;

#[test]
fn a_full_policy_validates_into_its_runtime_form() {
    let p = parse(GOOD).unwrap();
    let a = &p.authorization;
    assert_eq!(a.header.as_deref(), Some("x-health"));
    assert_eq!(
        a.secrets,
        vec!["s3cret".to_string(), "from-env".to_string()]
    );
    assert_eq!(a.path_prefix.as_deref(), Some("/health"));
    assert_eq!(a.query_param.as_deref(), Some("token"));
    assert!(a.bearer);
    assert_eq!(a.on_unauthorized, Unauthorized::Forbidden);

    let live = &p.endpoints[0];
    assert_eq!(
        (live.access, live.checks.len(), live.deadline_ms),
        (Access::Public, 0, DEFAULT_DEADLINE_MS)
    );
    assert_eq!(live.on_unauthorized, Unauthorized::Forbidden);
    assert_eq!(live.format, Format::Text);
    let ready = &p.endpoints[1];
    assert_eq!(
        (ready.access, ready.deadline_ms, ready.format),
        (Access::Protected, 1000, Format::Json)
    );
    assert_eq!(ready.on_unauthorized, Unauthorized::PassThrough);
    assert_eq!(ready.checks, vec![0, 1]);
    assert_eq!(ready.details, Details::Always);
    assert!(ready.warnings_as_errors && ready.degraded_header);
    assert_eq!(
        ready.status_codes,
        StatusCodes {
            pass: 200,
            warn: 299,
            fail: 500
        }
    );
    assert_eq!(live.details, Details::Authorized);
    assert_eq!(
        ready.cache,
        CachePolicy {
            ttl_ms: 1_000,
            refresh: true,
            max_stale_ms: 5_000,
            on_stale: OnMiss::Fail,
            on_startup: OnMiss::Fail
        }
    );
    assert_eq!(
        live.cache,
        CachePolicy {
            ttl_ms: DEFAULT_TTL_MS,
            refresh: false,
            max_stale_ms: DEFAULT_MAX_STALE_MS,
            on_stale: OnMiss::Run,
            on_startup: OnMiss::Run
        }
    );
    assert_eq!(live.status_codes, StatusCodes::default());
    // Included checks first, then its own, without repeats.
    let pipeline = &p.endpoints[2];
    assert_eq!(pipeline.checks, vec![0, 1, 2]);
    assert_eq!(pipeline.format, Format::Html);
    assert_eq!(p.service.version.as_deref(), Some("1.4.2"));

    let db = &p.checks[0];
    assert_eq!((db.method.as_str(), db.path.as_str()), ("GET", "/health"));
    assert_eq!(db.authority, "outbound|5432||db.prod.svc.cluster.local");
    assert_eq!(db.headers, vec![("x-probe".to_string(), "1".to_string())]);
    assert!(
        db.expect_status.contains(200)
            && db.expect_status.contains(302)
            && !db.expect_status.contains(204)
    );
    assert_eq!(db.timeout_for(ready), 300);
    let cache = &p.checks[1];
    assert_eq!(
        (
            cache.method.as_str(),
            cache.path.as_str(),
            cache.authority.as_str()
        ),
        ("HEAD", "/", "cache.local")
    );
    assert!(!cache.critical);
    assert_eq!(cache.timeout_for(ready), DEFAULT_TIMEOUT_MS);
    assert_eq!(cache.expect_status, StatusSet(vec![(200, 299)]));
    assert_eq!(cache.expect_body, Some(BodyExpect::Contains("PONG".into())));
    assert_eq!(
        (
            cache.max_body,
            cache.warn_after_ms,
            cache.component_type.as_str()
        ),
        (1024, Some(100), "datastore")
    );
    assert_eq!(
        (db.max_body, db.warn_after_ms, db.component_type.as_str()),
        (DEFAULT_MAX_BODY, None, "component")
    );
    assert_eq!(
        p.checks[2].expect_body,
        Some(BodyExpect::Pointer {
            pointer: "/status/indicator".into(),
            accepted: vec![crate::json::Value::from("none")]
        })
    );
}

#[test]
fn default_timeout_is_capped_by_the_deadline() {
    let p = parse(r#"{"endpoints":[{"name":"r","path":"/r","access":"public","checks":["a"],"deadline":"200ms"}],
                     "checks":[{"name":"a","cluster":"c"}]}"#)
    .unwrap();
    assert_eq!(p.checks[0].timeout_for(&p.endpoints[0]), 200);
}

/// Each invalid policy and the error lines it must produce (all of them).
#[test]
fn invalid_policies_name_every_field_at_once() {
    let cases: &[(&str, &[&str])] = &[
        ("", &["the plugin configuration is empty: meshprobe needs a policy (JSON)"]),
        ("{", &["the policy is not valid JSON: EOF while parsing an object at line 1 column 1"]),
        ("[]", &["expected an object, found an array"]),
        ("{}", &["endpoints: is required"]),
        (r#"{"endpoints": []}"#, &["endpoints: must list at least one endpoint"]),
        (
            r#"{"endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "checks": ["dbb"]}], "checks": [], "extra": 1}"#,
            &[
                "extra: unknown field (expected one of: service, endpoints, checks, authorization)",
                "endpoints[0].checks[0]: unknown check \"dbb\"",
            ],
        ),
        (
            r#"{"endpoints": [{"name": "Ready!", "path": "readyz", "access": "open", "deadline": "0s", "pathh": 1}]}"#,
            &[
                "endpoints[0].pathh: unknown field (expected one of: name, path, checks, include, access, details, on_unauthorized, sources, deadline, format, warnings_as_errors, status_codes, ttl, refresh, max_stale, on_stale, on_startup, degraded_header, grpc_service)",
                "endpoints[0].name: \"Ready!\" must be non-empty and use only a-z, 0-9, '-' and '_'",
                "endpoints[0].path: \"readyz\" must start with '/' and hold no query, fragment or spaces",
                "endpoints[0].access: \"open\" is not one of: protected, public",
                "endpoints[0].deadline: must be greater than zero",
            ],
        ),
        (
            r#"{"endpoints": [{"name": "a", "path": "/a", "access": "public"}, {"name": "a", "path": "/a", "access": "public"}]}"#,
            &["endpoints[1].name: duplicate endpoint name \"a\"", "endpoints[1].path: duplicate endpoint path \"/a\""],
        ),
        (
            r#"{"endpoints": [{"name": "r", "path": "/r", "access": "public", "checks": ["db", "db", 3], "deadline": "300ms"}],
                "checks": [{"name": "db", "cluster": "db", "timeout": "500ms"}]}"#,
            &[
                "endpoints[0].checks[1]: check \"db\" is listed twice",
                "endpoints[0].checks[2]: expected a check name, found a number",
                "endpoints[0].deadline: 300ms is shorter than check \"db\"'s timeout 500ms",
            ],
        ),
        (
            r#"{"endpoints": [{"name": "r", "path": "/r", "access": "public"}],
                "checks": [{"name": "db", "timeout": "-1s", "expect_status": [99, "300-200", true], "critical": "yes",
                            "headers": {":path": "/x", "x-n": 1}, "method": "G T"},
                           {"name": "db", "cluster": ""}]}"#,
            &[
                "checks[0].cluster: is required",
                "checks[0].method: \"G T\" is not an HTTP method",
                "checks[0].headers.:path: is not a valid header name (pseudo-headers are set by method, path and authority)",
                "checks[0].headers.x-n: expected a string, found a number",
                "checks[0].timeout: \"-1s\" is not a duration (a number then ms, s or m, e.g. \"500ms\")",
                "checks[0].expect_status[0]: 99 is not a status (100-599) or a range like \"200-299\"",
                "checks[0].expect_status[1]: \"300-200\" is not a status (100-599) or a range like \"200-299\"",
                "checks[0].expect_status[2]: true is not a status (100-599) or a range like \"200-299\"",
                "checks[0].critical: expected true or false, found a string",
                "checks[1].cluster: must not be empty",
            ],
        ),
        (
            r#"{"endpoints": [{"name": "r", "path": "/r"}]}"#,
            &["authorization.secrets: a protected endpoint needs at least one secret (or set the endpoint's access to \"public\")"],
        ),
        (
            r#"{"authorization": {"secrets": [{"value": "x"}]}, "endpoints": [{"name": "r", "path": "/r"}]}"#,
            &["authorization: secrets are set but no way to present them: set header, path_prefix, query_param or bearer"],
        ),
        (
            r#"{"authorization": {"header": "x-h", "secrets": [{"value": ""}, {"env": "MISSING"}, {"value": " pad "}, {}, {"value": "a", "env": "TOKEN"}],
                                  "on_unauthorized": "teapot"},
                "endpoints": [{"name": "r", "path": "/r"}]}"#,
            &[
                "authorization.secrets[0].value: the secret is empty",
                "authorization.secrets[1].env: environment variable \"MISSING\" is not set in the VM (vm_config.environment_variables)",
                "authorization.secrets[2].value: the secret contains white space or control characters (headers cannot carry it intact)",
                "authorization.secrets[3]: set value or env",
                "authorization.secrets[4]: set either value or env, not both",
                "authorization.on_unauthorized: \"teapot\" is not one of: not_found, forbidden, pass_through",
                "authorization.secrets: a protected endpoint needs at least one secret (or set the endpoint's access to \"public\")",
            ],
        ),
        (
            r#"{"authorization": {"header": ":path", "path_prefix": "health", "query_param": "a=b", "bearer": 1, "secrets": [{"value": "x"}]},
                "endpoints": [{"name": "r", "path": "/r", "deadline": "2h", "format": "xml"}]}"#,
            &[
                "authorization.header: \":path\" is not a valid header name",
                "authorization.path_prefix: \"health\" must start with '/' and name a path below the root, e.g. \"/health\"",
                "authorization.query_param: \"a=b\" is not a usable query parameter name",
                "authorization.bearer: expected true or false, found a number",
                "authorization: secrets are set but no way to present them: set header, path_prefix, query_param or bearer",
                "endpoints[0].deadline: \"2h\" has unknown unit \"h\" (use ms, s or m)",
                "endpoints[0].format: \"xml\" is not one of: text, json, health, html, atom, rss, dhc, openmetrics",
            ],
        ),
        (
            r#"{"authorization": {"header": "x-h", "path_prefix": "/health", "secrets": [{"value": "x"}]},
                "endpoints": [{"name": "r", "path": "/health/r"}]}"#,
            &["endpoints[0].path: \"/health/r\" lies under authorization.path_prefix \"/health\""],
        ),
        (
            r#"{"endpoints": [
                  {"name": "a", "path": "/a", "access": "public", "include": ["b", "zz", 1], "details": "some",
                   "status_codes": {"pass": 200, "fail": 700, "other": 1}, "warnings_as_errors": "no"},
                  {"name": "b", "path": "/b", "access": "public", "include": ["a"]},
                  {"name": "c", "path": "/c", "access": "public", "checks": ["slow"], "deadline": "300ms"},
                  {"name": "d", "path": "/d", "access": "public", "include": ["c"], "deadline": "200ms"}],
                "checks": [
                  {"name": "slow", "cluster": "c", "timeout": "250ms", "warn_after": "250ms", "max_body": 0,
                   "expect_body": {"contains": "x", "pointer": "/a"}},
                  {"name": "b1", "cluster": "c", "expect_body": {"pointer": "a", "equals": 1, "one_of": [1]}},
                  {"name": "b2", "cluster": "c", "expect_body": {"pointer": "/a"}},
                  {"name": "b3", "cluster": "c", "expect_body": {"contains": "", "equals": 2, "size": 1}},
                  {"name": "b4", "cluster": "c", "max_body": -5, "expect_body": {"pointer": "/a", "one_of": []}}]}"#,
            &[
                "checks[0].expect_body: set either contains or pointer, not both",
                "checks[0].max_body: must be between 1 and 16777216 bytes",
                "checks[0].warn_after: 250ms is not below the timeout 250ms: the check would never warn",
                "checks[1].expect_body.pointer: \"a\" is not a JSON pointer (it starts with '/', e.g. \"/status/indicator\")",
                "checks[1].expect_body: set either equals or one_of, not both",
                "checks[2].expect_body: pointer needs equals or one_of",
                "checks[3].expect_body.size: unknown field (expected one of: contains, pointer, equals, one_of)",
                "checks[3].expect_body: equals and one_of go with pointer, not contains",
                "checks[3].expect_body.contains: must not be empty",
                "checks[4].expect_body.one_of: must list at least one value",
                "checks[4].max_body: expected a whole number, found -5",
                "endpoints[0].include[2]: expected an endpoint name, found a number",
                "endpoints[0].details: \"some\" is not one of: never, authorized, always",
                "endpoints[0].warnings_as_errors: expected true or false, found a string",
                "endpoints[0].status_codes.other: unknown field (expected one of: pass, warn, fail)",
                "endpoints[0].status_codes.fail: 700 is not an HTTP status (100-599)",
                "endpoints[0].include[1]: unknown endpoint \"zz\"",
                "endpoints[0].include: includes form a cycle",
                "endpoints[1].include: includes form a cycle",
                "endpoints[3].deadline: 200ms is shorter than check \"slow\"'s timeout 250ms",
            ],
        ),
        (
            r#"{"endpoints": [
                  {"name": "a", "path": "/a", "access": "public", "ttl": "5s", "max_stale": "1s"},
                  {"name": "b", "path": "/b", "access": "public", "on_stale": "fail"},
                  {"name": "c", "path": "/c", "access": "public", "ttl": "0s", "refresh": true, "on_startup": "maybe"}]}"#,
            &[
                "endpoints[0].max_stale: 1s is shorter than ttl 5s",
                "endpoints[1].refresh: on_stale or on_startup \"fail\" needs refresh: true (else nothing would ever run the checks)",
                "endpoints[2].on_startup: \"maybe\" is not one of: run, fail",
                "endpoints[2].refresh: needs a ttl above zero",
            ],
        ),
        (
            r#"{"endpoints": [{"name": "r", "path": "/r", "access": "public", "deadline": "61s"}]}"#,
            &["endpoints[0].deadline: must be at most 60s"],
        ),
    ];
    for (json, want) in cases {
        let got = parse(json).expect_err(json);
        let want: Vec<String> = want.iter().map(ToString::to_string).collect();
        assert_eq!(got, want, "policy: {json}");
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    let json = r#"{"authorization": {"header": "x-h", "secrets": [{"value": " hunter2 "}]}, "endpoints": [{"name": "r", "path": "/r"}]}"#;
    let errs = parse(json).unwrap_err();
    assert!(errs.iter().all(|e| !e.contains("hunter2")), "{errs:?}");
}

#[test]
fn env_lookup_is_only_used_for_env_secrets() {
    let json = r#"{"endpoints": [{"name": "live", "path": "/livez", "access": "public"}]}"#;
    assert!(Policy::from_json(json.as_bytes(), &no_env).is_ok());
}

#[test]
fn every_documented_field_is_accepted() {
    // GOOD sets every field of every section; a field in the tables that the
    // decoder ignored would leave this policy different from what it says.
    for (prefix, fields) in fields::SECTIONS {
        for field in *fields {
            let key = format!("\"{}\"", field.name);
            assert!(
                GOOD.contains(&key),
                "{prefix}{} is documented but not exercised",
                field.name
            );
        }
    }
}

#[test]
fn envoy_admin_kinds_decode_with_their_fields() {
    let p = parse(
        r#"{"endpoints": [{"name": "r", "path": "/r", "access": "public", "checks": ["state", "hosts", "mem"]}],
            "checks": [{"name": "state", "cluster": "envoy_admin", "kind": "envoy_server"},
                       {"name": "hosts", "cluster": "envoy_admin", "kind": "envoy_cluster", "target_cluster": "backend", "min_healthy_percent": 50},
                       {"name": "mem", "cluster": "envoy_admin", "kind": "envoy_memory", "memory_limit": 536870912}]}"#,
    )
    .unwrap();
    let [state, hosts, mem] = &p.checks[..] else {
        panic!("three checks")
    };
    assert_eq!(
        (state.kind.clone(), state.path.as_str()),
        (CheckKind::EnvoyServer, "/server_info")
    );
    assert_eq!(
        (hosts.kind.clone(), hosts.path.as_str(), hosts.max_body),
        (
            CheckKind::EnvoyCluster {
                cluster: "backend".into(),
                min_healthy_percent: 50
            },
            "/clusters?format=json",
            DEFAULT_MAX_ADMIN_BODY
        )
    );
    assert_eq!(
        (mem.kind.clone(), mem.path.as_str()),
        (
            CheckKind::EnvoyMemory {
                limit_bytes: 512 << 20
            },
            "/memory"
        )
    );
    assert_eq!(state.method, "GET");
}

#[test]
fn envoy_admin_kinds_refuse_fields_of_other_kinds() {
    let errs = parse(
        r#"{"endpoints": [{"name": "r", "path": "/r", "access": "public"}],
            "checks": [{"name": "a", "cluster": "adm", "kind": "envoy_server", "path": "/x", "memory_limit": 5},
                       {"name": "b", "cluster": "adm", "kind": "envoy_cluster", "min_healthy_percent": 101, "expect_body": {"contains": "x"}},
                       {"name": "c", "cluster": "adm", "kind": "envoy_memory", "memory_limit": 0},
                       {"name": "d", "cluster": "adm", "kind": "envoy_memory"},
                       {"name": "e", "cluster": "adm", "kind": "sql", "target_cluster": "x"}]}"#,
    )
    .unwrap_err();
    let want = [
        "checks[0].memory_limit: does not go with kind \"envoy_server\"",
        "checks[0].path: is set by kind (GET /server_info); leave it out",
        "checks[1].target_cluster: is required",
        "checks[1].min_healthy_percent: 101 is not a percentage (0-100)",
        "checks[1].expect_body: is set by kind (GET /clusters?format=json); leave it out",
        "checks[2].memory_limit: must be greater than zero",
        "checks[3].memory_limit: is required with kind envoy_memory",
        "checks[4].kind: \"sql\" is not one of: http, envoy_server, envoy_cluster, envoy_memory, grpc",
        "checks[4].target_cluster: does not go with kind \"http\"",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e == w), "missing {w:?} in {errs:#?}");
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn sources_and_detail_peers() {
    let p = parse(GOOD).unwrap();
    let ranges = |e: &Endpoint| e.sources.as_ref().map(Vec::len);
    assert_eq!(ranges(&p.endpoints[0]), Some(1), "live has its own");
    assert_eq!(
        ranges(&p.endpoints[1]),
        Some(2),
        "ready inherits the policy's"
    );
    assert!(p
        .authorization
        .peer_may_see_details("spiffe://cluster.local/ns/monitoring/sa/x"));
    assert!(!p
        .authorization
        .peer_may_see_details("spiffe://cluster.local/ns/default/sa/x"));
    let errs = parse(
        r#"{"authorization": {"sources": ["10.0.0.1/8", 7, "x"], "detail_peers": ["", "*", 3]},
            "endpoints": [{"name": "r", "path": "/r", "access": "public", "sources": []}]}"#,
    )
    .unwrap_err();
    let want = [
        "authorization.sources[0]: \"10.0.0.1/8\" has bits set past its prefix length (did you mean 10.0.0.0/8?)",
        "authorization.sources[1]: expected a range like \"10.0.0.0/8\", found a number",
        "authorization.sources[2]: \"x\" is not an address or range (e.g. \"10.0.0.0/8\", \"fd00::/8\")",
        "authorization.detail_peers[0]: \"\" is not a peer identity (e.g. \"spiffe://cluster.local/ns/monitoring/sa/prober\")",
        "authorization.detail_peers[1]: \"*\" is not a peer identity (e.g. \"spiffe://cluster.local/ns/monitoring/sa/prober\")",
        "authorization.detail_peers[2]: 3 is not a peer identity (e.g. \"spiffe://cluster.local/ns/monitoring/sa/prober\")",
        "endpoints[0].sources: must list at least one range (leave it out to accept probes from anywhere)",
    ];
    assert_eq!(errs, want);
}

#[test]
fn shared_includes_resolve_in_linear_time() {
    // Seen while writing the `policy` fuzz target: each endpoint includes
    // the next two, so the include graph has Fibonacci(n) paths. Walking
    // every path took 14 s for 34 endpoints (2.4 KB of JSON, in the fuzz
    // build) and would not end for 64.
    let n = 64;
    let endpoints: Vec<String> = (0..n)
        .map(|i| {
            let include: Vec<String> = [i + 1, i + 2]
                .iter()
                .filter(|&&j| j < n)
                .map(|j| format!("\"e{j}\""))
                .collect();
            let checks = if i == n - 1 { r#", "checks": ["c"]"# } else { "" };
            format!(
                r#"{{"name": "e{i}", "path": "/e{i}", "access": "public", "include": [{}]{checks}}}"#,
                include.join(", ")
            )
        })
        .collect();
    let json = format!(
        r#"{{"endpoints": [{}], "checks": [{{"name": "c", "cluster": "c"}}]}}"#,
        endpoints.join(", ")
    );
    let p = parse(&json).unwrap();
    assert!(p.endpoints.iter().all(|e| e.checks == [0]));
    // A cycle behind a shared include is still found.
    let cyclic = json.replace(r#""include": []"#, r#""include": ["e0"]"#);
    let errs = parse(&cyclic).unwrap_err();
    assert!(errs.iter().all(|e| e.ends_with(": includes form a cycle")));
    assert_eq!(errs.len(), n);
}
