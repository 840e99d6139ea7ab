//! Starts a real Envoy with the built module, waits for it by polling its
//! admin API, and stops it (by PID) when dropped.
//!
//! `MESHPROBE_ENVOY` names the Envoy binary and `MESHPROBE_WASM` the module;
//! `just test` sets both.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn envoy_bin() -> String {
    std::env::var("MESHPROBE_ENVOY").expect(
        "MESHPROBE_ENVOY is not set: run the end-to-end tests with `just test` (it installs Envoy)",
    )
}

pub fn wasm_path() -> String {
    let p = std::env::var("MESHPROBE_WASM").unwrap_or_else(|_| "dist/meshprobe.wasm".into());
    let abs = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
    assert!(
        abs.exists(),
        "{} is missing: run `just build` (or `just test`)",
        abs.display()
    );
    abs.display().to_string()
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("meshprobe-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What the filter chain of a test Envoy holds.
pub struct Setup<'a> {
    /// The meshprobe policy (JSON).
    pub policy: &'a str,
    /// Clusters by name -> port on 127.0.0.1. `app` receives all routes.
    pub clusters: &'a [(&'a str, u16)],
    /// VM environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// Envoy worker threads (one VM each).
    pub workers: u32,
}

/// YAML for one STRICT_DNS-free static cluster.
fn cluster_yaml(name: &str, port: u16) -> String {
    format!(
        r#"    - name: "{name}"
      connect_timeout: 0.25s
      load_assignment:
        cluster_name: "{name}"
        endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }} }}] }}]
"#
    )
}

/// The bootstrap for a test: listener and admin on ephemeral ports.
pub fn bootstrap(setup: &Setup<'_>, wasm: &str) -> String {
    let policy = serde_json::to_string(setup.policy).unwrap();
    let env: String = setup
        .env
        .iter()
        .map(|(k, v)| {
            format!(
                "                              {k}: {}\n",
                serde_json::to_string(v).unwrap()
            )
        })
        .collect();
    let env_block = if env.is_empty() {
        String::new()
    } else {
        format!("                          environment_variables:\n                            key_values:\n{env}")
    };
    let clusters: String = setup
        .clusters
        .iter()
        .map(|(n, p)| cluster_yaml(n, *p))
        .collect();
    format!(
        r#"stats_config:
  stats_tags:
    - {{ tag_name: meshprobe_endpoint, regex: '^wasmcustom\.meshprobe\.(endpoint\.([^.]+)\.)' }}
    - {{ tag_name: meshprobe_code, regex: '^wasmcustom\.meshprobe\.(?:endpoint\.[^.]+\.)?(code\.([0-9]+)\.)' }}
    - {{ tag_name: meshprobe_check, regex: '^wasmcustom\.meshprobe\.(check\.([^.]+)\.)' }}
    - {{ tag_name: meshprobe_outcome, regex: '^wasmcustom\.meshprobe\.(?:check\.[^.]+\.)?(outcome\.([^.]+)\.)' }}
    - {{ tag_name: meshprobe_vm, regex: '^wasmcustom\.meshprobe\.(vm\.([^.]+)\.)' }}
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
    - name: main
      address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress
                codec_type: AUTO
                http_protocol_options: {{ accept_http_10: true, default_host_for_http_10: localhost }}
                route_config:
                  virtual_hosts:
                    - name: app
                      domains: ["*"]
                      routes:
                        - match: {{ prefix: "/" }}
                          route: {{ cluster: app }}
                http_filters:
                  - name: meshprobe
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: meshprobe
                        root_id: meshprobe
                        failure_policy: FAIL_RELOAD
                        vm_config:
                          vm_id: meshprobe
                          runtime: envoy.wasm.runtime.v8
                          code: {{ local: {{ filename: "{wasm}" }} }}
{env_block}                        configuration:
                          "@type": type.googleapis.com/google.protobuf.StringValue
                          value: {policy}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{clusters}"#
    )
}

/// What a test Envoy needs beyond [`Setup`]; the default is what
/// [`Envoy::start`] uses.
pub struct Options<'a> {
    /// Envoy's log level (`-l`), e.g. `trace`.
    pub log_level: &'a str,
    /// Clusters with no endpoints at all (STATIC, empty `load_assignment`):
    /// a callout to one finds no healthy upstream.
    pub empty_clusters: &'a [&'a str],
    /// Clusters of [`Setup::clusters`] that speak HTTP/2 (h2c) upstream,
    /// as gRPC needs (`typed_extension_protocol_options`).
    pub http2_clusters: &'a [&'a str],
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            log_level: "info",
            empty_clusters: &[],
            http2_clusters: &[],
        }
    }
}

