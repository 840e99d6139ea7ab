//! The OCI image of the module (`just image`, tools/oci_image.py) is in the
//! format Istio pulls, survives a real registry round trip unchanged, and the
//! sha256 pinned in the istio/ https:// examples is the module's.
//!
//! The round trip uses a real registry (Debian's `docker-registry`,
//! distribution 2.8) on 127.0.0.1 with its storage in a scratch directory,
//! and `skopeo` to push the OCI layout and pull it back. Both are required:
//! a missing one fails the test with the packages to install.
//!
//! Every process a test starts is killed by PID when the test ends (Drop),
//! whether it passes or panics. Only 127.0.0.1 is contacted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
const TAG: &str = "0.0.0-test";
const PACKAGES: &str = "apt-get install docker-registry skopeo";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("meshprobe-oci-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process this test started: killed (by its PID) and reaped on drop.
struct Proc {
    child: Child,
}

impl Proc {
    fn spawn(cmd: &mut Command, what: &str, log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Proc { child }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs a command to completion (at most `limit`), panicking with its output
/// if it fails; returns the output.
fn run(cmd: &mut Command, what: &str, scratch: &Path, limit: Duration) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let log = scratch.join(format!("run-{}.log", NEXT.fetch_add(1, Ordering::SeqCst)));
    let mut p = Proc::spawn(cmd, what, &log);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = p.exited() {
            break status;
        }
        if start.elapsed() > limit {
            drop(p); // kills it
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{what}: still running after {limit:?}, killed\n{out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{what} failed ({status}):\n{out}");
    out
}

fn find_program(name: &str, fallback: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| Some(PathBuf::from(fallback)).filter(|p| p.is_file()))
}

fn require(name: &str, fallback: &str) -> PathBuf {
    find_program(name, fallback).unwrap_or_else(|| {
        panic!("{name} is missing: this test needs a real OCI registry and skopeo ({PACKAGES})")
    })
}

/// The built module, copied so that a concurrent `just build` cannot change
/// it during the test.
fn module_copy(scratch: &Path) -> PathBuf {
    let p = std::env::var("MESHPROBE_WASM").unwrap_or_else(|_| "dist/meshprobe.wasm".into());
    let src = repo().join(p);
    assert!(
        src.is_file(),
        "{} is missing: run `just build` (or `just test`)",
        src.display()
    );
    let dst = scratch.join("meshprobe.wasm");
    std::fs::copy(&src, &dst).unwrap();
    dst
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum (coreutils)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.split_whitespace().next().unwrap().to_string();
    assert_eq!(hex.len(), 64);
    hex
}

/// Every `sha256: <hex>` pinned in istio/*.yaml: (file:line, value).
fn pinned_sha256() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("istio"))
        .expect("istio/ is missing")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap().trim();
            if let Some(value) = code.strip_prefix("sha256:") {
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                let at = format!(
                    "istio/{}:{}",
                    path.file_name().unwrap().to_string_lossy(),
                    i + 1
                );
                out.push((at, value.to_string()));
            }
        }
    }
    out
}

fn assert_pinned(module_sha: &str) {
    let pinned = pinned_sha256();
    assert!(!pinned.is_empty(), "no sha256 pinned in istio/*.yaml");
    let stale: Vec<String> = pinned
        .iter()
        .filter(|(_, v)| v != module_sha)
        .map(|(at, v)| format!("  {at}: {v}"))
        .collect();
    assert!(
        stale.is_empty(),
        "the sha256 pinned in istio/ is not the built module's ({module_sha}):\n{}\nrun `just pin-sha`",
        stale.join("\n")
    );
}

/// `just image`'s script, writing a layout into `out`.
fn build_layout(module: &Path, out: &Path, scratch: &Path) {
    run(
        Command::new("python3")
            .arg(repo().join("tools/oci_image.py"))
            .arg(module)
            .arg(out)
            .args(["--tag", TAG]),
        "tools/oci_image.py",
        scratch,
        Duration::from_secs(60),
    );
}

/// One image of an OCI image layout directory.
struct Image {
    layout: PathBuf,
    manifest_digest: String,
    manifest: Value,
}

