//! One policy for `explain` and `run`: from any file `validate` reads, with
//! its secrets from `--env`, the file's own declarations, or this process's
//! environment.

use crate::input::{self, Env};
use meshprobe::policy::Policy;

/// `NAME=VALUE` of `--env`.
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, found {text:?}")),
    }
}

/// The policy of `file` (the `which`-th, 1-based, when it holds several).
/// `Err` is one line for the user.
pub fn policy(
    file: &str,
    which: Option<usize>,
    env: &[(String, String)],
) -> Result<Policy, String> {
    let contents = input::load(file, false)?;
    let found = contents.found;
    let chosen = match (which, found.len()) {
        (_, 0) => return Err(format!("no meshprobe policy in {file}")),
        (None, 1) => found.first(),
        (Some(n), _) => n.checked_sub(1).and_then(|i| found.get(i)),
        (None, n) => {
            let list: Vec<String> = found
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{}: document {} ({})", i + 1, f.doc, f.label))
                .collect();
            return Err(format!(
                "{file} holds {n} policies; choose one with --which N ({})",
                list.join("; ")
            ));
        }
    };
    let Some(found) = chosen else {
        return Err(format!(
            "{file} holds {} polic{}; --which counts from 1",
            found.len(),
            if found.len() == 1 { "y" } else { "ies" }
        ));
    };
    let bytes = found
        .bytes
        .as_ref()
        .map_err(|why| format!("{file}: {}: {why}", found.at))?;
    let lookup = |name: &str| -> Option<String> {
        if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        if let Env::Declared(vars) = &found.env {
            if let Some(Some(v)) = vars.get(name) {
                return Some(v.clone());
            }
        }
        std::env::var(name).ok()
    };
    Policy::from_json(bytes, &lookup).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!(
            "{file}: document {} ({}): invalid policy: {}",
            found.doc,
            found.label,
            list.join("; ")
        )
    })
}
