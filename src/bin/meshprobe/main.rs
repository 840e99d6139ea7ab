//! `meshprobe`: validate, explain, dry-run and check a probe policy before
//! it reaches the mesh, with the same core as the module (a native binary;
//! none of it is in `dist/meshprobe.wasm`).
//!
//! Exit codes: 0 clean / pass, 1 invalid policy / failing probe, 2 bad
//! input to the command itself (and, for `check`, an unreachable server).

#[cfg(not(target_arch = "wasm32"))]
mod check;
#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod explain;
#[cfg(not(target_arch = "wasm32"))]
mod grpc_call;
#[cfg(not(target_arch = "wasm32"))]
mod input;
#[cfg(not(target_arch = "wasm32"))]
mod lints;
#[cfg(not(target_arch = "wasm32"))]
mod load;
#[cfg(not(target_arch = "wasm32"))]
mod run;
#[cfg(not(target_arch = "wasm32"))]
mod schema;
#[cfg(not(target_arch = "wasm32"))]
mod validate;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

/// The command is native only; the wasm32 build of this crate is the
/// module (`--lib`).
#[cfg(target_arch = "wasm32")]
fn main() {}