impl Image {
    fn open(layout: &Path, tag: &str) -> Image {
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let desc = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("{}: no image tagged {tag}", layout.display()));
        assert_eq!(desc["mediaType"], MANIFEST_MEDIA_TYPE);
        let manifest_digest = desc["digest"].as_str().unwrap().to_string();
        let mut image = Image {
            layout: layout.to_path_buf(),
            manifest_digest,
            manifest: Value::Null,
        };
        image.manifest = serde_json::from_slice(&image.blob(desc)).unwrap();
        image
    }

    /// A blob, checked against its descriptor's digest and size.
    fn blob(&self, desc: &Value) -> Vec<u8> {
        let digest = desc["digest"].as_str().unwrap();
        let hex = digest.strip_prefix("sha256:").unwrap();
        let path = self.layout.join("blobs/sha256").join(hex);
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            sha256_hex(&path),
            hex,
            "{} holds other content",
            path.display()
        );
        assert_eq!(desc["size"], data.len(), "{digest}: size");
        data
    }

    fn layers(&self) -> &Vec<Value> {
        self.manifest["layers"].as_array().unwrap()
    }

    fn wasm_layer(&self) -> &Value {
        let wasm: Vec<&Value> = self
            .layers()
            .iter()
            .filter(|l| l["mediaType"] == WASM_MEDIA_TYPE)
            .collect();
        assert_eq!(wasm.len(), 1, "exactly one {WASM_MEDIA_TYPE} layer");
        wasm[0]
    }
}

