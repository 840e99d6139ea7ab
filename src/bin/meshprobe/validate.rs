//! `meshprobe validate FILE...`: every policy in the files, decoded by the
//! module's own decoder (the same words Envoy logs), plus the warnings a
//! reviewer would want.

use crate::input::{self, Env, Found, Origin, Skipped};
use crate::lints;
use meshprobe::policy::Policy;
use serde_json::{json, Value};
use std::process::ExitCode;

/// Stands in for a secret whose value only the host knows (Istio
/// `valueFrom: HOST`, Envoy `host_env_keys`, a policy on its own).
pub const HOST_VALUE: &str = "value-from-the-host";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn word(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in one policy.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    /// Field path inside the policy (may be empty).
    pub path: String,
    pub message: String,
}

impl Finding {
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The env lookup the module would see for a policy found in a file.
pub fn env_lookup(env: &Env, name: &str) -> Option<String> {
    match env {
        Env::Any => Some(HOST_VALUE.into()),
        Env::Declared(vars) => vars
            .get(name)
            .map(|v| v.clone().unwrap_or_else(|| HOST_VALUE.into())),
    }
}

/// Decodes one found policy: the module's errors, else the warnings.
pub fn check_found(found: &Found) -> (Option<Policy>, Vec<Finding>) {
    let bytes = match &found.bytes {
        Ok(b) => b,
        Err(why) => {
            return (
                None,
                vec![Finding {
                    severity: Severity::Error,
                    path: String::new(),
                    message: why.clone(),
                }],
            )
        }
    };
    match Policy::from_json(bytes, &|name| env_lookup(&found.env, name)) {
        Ok(policy) => {
            let raw: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            let findings = lints::warnings(&policy, &raw, found);
            (Some(policy), findings)
        }
        Err(errors) => (
            None,
            errors
                .into_iter()
                .map(|e| Finding {
                    severity: Severity::Error,
                    path: e.path,
                    message: e.reason,
                })
                .collect(),
        ),
    }
}

pub struct Options {
    pub strict: bool,
    pub json: bool,
    pub any_wasm: bool,
    pub allow_none: bool,
}

/// `document 2 (WasmPlugin/x) at spec.pluginConfig`
fn place(found: &Found) -> String {
    let mut s = format!("document {} ({})", found.doc, found.label);
    if !found.at.is_empty() {
        s.push_str(" at ");
        s.push_str(&found.at);
    }
    s
}

pub fn run(files: &[String], opts: &Options) -> ExitCode {
    let mut bad_input = Vec::new();
    let mut found = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for file in files.iter().flat_map(|f| input::expand(f)) {
        match input::load(&file, opts.any_wasm) {
            Ok(c) => {
                found.extend(c.found);
                skipped.extend(c.skipped);
            }
            Err(line) => bad_input.push(line),
        }
    }
    if found.is_empty() && bad_input.is_empty() && !opts.allow_none {
        bad_input.push(format!(
            "no meshprobe policy in {} (a policy JSON, an Envoy config with a meshprobe Wasm filter, or an Istio WasmPlugin / TrafficExtension)",
            files.join(", ")
        ));
    }

    let mut errors = 0;
    let mut warnings = 0;
    let mut results = Vec::new();
    for f in &found {
        let (policy, mut findings) = check_found(f);
        for finding in &mut findings {
            if opts.strict {
                finding.severity = Severity::Error;
            }
            match finding.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
        results.push((f, policy, findings));
    }

    if opts.json {
        print_json(&results, &skipped, &bad_input, errors, warnings);
    } else {
        print_text(&results, &skipped, errors, warnings);
    }
    for line in &bad_input {
        eprintln!("meshprobe: {line}");
    }
    if !bad_input.is_empty() {
        ExitCode::from(2)
    } else if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

type Results<'a> = [(&'a Found, Option<Policy>, Vec<Finding>)];

fn print_text(results: &Results<'_>, skipped: &[Skipped], errors: usize, warnings: usize) {
    for (f, policy, findings) in results {
        for x in findings {
            let field = if x.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", x.path)
            };
            println!(
                "{}: {}: {}: {field}{}",
                x.severity.word(),
                f.file,
                place(f),
                x.message
            );
        }
        let clean = !findings.iter().any(|x| x.severity == Severity::Error);
        if let (Some(p), true) = (policy, clean) {
            println!(
                "ok: {}: {}: {} endpoint(s), {} check(s)",
                f.file,
                place(f),
                p.endpoints.len(),
                p.checks.len()
            );
        }
    }
    for s in skipped {
        println!(
            "skipped: {}: document {} ({}): {}",
            s.file, s.doc, s.label, s.why
        );
    }
    if results.is_empty() {
        return;
    }
    println!(
        "{} polic{} checked: {errors} error(s), {warnings} warning(s), {} document(s) skipped",
        results.len(),
        if results.len() == 1 { "y" } else { "ies" },
        skipped.len()
    );
}

fn print_json(
    results: &Results<'_>,
    skipped: &[Skipped],
    bad_input: &[String],
    errors: usize,
    warnings: usize,
) {
    let mut findings = Vec::new();
    let mut policies = Vec::new();
    for (f, policy, list) in results {
        policies.push(json!({
            "file": f.file,
            "document": f.doc,
            "resource": f.label,
            "at": f.at,
            "origin": match f.origin { Origin::Bare => "policy", Origin::Envoy => "envoy", Origin::Istio => "istio" },
            "valid": policy.is_some(),
        }));
        for x in list {
            findings.push(json!({
                "severity": x.severity.word(),
                "file": f.file,
                "document": f.doc,
                "resource": f.label,
                "at": f.at,
                "path": x.path,
                "message": x.message,
            }));
        }
    }
    let skipped: Vec<Value> = skipped
        .iter()
        .map(|s| json!({"file": s.file, "document": s.doc, "resource": s.label, "why": s.why}))
        .collect();
    let out = json!({
        "errors": errors,
        "warnings": warnings,
        "findings": findings,
        "policies": policies,
        "skipped": skipped,
        "bad_input": bad_input,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).unwrap_or_else(|_| out.to_string())
    );
}
