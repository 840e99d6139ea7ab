//! The `meshprobe` command leaves the module alone: none of its
//! dependencies is in the module's (wasm32) dependency graph, and the
//! module imports exactly the host functions listed in
//! `tests/module-imports.txt` (a new import means new code reached the
//! module; `MESHPROBE_BLESS=1` rewrites the list after a deliberate change).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The crates the module (the wasm32 lib) is built from.
fn module_crates() -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--target",
            "wasm32-wasip1",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            "meshprobe",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_command_s_dependencies_are_not_in_the_module() {
    let crates = module_crates();
    assert!(crates.contains(&"meshprobe-abi".to_string()), "{crates:?}");
    for native in [
        "clap",
        "clap_builder",
        "ureq",
        "ureq-proto",
        "serde_norway",
        "jsonschema",
    ] {
        assert!(
            !crates.iter().any(|c| c == native),
            "{native} is in the module's dependency graph: {crates:?}"
        );
    }
}

fn leb(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn name(bytes: &[u8], at: &mut usize) -> String {
    let len = leb(bytes, at) as usize;
    let s = String::from_utf8(bytes[*at..*at + len].to_vec()).unwrap();
    *at += len;
    s
}

fn limits(bytes: &[u8], at: &mut usize) {
    let flags = bytes[*at];
    *at += 1;
    leb(bytes, at);
    if flags & 1 == 1 {
        leb(bytes, at);
    }
}

/// `module.field (kind)` of every import of a Wasm binary.
fn imports(wasm: &[u8]) -> Vec<String> {
    assert_eq!(&wasm[..4], b"\0asm", "not a Wasm module");
    let mut at = 8;
    let mut out = Vec::new();
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at) as usize;
        let end = at + size;
        if id == 2 {
            let mut p = at;
            for _ in 0..leb(wasm, &mut p) {
                let module = name(wasm, &mut p);
                let field = name(wasm, &mut p);
                let kind = wasm[p];
                p += 1;
                let kind = match kind {
                    0 => {
                        leb(wasm, &mut p);
                        "func"
                    }
                    1 => {
                        p += 1;
                        limits(wasm, &mut p);
                        "table"
                    }
                    2 => {
                        limits(wasm, &mut p);
                        "memory"
                    }
                    3 => {
                        p += 2;
                        "global"
                    }
                    k => panic!("unknown import kind {k}"),
                };
                out.push(format!("{module}.{field} ({kind})"));
            }
        }
        at = end;
    }
    out.sort();
    out
}

#[test]
fn the_module_imports_only_the_listed_host_functions() {
    let wasm = std::env::var("MESHPROBE_WASM").unwrap_or_else(|_| "dist/meshprobe.wasm".into());
    let path = repo().join(&wasm);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `just build` first", path.display()));
    let have = imports(&bytes).join("\n") + "\n";
    let list = repo().join("tests/module-imports.txt");
    let want = std::fs::read_to_string(&list).unwrap_or_default();
    if have != want && std::env::var_os("MESHPROBE_BLESS").is_some() {
        std::fs::write(&list, &have).unwrap();
        return;
    }
    assert_eq!(
        have, want,
        "the module's imports changed (MESHPROBE_BLESS=1 after a deliberate change)"
    );
}
