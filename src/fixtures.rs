//! A policy shared by the core's unit tests.

use crate::policy::Policy;

pub const POLICY: &str = r#"{
  "authorization": {"header": "x-health", "secrets": [{"value": "s3cret"}, {"value": "n+xt/1"}],
                    "path_prefix": "/health", "query_param": "token", "bearer": true},
  "endpoints": [
    {"name": "live", "path": "/livez", "access": "public"},
    {"name": "ready", "path": "/readyz", "checks": ["db", "cache", "search"], "deadline": "800ms"},
    {"name": "deep", "path": "/deep", "checks": ["db"], "on_unauthorized": "forbidden", "format": "json"},
    {"name": "app", "path": "/appz", "checks": ["db"], "on_unauthorized": "pass_through"},
    {"name": "open", "path": "/openz", "checks": ["db"], "access": "public"}
  ],
  "checks": [
    {"name": "db", "cluster": "db", "path": "/health", "timeout": "500ms", "headers": {"x-probe": "meshprobe"}},
    {"name": "cache", "cluster": "cache", "timeout": "300ms", "critical": false},
    {"name": "search", "cluster": "search", "method": "HEAD", "authority": "search.local"}
  ]
}"#;

pub fn policy() -> Policy {
    Policy::from_json(POLICY.as_bytes(), &|_| None).expect("fixture policy is valid")
}
