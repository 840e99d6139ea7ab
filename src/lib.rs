//! meshprobe: health probes answered inside Envoy.
//!
//! The crate is a pure core, which never touches the host and is tested with
//! plain `cargo test`, plus a thin host layer ([`host`], wasm32 only), the one
//! place that talks to proxy-wasm:
//!
//! - [`policy`]: the plugin configuration, decoded and validated;
//! - [`classify`]: is a request a probe, is it authorized, how to answer;
//! - [`run`]: one probe run, fed with callout outcomes and the time;
//! - [`engine`]: the runs, leases and waiting probes of a VM, sans-IO;
//! - [`outcome`]: what a callout's answer means for its check;
//! - [`grpc`]: the `grpc.health.v1` messages, by hand;
//! - `admin` (crate-private): what Envoy's admin API answers mean (the
//!   `envoy_*` checks);
//! - [`failure`]: why a check did not pass, typed, with its reason text and
//!   metric label;
//! - [`report`]: check results and their aggregation;
//! - [`render`] and [`negotiate`]: the answer in text or JSON.

pub(crate) mod admin;
pub mod cache;
pub mod cidr;
pub mod classify;
pub mod duration;
pub mod engine;
pub mod failure;
pub mod format;
pub mod grpc;
pub mod json;
pub mod metrics;
pub mod negotiate;
pub mod outcome;
pub mod policy;
pub mod query;
pub mod render;
pub mod report;
pub mod run;
pub mod secret;
pub mod text;

#[cfg(test)]
mod fixtures;

// Not in test builds: `just test-wasm32` runs the core's tests on wasm32 in
// Node, which has none of the proxy-wasm imports the host layer needs.
#[cfg(all(target_arch = "wasm32", not(test)))]
mod host;
