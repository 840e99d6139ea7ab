//! The command line: subcommands, their arguments, their exit codes.

use crate::{check, explain, load, run, schema, validate};
use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "meshprobe",
    version,
    about = "Validate, explain, dry-run and check a meshprobe policy, with the module's own core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate every meshprobe policy in policy JSON, Envoy (bootstrap, LDS,
    /// ECDS) and Istio (WasmPlugin, TrafficExtension) files. Exit 0 clean, 1 on
    /// any error, 2 on bad input.
    Validate {
        /// Files to read (other Kubernetes kinds in a stream are skipped); a
        /// directory stands for its .yaml, .yml and .json files, recursively.
        #[arg(required = true)]
        files: Vec<String>,
        /// Warnings are errors.
        #[arg(long)]
        strict: bool,
        /// Output: text, or JSON findings for CI annotations.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        format: Output,
        /// Take every Envoy Wasm filter / WasmPlugin for meshprobe (by
        /// default only those whose names or URL contain "meshprobe").
        #[arg(long)]
        any_wasm: bool,
        /// Files without any meshprobe policy are fine (exit 0), for hooks
        /// that pass every changed YAML file.
        #[arg(long)]
        allow_none: bool,
    },
    /// Print the JSON Schema (2020-12) of the policy, or of an Istio
    /// WasmPlugin / TrafficExtension whose pluginConfig is a policy.
    Schema {
        #[arg(value_enum, default_value_t = schema::Which::Policy)]
        which: schema::Which,
    },
    /// What meshprobe would do with a request: pass it through, answer it
    /// locally, or probe an endpoint (and how).
    Explain {
        /// A file holding the policy (any file `validate` reads).
        policy: String,
        /// The request path, with its query, e.g. /readyz?verbose
        path: String,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A request header, name:value (repeat).
        #[arg(short = 'H', long = "header", value_parser = explain::parse_header)]
        headers: Vec<(String, String)>,
        /// The caller's address (Envoy's source.address).
        #[arg(long)]
        source: Option<String>,
        /// The caller's mTLS peer certificate URI SAN.
        #[arg(long)]
        peer: Option<String>,
        #[command(flatten)]
        pick: Pick,
    },
    /// Run one endpoint's checks against real dependencies (each cluster
    /// mapped to a URL) and print the answer. Exit 0 on pass or warn, 1 on fail.
    Run {
        /// A file holding the policy (any file `validate` reads).
        policy: String,
        /// The endpoint's name.
        endpoint: String,
        /// NAME=URL: where the checks of cluster NAME go, e.g.
        /// db=http://127.0.0.1:8081 (repeat).
        #[arg(long = "cluster", value_parser = run::parse_cluster)]
        clusters: Vec<(String, String)>,
        /// The view (default: the endpoint's format).
        #[arg(long)]
        format: Option<String>,
        /// The verbose view (?verbose).
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        pick: Pick,
    },
    /// Probe a URL, for containers without curl. Exit 0 on 2xx, 1 on 5xx
    /// (or a fail status), 2 when unreachable, timed out or anything else.
    Check {
        url: String,
        /// A request header, name:value (repeat). Never printed.
        #[arg(short = 'H', long = "header", value_parser = explain::parse_header)]
        headers: Vec<(String, String)>,
        /// How long to wait for the whole answer, e.g. 5s, 500ms.
        #[arg(long, default_value = "5s")]
        timeout: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        format: Output,
    },
}

/// Which policy of a file, and the VM environment its secrets come from.
#[derive(clap::Args)]
struct Pick {
    /// The file's N-th policy (from 1) when it holds several.
    #[arg(long)]
    which: Option<usize>,
    /// NAME=VALUE: a VM environment variable for {"env": NAME} secrets
    /// (else the file's own, else this process's environment).
    #[arg(long = "env", value_parser = load::parse_env)]
    env: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

fn bad_input(line: &str) -> ExitCode {
    eprintln!("meshprobe: {line}");
    ExitCode::from(2)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate {
            files,
            strict,
            format,
            any_wasm,
            allow_none,
        } => validate::run(
            &files,
            &validate::Options {
                strict,
                json: format == Output::Json,
                any_wasm,
                allow_none,
            },
        ),
        Command::Schema { which } => match schema::text(which) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("meshprobe: cannot build the schema: {why}");
                ExitCode::from(1)
            }
        },
        Command::Explain {
            policy,
            path,
            method,
            headers,
            source,
            peer,
            pick,
        } => {
            let policy = match load::policy(&policy, pick.which, &pick.env) {
                Ok(p) => p,
                Err(line) => return bad_input(&line),
            };
            if !path.starts_with('/') {
                return bad_input(&format!("the path must start with '/', found {path:?}"));
            }
            let request = explain::Request {
                method,
                path,
                headers,
                source,
                peer,
            };
            print!("{}", explain::explain(&policy, request));
            ExitCode::SUCCESS
        }
        Command::Run {
            policy,
            endpoint,
            clusters,
            format,
            verbose,
            pick,
        } => {
            let policy = match load::policy(&policy, pick.which, &pick.env) {
                Ok(p) => p,
                Err(line) => return bad_input(&line),
            };
            match run::run(&policy, &endpoint, &clusters, format.as_deref(), verbose) {
                Ok(code) => code,
                Err(line) => bad_input(&line),
            }
        }
        Command::Check {
            url,
            headers,
            timeout,
            format,
        } => check::check(&url, &headers, &timeout, format == Output::Json),
    }
}
