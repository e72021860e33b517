//! Bare Pingora: the benchmark's baselines (`bench/run`, `docs/benchmarks.md`). The least a
//! Pingora server does for the benchmark's requests, on the Pingora settings `gms-gateway`
//! runs with, so that the gateway's ratio to it is what the plugin and the binary's edge cost.
//!
//! ```text
//! bare_pingora local LISTEN REPLIES   a ProxyHttp answering in request_filter (the plugin's shape)
//! bare_pingora serve LISTEN REPLIES   the same replies from a ServeHttp app (no proxy phases)
//! bare_pingora proxy LISTEN BACKEND [PATH=UPSTREAM,...=TARGET]...
//!                                     a ProxyHttp to BACKEND; a request for PATH goes to the
//!                                     UPSTREAMs in turn, its path replaced by TARGET
//! ```
//!
//! REPLIES is a JSON list of canned replies (`local.rs`). Settings as the gateway's
//! (`src/server.rs`, `src/main.rs`): mimalloc, one worker thread without work stealing, plain
//! listeners without the L4 read buffer, no downstream modules. Not part of the library.

mod local;
mod proxy;

use std::process::exit;

use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

// The gateway's allocator: a baseline on glibc malloc would flatter the gateway.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: bare_pingora local|serve LISTEN REPLIES\n       \
                     bare_pingora proxy LISTEN BACKEND [PATH=UPSTREAM,...=TARGET]...";

/// What went wrong before the server ran.
type Failure = Box<dyn std::error::Error>;

fn main() {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("bare_pingora: {e}\n{USAGE}");
        exit(2);
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let (mode, listen, rest) = match args {
        [mode, listen, rest @ ..] => (mode.as_str(), listen.as_str(), rest),
        _ => return Err("missing arguments".into()),
    };
    let mut server = Server::new_with_opt_and_conf(None, server_conf());
    server.bootstrap();
    // As the gateway's plain listeners: Pingora reads heads and bodies into its own buffers.
    let listener = ListenerConfig::tcp(listen).l4_buffer(L4BufferSettings {
        read: Some(0),
        write: None,
    });
    match (mode, rest) {
        ("local", [replies]) => {
            let mut service = local::proxy_service(&server, local::Replies::load(replies)?);
            service.add_listener(listener);
            server.add_service(service);
        }
        ("serve", [replies]) => {
            let mut service = local::serve_service(local::Replies::load(replies)?);
            service.add_listener(listener);
            server.add_service(service);
        }
        ("proxy", [backend, routes @ ..]) => {
            let mut service = proxy::service(&server, proxy::Bare::parse(backend, routes)?);
            service.add_listener(listener);
            server.add_service(service);
        }
        _ => return Err(format!("unknown mode or arguments: {}", args.join(" ")).into()),
    }
    println!("bare_pingora {mode} listening on {listen}");
    server.run_forever();
}

/// The gateway's Pingora settings in `bench/run`: one worker thread, no work stealing, and a
/// quick stop (SIGINT) without a grace period.
fn server_conf() -> ServerConf {
    ServerConf {
        threads: 1,
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    }
}
