//! File-based xDS for the policy hot-swap tests: the meshprobe filter
//! delivered by ECDS (the way Istio delivers a `WasmPlugin`), or a whole
//! listener by LDS, each read from a file in a directory Envoy watches
//! (`path_config_source` + `watched_directory`). A test replaces the file
//! atomically, the way Envoy's docs ask: write a sibling, then rename it
//! over the watched name (Envoy reacts to the move, never to a write).
//!
//! Everything here is generated as JSON (a bootstrap or a resource file
//! whose name does not end in `.yaml` is read as JSON); `envoy/ecds/` and
//! `envoy/lds/` hold the same configurations as documented YAML.

#![allow(dead_code)]

use super::envoy::{Envoy, Scratch};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// The HTTP connection manager's `stat_prefix` (`http.ingress.*` stats).
pub const STAT_PREFIX: &str = "ingress";

/// A scratch directory that Envoy watches, holding one xDS resource file.
pub struct Watched {
    pub dir: Scratch,
    /// The watched resource file (`path_config_source.path`).
    pub file: PathBuf,
}

impl Watched {
    pub fn new(tag: &str, file_name: &str) -> Watched {
        let dir = Scratch::new(tag);
        let file = dir.0.join(file_name);
        Watched { dir, file }
    }

    /// The `path_config_source` for the file, reloaded on moves into the
    /// directory.
    pub fn config_source(&self) -> Value {
        json!({
            "path_config_source": {
                "path": self.file.display().to_string(),
                "watched_directory": { "path": self.dir.0.display().to_string() }
            }
        })
    }

    /// Writes the first version (before Envoy starts).
    pub fn write(&self, contents: &str) {
        fs::write(&self.file, contents).unwrap();
    }

    /// Replaces the file atomically: the new contents go to a hidden
    /// sibling in the same directory (same filesystem, so the rename is
    /// atomic), which is then renamed over the watched name. Envoy sees the
    /// move and reads the whole new file, never a half-written one.
    pub fn swap(&self, contents: &str) {
        let name = self.file.file_name().unwrap().to_string_lossy();
        let next = self.dir.0.join(format!(".{name}.next"));
        fs::write(&next, contents).unwrap();
        fs::rename(&next, &self.file).unwrap();
    }
}

/// The meshprobe filter's `typed_config` (a Wasm filter) with this policy.
pub fn wasm_filter(policy: &str, wasm: &str) -> Value {
    json!({
        "@type": WASM_TYPE,
        "config": {
            "name": "meshprobe",
            "root_id": "meshprobe",
            "failure_policy": "FAIL_RELOAD",
            "vm_config": {
                "vm_id": "meshprobe",
                "runtime": "envoy.wasm.runtime.v8",
                "code": { "local": { "filename": wasm } }
            },
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": policy
            }
        }
    })
}

/// A listener on 127.0.0.1:`port` (0: any free port) whose HTTP connection
/// manager runs `meshprobe` (an `http_filters` entry) and then the router
/// to the `app` cluster.
pub fn listener(port: u16, meshprobe: Value) -> Value {
    json!({
        "name": "main",
        "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } },
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": STAT_PREFIX,
                    "http_protocol_options": { "accept_http_10": true, "default_host_for_http_10": "localhost" },
                    "route_config": {
                        "virtual_hosts": [{
                            "name": "app",
                            "domains": ["*"],
                            "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "app" } }]
                        }]
                    },
                    "http_filters": [
                        meshprobe,
                        {
                            "name": "envoy.filters.http.router",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                            }
                        }
                    ]
                }
            }]
        }]
    })
}

/// Static clusters on 127.0.0.1, by name -> port.
pub fn clusters(clusters: &[(&str, u16)]) -> Value {
    clusters
        .iter()
        .map(|(name, port)| {
            json!({
                "name": name,
                "connect_timeout": "0.25s",
                "load_assignment": {
                    "cluster_name": name,
                    "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": {
                        "socket_address": { "address": "127.0.0.1", "port_value": port }
                    } } }] }]
                }
            })
        })
        .collect()
}

/// xDS subscriptions need a node id and cluster.
fn node(id: &str) -> Value {
    json!({ "id": id, "cluster": "meshprobe" })
}