/// [`bootstrap`] plus what `options` adds to it.
pub fn bootstrap_with(setup: &Setup<'_>, options: &Options<'_>, wasm: &str) -> String {
    let mut yaml = bootstrap(setup, wasm);
    for name in options.http2_clusters {
        let head = format!("    - name: \"{name}\"\n      connect_timeout: 0.25s\n");
        let h2 = format!(
            "{head}      typed_extension_protocol_options:\n        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n          \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n          explicit_http_config: {{ http2_protocol_options: {{}} }}\n"
        );
        assert!(yaml.contains(&head), "no cluster {name} to make HTTP/2");
        yaml = yaml.replace(&head, &h2);
    }
    // The cluster list ends the bootstrap: more clusters go at its end.
    for name in options.empty_clusters {
        yaml.push_str(&format!(
            "    - name: \"{name}\"\n      connect_timeout: 0.25s\n      type: STATIC\n      load_assignment: {{ cluster_name: \"{name}\", endpoints: [] }}\n"
        ));
    }
    yaml
}

pub struct Envoy {
    child: Child,
    pub port: u16,
    pub admin: u16,
    pub log: PathBuf,
    _dir: Scratch,
}

/// How an Envoy start ended when it did not come up.
pub struct Refused {
    pub status: std::process::ExitStatus,
    pub log: String,
}

impl Envoy {
    pub fn start(setup: &Setup<'_>) -> Envoy {
        match Self::try_start(setup) {
            Ok(e) => e,
            Err(r) => panic!("Envoy did not start ({}):\n{}", r.status, r.log),
        }
    }

    /// Starts Envoy; `Err` when the process exits before it is ready.
    pub fn try_start(setup: &Setup<'_>) -> Result<Envoy, Refused> {
        Self::try_start_yaml(&bootstrap(setup, &wasm_path()), setup.workers)
    }

    /// Starts Envoy from a whole bootstrap (e.g. [`bootstrap`]'s, edited);
    /// the listener and admin port are read back from the admin API.
    pub fn try_start_yaml(yaml: &str, workers: u32) -> Result<Envoy, Refused> {
        Self::launch(yaml, workers, "info")
    }

    /// As [`Envoy::start`], with [`Options`].
    pub fn start_with(setup: &Setup<'_>, options: &Options<'_>) -> Envoy {
        match Self::try_start_with(setup, options) {
            Ok(e) => e,
            Err(r) => panic!("Envoy did not start ({}):\n{}", r.status, r.log),
        }
    }

    /// As [`Envoy::try_start`], with [`Options`].
    pub fn try_start_with(setup: &Setup<'_>, options: &Options<'_>) -> Result<Envoy, Refused> {
        let yaml = bootstrap_with(setup, options, &wasm_path());
        Self::launch(&yaml, setup.workers, options.log_level)
    }

    /// Starts Envoy on `yaml` with `-l <log_level>` and waits until it is
    /// ready; `Err` when the process exits before.
    fn launch(yaml: &str, workers: u32, log_level: &str) -> Result<Envoy, Refused> {
        let dir = Scratch::new("envoy");
        let config = dir.0.join("envoy.yaml");
        fs::write(&config, yaml).unwrap();
        let admin_file = dir.0.join("admin-address");
        let log = dir.0.join("envoy.log");
        let child = Command::new(envoy_bin())
            .arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                &workers.max(1).to_string(),
                "--use-dynamic-base-id",
                "-l",
                log_level,
                // Log lines reach the file within 100 ms (default: 10 s),
                // so tests can read what Envoy just said.
                "--file-flush-interval-msec",
                "100",
            ])
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--log-path")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn Envoy");
        let mut envoy = Envoy {
            child,
            port: 0,
            admin: 0,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err(Refused {
                    status,
                    log: envoy.log_text(),
                });
            }
            assert!(
                Instant::now() < deadline,
                "Envoy not ready after 30 s:\n{}",
                envoy.log_text()
            );
            if envoy.admin == 0 {
                if let Ok(text) = fs::read_to_string(&admin_file) {
                    envoy.admin = text
                        .trim()
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0);
                }
            }
            if envoy.admin != 0 && envoy.port == 0 {
                envoy.port = envoy.listener_port().unwrap_or(0);
            }
            if envoy.port != 0
                && envoy
                    .admin_get("/ready")
                    .is_some_and(|(s, b)| s == 200 && b.trim() == "LIVE")
            {
                return Ok(envoy);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn listener_port(&self) -> Option<u16> {
        let (status, body) = self.admin_get("/listeners?format=json")?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let port =
            v["listener_statuses"][0]["local_address"]["socket_address"]["port_value"].as_u64()?;
        u16::try_from(port).ok().filter(|p| *p != 0)
    }

    /// GET on the admin port: (status, body), `None` when it cannot connect.
    /// Statistics are read two ticks late: a VM hands its counters to
    /// Envoy on its tick (every 20 ms), added up.
    pub fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        if path.starts_with("/stats") {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let r = super::http::try_request(self.admin, "GET", path, &[], "HTTP/1.1")?;
        Some((r.status, r.body))
    }

    /// A counter or gauge from the admin `/stats`.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let (_, body) = self.admin_get(&format!("/stats?filter=^{}$", name.replace('.', "\\.")))?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `envoy --mode validate -c <file>`: (success, output).
pub fn validate(config: &Path) -> (bool, String) {
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(config)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run envoy --mode validate");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}
