//! An embedder's own Pingora proxy with the GMS API in it: GMS requests are answered by the
//! plugin, every other request goes to the embedder's upstream.
//!
//! `cargo run --example embed -- CONFIG LISTEN UPSTREAM`, e.g.
//! `cargo run --example embed -- conf/gateway.yaml 127.0.0.1:8080 127.0.0.1:8000`
//! (or `GMS_CONFIG`, `GMS_LISTEN`, `GMS_UPSTREAM` in the environment). Only the `gms:` API
//! part of CONFIG is used: this proxy has its own listener and upstream.

use gms_gateway::{ApiConfig, GmsApi};
use pingora::prelude::*;

/// The embedder's proxy: its own upstream, and the GMS API.
struct MyProxy {
    gms: GmsApi,
    upstream: String,
}

#[async_trait::async_trait]
impl ProxyHttp for MyProxy {
    type CTX = ();

    fn new_ctx(&self) {}

    /// GMS first: `Ok(true)` means the plugin answered.
    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        self.gms.request_filter(session).await
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

/// The `n`th command-line argument, else the environment variable `env`.
fn arg(n: usize, env: &str) -> String {
    std::env::args()
        .nth(n)
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| {
            eprintln!("usage: embed CONFIG LISTEN UPSTREAM (or {env} in the environment)");
            std::process::exit(2)
        })
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let (config, listen, upstream) = (
        arg(1, "GMS_CONFIG"),
        arg(2, "GMS_LISTEN"),
        arg(3, "GMS_UPSTREAM"),
    );

    // The GMS wiring: the plugin, its background services, the hook above.
    let gms = GmsApi::build(ApiConfig::load(&config)?)?;
    let mut server = Server::new(None)?;
    server.bootstrap();
    server.add_services(gms.background_services());
    let mut proxy = http_proxy_service(&server.configuration, MyProxy { gms, upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
