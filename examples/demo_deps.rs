//! The demo's dependency servers and application, on fixed 127.0.0.1 ports.
//! Switch a dependency with `curl 127.0.0.1:<port>/__mode/<ok|fail|hang|slow>`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/deps.rs"]
mod deps;

use deps::{DepServer, Mode};

fn main() {
    let servers = [
        ("app", 18080, Mode::Echo),
        ("db", 18081, Mode::Status(200)),
        ("cache", 18082, Mode::Status(200)),
        ("search", 18083, Mode::Status(200)),
        ("statuspage", 18084, deps::statuspage("none")),
        ("payments", 18085, deps::statuspage("none")),
    ];
    let mut running = Vec::new();
    for (name, port, mode) in servers {
        match DepServer::start_on(port, mode) {
            Ok(s) => {
                println!("demo: {name} on 127.0.0.1:{port}");
                running.push(s);
            }
            Err(e) => {
                eprintln!("demo: cannot listen on 127.0.0.1:{port} for {name}: {e}");
                std::process::exit(1);
            }
        }
    }
    // Serve until killed.
    loop {
        std::thread::park();
    }
}
