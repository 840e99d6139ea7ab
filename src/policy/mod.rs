//! The plugin configuration ("policy"): decoded from JSON with every field
//! path known, then validated into an immutable runtime form.
//!
//! `Policy::from_json` reports *all* problems at once, each naming its field,
//! e.g. `endpoints[1].checks[0]: unknown check "dbb"`.
//!
//! The runtime types live in `types` (re-exported here, so every type is
//! `crate::policy::X`). Decoding goes downward: `build` (here), then
//! `authorization`, `endpoint` and `check`, all on `decode` (the JSON
//! walker) and [`fields`] (the field tables the README is rendered from).

mod authorization;
mod check;
mod decode;
mod endpoint;
pub mod fields;
mod types;

pub use types::*;

use crate::json::Value;
use authorization::authorization;
use check::check;
use decode::{index, Errors, Obj};
use endpoint::{endpoint, resolve_includes};

impl Policy {
    /// Decodes and validates a policy. `env` looks up VM environment
    /// variables (secrets given as `{"env": "NAME"}`).
    pub fn from_json(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Policy, Vec<ConfigError>> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(vec![ConfigError {
                path: String::new(),
                reason: "the plugin configuration is empty: meshprobe needs a policy (JSON)".into(),
            }]);
        }
        let value: Value = crate::json::from_slice(bytes).map_err(|e| {
            vec![ConfigError {
                path: String::new(),
                reason: format!("the policy is not valid JSON: {e}"),
            }]
        })?;
        let mut errs = Errors::default();
        let policy = build(&value, env, &mut errs);
        match policy {
            Some(policy) if errs.0.is_empty() => Ok(policy),
            _ => Err(errs.0),
        }
    }

    pub fn endpoint_by_path(&self, path: &str) -> Option<usize> {
        let at = self
            .by_path
            .binary_search_by(|i| path_of(&self.endpoints, *i).cmp(path))
            .ok()?;
        self.by_path.get(at).copied()
    }

    pub fn endpoint_by_name(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.name == name)
    }
}

fn build(value: &Value, env: &dyn Fn(&str) -> Option<String>, errs: &mut Errors) -> Option<Policy> {
    let top = Obj::open(value, "", fields::TOP, errs)?;

    let authorization = match top.get("authorization") {
        Some(v) => authorization(v, env, errs).unwrap_or_default(),
        None => Authorization::default(),
    };
    let default_unauthorized = authorization.on_unauthorized;

    let mut checks = Vec::new();
    for (i, v) in top.array("checks", errs).into_iter().flatten().enumerate() {
        if let Some(c) = check(v, &index("checks", i), errs) {
            if checks.iter().any(|other: &Check| other.name == c.name) {
                errs.push(
                    &format!("checks[{i}].name"),
                    format!("duplicate check name {:?}", c.name),
                );
            }
            checks.push(c);
        }
    }

    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut includes = Vec::new();
    match top.array("endpoints", errs) {
        None if top.get("endpoints").is_none() => errs.push("endpoints", "is required"),
        None => {}
        Some(items) if items.is_empty() => {
            errs.push("endpoints", "must list at least one endpoint")
        }
        Some(items) => {
            for (i, v) in items.iter().enumerate() {
                let path = index("endpoints", i);
                if let Some((e, inc)) = endpoint(v, &path, &checks, default_unauthorized, errs) {
                    if endpoints.iter().any(|o| o.name == e.name) {
                        errs.push(
                            &format!("{path}.name"),
                            format!("duplicate endpoint name {:?}", e.name),
                        );
                    }
                    if endpoints.iter().any(|o| o.path == e.path) {
                        errs.push(
                            &format!("{path}.path"),
                            format!("duplicate endpoint path {:?}", e.path),
                        );
                    }
                    if e.grpc_service.is_some()
                        && endpoints.iter().any(|o| o.grpc_service == e.grpc_service)
                    {
                        errs.push(
                            &format!("{path}.grpc_service"),
                            format!(
                                "duplicate grpc_service {:?}",
                                e.grpc_service.as_deref().unwrap_or("")
                            ),
                        );
                    }
                    endpoints.push(e);
                    includes.push(inc);
                }
            }
        }
    }

    resolve_includes(&mut endpoints, &includes, &checks, errs);
    for e in &mut endpoints {
        if e.sources.is_none() {
            e.sources.clone_from(&authorization.sources);
        }
    }
    let service = top
        .get("service")
        .and_then(|v| Obj::open(v, "service", fields::SERVICE, errs))
        .map(|o| Service {
            id: o.string("id", errs),
            version: o.string("version", errs),
            description: o.string("description", errs),
        })
        .unwrap_or_default();

    let protected = endpoints.iter().any(|e| e.access == Access::Protected);
    if protected && authorization.secrets.is_empty() {
        errs.push(
            "authorization.secrets",
            "a protected endpoint needs at least one secret (or set the endpoint's access to \"public\")",
        );
    }
    if let Some(prefix) = &authorization.path_prefix {
        for (i, e) in endpoints.iter().enumerate() {
            if e.path.starts_with(&format!("{prefix}/")) {
                errs.push(
                    &format!("endpoints[{i}].path"),
                    format!(
                        "{:?} lies under authorization.path_prefix {prefix:?}",
                        e.path
                    ),
                );
            }
        }
    }

    // Sorted by insertion (no sort routine in the module: less code).
    let mut by_path: Vec<usize> = Vec::with_capacity(endpoints.len());
    for (i, e) in endpoints.iter().enumerate() {
        let at = by_path
            .binary_search_by(|j| path_of(&endpoints, *j).cmp(&e.path))
            .unwrap_or_else(|at| at);
        by_path.insert(at, i);
    }
    Some(Policy {
        service,
        authorization,
        endpoints,
        checks,
        by_path,
    })
}

fn path_of(endpoints: &[Endpoint], i: usize) -> &str {
    endpoints.get(i).map_or("", |e| e.path.as_str())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod scale_tests;

#[cfg(test)]
mod grpc_tests;
