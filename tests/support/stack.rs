//! A whole test stack: the application and named dependency servers on
//! 127.0.0.1, and a real Envoy with the module in front of them. Every
//! dependency name is also an Envoy cluster; `closed` is a cluster whose
//! port nobody listens on.

#![allow(dead_code)]

use super::deps::{DepServer, Mode};
use super::envoy::{Envoy, Options, Setup};
use super::http::{get, Response};

pub struct Stack {
    pub app: DepServer,
    deps: Vec<(String, DepServer)>,
    pub envoy: Envoy,
}

impl Stack {
    pub fn start(policy: &str, deps: &[(&str, Mode)], env: &[(&str, &str)]) -> Stack {
        Self::with_workers(policy, deps, env, 1)
    }

    pub fn with_workers(
        policy: &str,
        deps: &[(&str, Mode)],
        env: &[(&str, &str)],
        workers: u32,
    ) -> Stack {
        Self::with_options(policy, deps, env, workers, &Options::default())
    }

    /// As [`Stack::with_workers`], Envoy started with `options`.
    pub fn with_options(
        policy: &str,
        deps: &[(&str, Mode)],
        env: &[(&str, &str)],
        workers: u32,
        options: &Options<'_>,
    ) -> Stack {
        let app = DepServer::start(Mode::Echo);
        let deps: Vec<(String, DepServer)> = deps
            .iter()
            .map(|(name, mode)| (name.to_string(), DepServer::start(mode.clone())))
            .collect();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut clusters: Vec<(&str, u16)> = vec![("app", app.port), ("closed", closed_port)];
        clusters.extend(deps.iter().map(|(n, d)| (n.as_str(), d.port)));
        let envoy = Envoy::start_with(
            &Setup {
                policy,
                clusters: &clusters,
                env,
                workers,
            },
            options,
        );
        Stack { app, deps, envoy }
    }

    pub fn dep(&self, name: &str) -> &DepServer {
        &self
            .deps
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no dependency {name}"))
            .1
    }

    /// Requests seen by all dependencies together.
    pub fn dependency_hits(&self) -> usize {
        self.deps.iter().map(|(_, d)| d.hits()).sum()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        get(self.envoy.port, path, headers)
    }
}