/// A docker-registry on 127.0.0.1, storage in a scratch directory.
struct Registry {
    proc: Proc,
    port: u16,
    dir: Scratch,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    fn start() -> Registry {
        let binary = require("docker-registry", "/usr/bin/docker-registry");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = Scratch::new("registry");
            let port = free_port();
            let storage = dir.0.join("storage");
            std::fs::create_dir_all(&storage).unwrap();
            let config = dir.0.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: 127.0.0.1:{port}\n  secret: meshprobe-test-only\n",
                    storage.display()
                ),
            )
            .unwrap();
            let mut cmd = Command::new(&binary);
            cmd.arg("serve").arg(&config);
            for (k, _) in std::env::vars() {
                if k.starts_with("REGISTRY_") {
                    cmd.env_remove(k); // no override of the config from outside
                }
            }
            let log = dir.0.join("registry.log");
            let proc = Proc::spawn(&mut cmd, "docker-registry", &log);
            let mut registry = Registry { proc, port, dir };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if registry.proc.exited().is_some() {
                    break; // e.g. the port was taken meanwhile: retry
                }
                if let Ok(r) = registry.get("/v2/", "application/json") {
                    if r.status == 200 {
                        return registry;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("docker-registry did not become ready on 127.0.0.1:\n{last_log}");
    }

    fn reference(&self, tag: &str) -> String {
        format!("docker://127.0.0.1:{}/meshprobe:{tag}", self.port)
    }

    /// GET on the registry API.
    fn get(&self, path: &str, accept: &str) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no end of headers"))?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
        {
            body = dechunk(&body);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_field = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_field.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A registry API answer; header names lowercased.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

fn skopeo_copy(from: &str, to: &str, scratch: &Path) {
    let skopeo = require("skopeo", "/usr/bin/skopeo");
    // No system policy, registries.conf or credentials: only this test's registry.
    let registries_conf = scratch.join("registries.conf");
    std::fs::write(&registries_conf, "").unwrap();
    let tmp = scratch.join("skopeo-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    run(
        Command::new(skopeo)
            .env("TMPDIR", &tmp)
            .env("CONTAINERS_REGISTRIES_CONF", &registries_conf)
            .args(["--insecure-policy", "copy"])
            .args(["--src-tls-verify=false", "--src-no-creds"])
            .args(["--dest-tls-verify=false", "--dest-no-creds"])
            .args([from, to]),
        &format!("skopeo copy {from} {to}"),
        scratch,
        Duration::from_secs(120),
    );
}

#[test]
fn pinned_sha256_is_the_built_modules() {
    let scratch = Scratch::new("pin");
    let module = module_copy(&scratch.0);
    assert_pinned(&sha256_hex(&module));
}

#[test]
fn image_layout_holds_the_module_in_istio_s_wasm_format() {
    let scratch = Scratch::new("layout");
    let module = module_copy(&scratch.0);
    let module_sha = sha256_hex(&module);
    let layout = scratch.0.join("oci");
    build_layout(&module, &layout, &scratch.0);

    let oci_layout: Value =
        serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );

    let image = Image::open(&layout, TAG);
    let m = &image.manifest;
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(m["config"]["mediaType"], CONFIG_MEDIA_TYPE);
    let config: Value = serde_json::from_slice(&image.blob(&m["config"])).unwrap();
    assert_eq!(config["type"], "envoy_proxy");
    assert!(config["abiVersions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v.as_str().unwrap().starts_with("proxy_abi_version_")));
    assert_eq!(config["config"]["rootIds"][0], "meshprobe");

    // Istio's fetcher (the "oci" variant): exactly two layers, the module in
    // the one of type WASM_MEDIA_TYPE, uncompressed.
    let layers = image.layers();
    assert_eq!(layers.len(), 2, "Istio requires exactly two layers");
    assert_eq!(layers[0]["mediaType"], CONFIG_MEDIA_TYPE);
    assert_eq!(layers[1]["mediaType"], WASM_MEDIA_TYPE);
    for layer in layers {
        image.blob(layer);
    }
    let wasm = image.blob(image.wasm_layer());
    assert_eq!(&wasm[..4], b"\0asm");
    assert_eq!(wasm, std::fs::read(&module).unwrap());
    assert_eq!(image.wasm_layer()["digest"], format!("sha256:{module_sha}"));

    // Reproducible: same module, same manifest digest.
    let again = scratch.0.join("oci-again");
    build_layout(&module, &again, &scratch.0);
    assert_eq!(
        Image::open(&again, TAG).manifest_digest,
        image.manifest_digest
    );
}

#[test]
fn registry_round_trip_keeps_the_module_and_its_pinned_sha256() {
    require("docker-registry", "/usr/bin/docker-registry");
    require("skopeo", "/usr/bin/skopeo");
    let scratch = Scratch::new("roundtrip");
    let module = module_copy(&scratch.0);
    let module_sha = sha256_hex(&module);
    let layout = scratch.0.join("oci");
    build_layout(&module, &layout, &scratch.0);
    let pushed = Image::open(&layout, TAG);

    let registry = Registry::start();
    skopeo_copy(
        &format!("oci:{}:{TAG}", layout.display()),
        &registry.reference(TAG),
        &scratch.0,
    );

    // What Istio's fetcher sees: the manifest by tag, unchanged (same digest),
    // and the module blob.
    let manifest = registry
        .get(
            &format!("/v2/meshprobe/manifests/{TAG}"),
            MANIFEST_MEDIA_TYPE,
        )
        .unwrap();
    assert_eq!(
        manifest.status,
        200,
        "{}",
        String::from_utf8_lossy(&manifest.body)
    );
    assert_eq!(manifest.header("content-type"), MANIFEST_MEDIA_TYPE);
    assert_eq!(
        manifest.header("docker-content-digest"),
        pushed.manifest_digest
    );
    let served: Value = serde_json::from_slice(&manifest.body).unwrap();
    assert_eq!(served, pushed.manifest);
    let blob = registry
        .get(
            &format!("/v2/meshprobe/blobs/sha256:{module_sha}"),
            "application/octet-stream",
        )
        .unwrap();
    assert_eq!(blob.status, 200);
    assert_eq!(
        blob.body,
        std::fs::read(&module).unwrap(),
        "module blob served by the registry"
    );

    // Pull it back into a fresh layout.
    let pulled_dir = scratch.0.join("pulled");
    skopeo_copy(
        &registry.reference(TAG),
        &format!("oci:{}:{TAG}", pulled_dir.display()),
        &scratch.0,
    );
    let pulled = Image::open(&pulled_dir, TAG);
    assert_eq!(
        pulled.manifest_digest, pushed.manifest_digest,
        "manifest changed on the way"
    );
    let wasm = pulled.blob(pulled.wasm_layer());
    let out = scratch.0.join("pulled.wasm");
    std::fs::write(&out, &wasm).unwrap();
    assert_eq!(
        sha256_hex(&out),
        module_sha,
        "the module changed on the way"
    );

    drop(registry);
    // And it is the module the https:// examples pin.
    assert_pinned(&module_sha);
}

#[test]
fn the_registry_is_stopped_with_the_test() {
    require("docker-registry", "/usr/bin/docker-registry");
    let registry = Registry::start();
    let pid = registry.proc.child.id();
    let port = registry.port;
    let storage = registry.dir.0.clone();
    drop(registry);
    // Killed and reaped: no such process any more, its scratch storage gone.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "docker-registry (pid {pid}) still running"
    );
    assert!(!storage.exists(), "{} left behind", storage.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
}