fn admin() -> Value {
    json!({ "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } } })
}

/// ECDS: a bootstrap whose listener gets its meshprobe filter from the
/// watched file. `default_policy`: the filter's `default_config`, used
/// when the first version of the file is missing or refused.
pub fn ecds_bootstrap(
    watched: &Watched,
    clusters_by_port: &[(&str, u16)],
    default_policy: Option<&str>,
    wasm: &str,
) -> String {
    let mut discovery = json!({
        "config_source": watched.config_source(),
        "type_urls": [WASM_TYPE]
    });
    if let Some(policy) = default_policy {
        discovery["default_config"] = wasm_filter(policy, wasm);
    }
    let meshprobe = json!({ "name": "meshprobe", "config_discovery": discovery });
    json!({
        "node": node("meshprobe-ecds"),
        "admin": admin(),
        "static_resources": {
            "listeners": [listener(0, meshprobe)],
            "clusters": clusters(clusters_by_port)
        }
    })
    .to_string()
}

/// ECDS: the watched file's contents, a `DiscoveryResponse` holding the
/// meshprobe filter (`TypedExtensionConfig` named like the filter).
pub fn ecds_resource(version: &str, policy: &str, wasm: &str) -> String {
    json!({
        "version_info": version,
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "meshprobe",
            "typed_config": wasm_filter(policy, wasm)
        }]
    })
    .to_string()
}

/// LDS: a bootstrap whose listeners all come from the watched file.
pub fn lds_bootstrap(watched: &Watched, clusters_by_port: &[(&str, u16)]) -> String {
    json!({
        "node": node("meshprobe-lds"),
        "admin": admin(),
        "dynamic_resources": { "lds_config": watched.config_source() },
        "static_resources": { "clusters": clusters(clusters_by_port) }
    })
    .to_string()
}

/// LDS: the watched file's contents, a `DiscoveryResponse` with the one
/// listener (on `port`), its meshprobe filter inline.
pub fn lds_resource(version: &str, port: u16, policy: &str, wasm: &str) -> String {
    let meshprobe = json!({ "name": "meshprobe", "typed_config": wasm_filter(policy, wasm) });
    let mut listener = listener(port, meshprobe);
    listener["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
    json!({ "version_info": version, "resources": [listener] }).to_string()
}

/// Every stat whose name starts with `prefix`, name -> value as printed
/// (counters and gauges as numbers, `version_text` quoted).
pub fn stats(envoy: &Envoy, prefix: &str) -> HashMap<String, String> {
    let filter = format!("/stats?filter=^{}", prefix.replace('.', "\\."));
    let Some((200, body)) = envoy.admin_get(&filter) else {
        return HashMap::new();
    };
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// The subscription and ECDS counters of one file-based subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XdsStats {
    /// `version_info` of the last update the subscription accepted.
    pub version_text: String,
    pub update_success: u64,
    pub update_rejected: u64,
    /// ECDS only: counted when the workers have the new filter config,
    /// and (Envoy 1.40) also for an update that was then rejected.
    pub config_reload: u64,
    /// ECDS only: updates refused.
    pub config_fail: u64,
    /// LDS only: listeners added to a worker (one per worker per update).
    pub listener_create_success: u64,
}

impl XdsStats {
    fn from(all: &HashMap<String, String>, prefix: &str) -> XdsStats {
        let n = |name: &str| {
            all.get(&format!("{prefix}.{name}"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        XdsStats {
            version_text: all
                .get(&format!("{prefix}.version_text"))
                .cloned()
                .unwrap_or_default(),
            update_success: n("update_success"),
            update_rejected: n("update_rejected"),
            config_reload: n("config_reload"),
            config_fail: n("config_fail"),
            listener_create_success: 0,
        }
    }

    /// The meshprobe filter's ECDS subscription
    /// (`extension_config_discovery.http_filter.meshprobe.*`).
    pub fn ecds(envoy: &Envoy) -> XdsStats {
        let prefix = "extension_config_discovery.http_filter.meshprobe";
        XdsStats::from(&stats(envoy, prefix), prefix)
    }

    /// The LDS subscription (`listener_manager.lds.*`) and
    /// `listener_manager.listener_create_success`.
    pub fn lds(envoy: &Envoy) -> XdsStats {
        let all = stats(envoy, "listener_manager.");
        let mut s = XdsStats::from(&all, "listener_manager.lds");
        s.listener_create_success = all
            .get("listener_manager.listener_create_success")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        s
    }
}

/// Polls `probe` every 5 ms until it returns `Some`, or panics after
/// `limit` with `what`. Returns the value and how long it took.
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < limit, "after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
