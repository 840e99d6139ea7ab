//! A real Prometheus (Debian's `prometheus` package, `just setup-observability`
//! installs it) on 127.0.0.1: its own data directory in a scratch dir, a
//! 1 s scrape and evaluation interval, stopped by PID when dropped. Plus
//! `promtool`.

#![allow(dead_code)]

use super::envoy::Scratch;
use super::http::try_request;
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `MESHPROBE_PROMETHEUS` or `prometheus` on `PATH`.
pub fn prometheus_bin() -> String {
    std::env::var("MESHPROBE_PROMETHEUS").unwrap_or_else(|_| "prometheus".into())
}

/// `MESHPROBE_PROMTOOL` or `promtool` on `PATH`.
pub fn promtool_bin() -> String {
    std::env::var("MESHPROBE_PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

/// Runs promtool with `args` (in the crate's root), feeding `stdin`.
pub fn promtool(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(promtool_bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): `just setup-observability` installs it")
        });
    let mut input = child.stdin.take().expect("promtool stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write to promtool");
    }
    drop(input);
    child.wait_with_output().expect("promtool output")
}

/// Output of a finished process as one text.
pub fn output_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// A scrape job: name, `host:port` targets, metrics path, URL params,
/// request headers are not supported by Prometheus 2.42 (so secrets go in
/// params or as a bearer token).
pub struct Job<'a> {
    pub name: &'a str,
    pub target: String,
    pub metrics_path: &'a str,
    pub params: &'a [(&'a str, &'a str)],
    /// `authorization: {credentials: ...}` (Bearer).
    pub bearer: Option<&'a str>,
}

impl Job<'_> {
    fn yaml(&self) -> String {
        let mut y = format!(
            "  - job_name: {}\n    metrics_path: {}\n    static_configs: [{{ targets: [\"{}\"] }}]\n",
            self.name, self.metrics_path, self.target
        );
        if !self.params.is_empty() {
            y.push_str("    params:\n");
            for (k, v) in self.params {
                y.push_str(&format!("      {k}: [\"{v}\"]\n"));
            }
        }
        if let Some(token) = self.bearer {
            y.push_str(&format!(
                "    authorization: {{ type: Bearer, credentials: \"{token}\" }}\n"
            ));
        }
        y
    }
}

pub struct Prometheus {
    child: Child,
    pub port: u16,
    pub log: std::path::PathBuf,
    dir: Scratch,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Prometheus {
    /// Starts Prometheus scraping `jobs` every second and evaluating
    /// `rules` (file name -> YAML text) every second; waits until it is
    /// ready.
    pub fn start(jobs: &[Job<'_>], rules: &[(&str, &str)]) -> Prometheus {
        let dir = Scratch::new("prometheus");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n",
        );
        if !rules.is_empty() {
            config.push_str("rule_files:\n");
            for (name, text) in rules {
                let path = dir.0.join(name);
                fs::write(&path, text).unwrap();
                config.push_str(&format!("  - \"{}\"\n", path.display()));
            }
        }
        config.push_str("scrape_configs:\n");
        for job in jobs {
            config.push_str(&job.yaml());
        }
        let config_path = dir.0.join("prometheus.yml");
        fs::write(&config_path, &config).unwrap();
        let log = dir.0.join("prometheus.log");
        // The port is free when chosen; should another process take it
        // before Prometheus binds it, Prometheus exits and we try again.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(prometheus_bin())
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.0.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run prometheus ({e}): `just setup-observability` installs it")
                });
            let deadline = Instant::now() + Duration::from_secs(30);
            let ready = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "Prometheus not ready after 30 s:\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                if try_request(port, "GET", "/-/ready", &[], "HTTP/1.1")
                    .is_some_and(|r| r.status == 200)
                {
                    break true;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if ready {
                return Prometheus {
                    child,
                    port,
                    log,
                    dir,
                };
            }
            let text = fs::read_to_string(&log).unwrap_or_default();
            assert!(
                text.contains("address already in use"),
                "Prometheus exited:\n{text}\nconfig:\n{config}"
            );
        }
        panic!("Prometheus found no free port in 3 attempts");
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on the HTTP API: the decoded JSON (any status: errors carry
    /// `"status":"error"` and `"error"`).
    pub fn api(&self, path: &str) -> Value {
        let r = try_request(self.port, "GET", path, &[], "HTTP/1.1")
            .unwrap_or_else(|| panic!("Prometheus did not answer {path}"));
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", r.body))
    }

    /// An instant query: `Ok(result vector)` or `Err(error text)`.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let v = self.api(&format!("/api/v1/query?query={}", encode(promql)));
        if v["status"] == "success" {
            Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
        } else {
            Err(v["error"].as_str().unwrap_or("unknown error").to_string())
        }
    }

    /// Polls `promql` until it returns a non-empty result, or panics after
    /// `within`.
    pub fn wait_for(&self, promql: &str, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            match self.query(promql) {
                Ok(r) if !r.is_empty() => return r,
                Err(e) => panic!("{promql}: {e}"),
                Ok(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "{promql} returned nothing within {within:?}; targets: {}",
                self.api("/api/v1/targets")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The alerts as `/api/v1/alerts` lists them.
    pub fn alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Names of the alerts in state `firing`.
    pub fn firing(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .alerts()
            .iter()
            .filter(|a| a["state"] == "firing")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(String::from))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The health of each active target: (job, health, last error).
    pub fn targets(&self) -> Vec<(String, String, String)> {
        self.api("/api/v1/targets")["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
                (
                    t["labels"]["job"].as_str().unwrap_or("").to_string(),
                    s("health"),
                    s("lastError"),
                )
            })
            .collect()
    }

    /// Scratch path for files a test wants next to Prometheus' own.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
