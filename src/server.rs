//! Assembles the process: Pingora server, store, gateway, backend load balancer and its health
//! check, listeners, lifecycle (start work, drain).

use std::collections::BTreeSet;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use pingora::apps::HttpServerOptions;
use pingora::lb::discovery::Static;
use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::prelude::{background_service, Opt};
use pingora::proxy::HttpProxy;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;

use crate::access_log::AccessLog;
use crate::app::GatewayApp;
use crate::config::{BackendConfig, Config};
use crate::conn_guard::ConnLimits;
use crate::gateway::Gateway;
use crate::lifecycle::{Drain, Lifecycle};
use crate::ors::Ors;
use crate::proxy::{BackendTls, GatewayProxy};
use crate::store;
use crate::web_tier::WebTier;
use pingora::connectors::ConnectorOptions;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// Runs the ORS background work (node health checks) until the server stops.
struct OrsChecks(Arc<Ors>);

#[async_trait::async_trait]
impl BackgroundService for OrsChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = self.0.run_background() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Keeps the store usage gauges (`gms_live_services`, `gms_reservations`) fresh until the
/// server stops; added only with metrics on.
struct UsageGauges(Arc<Gateway>);

#[async_trait::async_trait]
impl BackgroundService for UsageGauges {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let gw = &self.0;
        tokio::select! {
            _ = crate::metrics::run_usage_gauges(gw.store.clone(), gw.config.clone()) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Builds every service from a validated configuration and runs until told to stop.
///
/// With `-u` the listening sockets come from the running process (`server.bootstrap()`), and
/// that is the last step before running: everything that can fail is done before the upgrade
/// socket appears, so a new process that cannot start never makes the old one hand over.
pub fn run(opt: Opt, config: Config) -> Result<(), String> {
    let mut server = Server::new(Some(opt)).map_err(|e| format!("cannot start Pingora: {e}"))?;
    check_server_conf(&server.configuration)?;
    let config = Arc::new(config);
    let store = store::build(&config)?;
    let gw = Arc::new(Gateway::new(config.clone(), store)?);
    server.add_service(background_service(
        "ORS node health checks",
        OrsChecks(gw.ors.clone()),
    ));

    let web = match &config.backend {
        Some(b) => {
            let mut lb = backend_balancer(b)?;
            // A TCP connect, also for TLS upstreams: a handshake per check would cost more and
            // prove little that the first proxied request does not.
            lb.set_health_check(TcpHealthCheck::new());
            lb.health_check_frequency = Some(Duration::from_millis(b.health_check_interval_ms));
            let bg = background_service("backend health check", lb);
            let task = bg.task();
            server.add_service(bg);
            // The direct path for plain fetches connects as Pingora's proxy would (`ca_file`).
            let options = ConnectorOptions::from_server_conf(&server.configuration);
            let timeout = Duration::from_millis(b.timeout_ms);
            Some(WebTier::new(task, options, b.upstreams.len(), timeout))
        }
        None => None,
    };

    if let Some(addr) = &config.metrics_listen {
        let mut metrics = pingora_prometheus::prometheus_http_service();
        metrics.add_tcp(addr);
        server.add_service(metrics);
        server.add_service(background_service(
            "store usage gauges",
            UsageGauges(gw.clone()),
        ));
    }
    let (access_log, log_writer) = match &config.access_log {
        Some(dest) => {
            let (log, writer) = AccessLog::open(dest)?;
            (Some(log), Some(writer))
        }
        None => (None, None),
    };
    let drain = Drain::default();
    let store = gw.store.clone();
    let on_start = Box::new(move || {
        store.start_upkeep();
        if let Some(Err(e)) = log_writer.map(|w| w.spawn()) {
            log::error!("{e}");
        }
    });
    server.add_service(background_service(
        "lifecycle",
        Lifecycle::new(drain.clone(), server.watch_execution_phase(), on_start),
    ));
    let mut api = api_service(
        &server,
        &config,
        GatewayProxy::new(gw, web, access_log, drain),
    );
    for addr in &config.listen {
        // No L4 read buffer on plain listeners: the connection guard reads each request into
        // its own buffer, so Pingora's 64 KB one per connection only added a copy of every
        // byte (a 13 KB upload: 78k -> 64k instructions per request) and its memory to every
        // kept-alive connection. TLS listeners keep it, for the TLS layer's small reads.
        api.add_listener(
            ListenerConfig::tcp(addr.as_str()).l4_buffer(L4BufferSettings {
                read: Some(0),
                write: None,
            }),
        );
    }
    for l in &config.tls_listen {
        api.add_tls_with_settings(&l.addr, None, crate::tls::listener_settings(l)?);
    }
    server.add_service(api);
    server.bootstrap();
    server.run_forever();
}

/// The API service: the gateway's application over Pingora's HTTP proxy, each client
/// connection under the guard of `gms.connections` (see `app.rs`).
fn api_service(server: &Server, config: &Config, proxy: GatewayProxy) -> Service<GatewayApp> {
    let c = &config.connections;
    let api = proxy.clone();
    let mut app = HttpProxy::new(proxy, server.configuration.clone());
    app.handle_init_modules();
    let mut options = HttpServerOptions::default();
    // Pingora answers CONNECT itself with an empty 405; let it reach request_filter, which
    // refuses it with the API's JSON 405 (and never opens a tunnel).
    options.allow_connect_method_proxying = true;
    // Pingora counts reuses after the first request.
    let reuses = match c.max_requests {
        0 => None,
        n => Some(u32::try_from(n - 1).unwrap_or(u32::MAX)),
    };
    options.keepalive_request_limit = reuses;
    app.server_options = Some(options);
    let limits = ConnLimits {
        header_timeout: Duration::from_millis(c.header_timeout_ms),
        idle_timeout: Duration::from_millis(c.idle_timeout_ms),
        max_header_bytes: usize::try_from(c.max_header_bytes).unwrap_or(usize::MAX),
    };
    Service::new(
        "gms API".to_string(),
        GatewayApp::new(app, api, limits, reuses),
    )
}

/// The web tier's load balancer: every address each upstream resolves to, TLS upstreams
/// carrying their [`BackendTls`] for `upstream_peer`.
fn backend_balancer(b: &BackendConfig) -> Result<LoadBalancer<RoundRobin>, String> {
    let mut set = BTreeSet::new();
    for (i, u) in b.upstreams.iter().enumerate() {
        let addrs = u
            .addr
            .to_socket_addrs()
            .map_err(|e| format!("gms.backend.upstreams[{i}]: '{}': {e}", u.addr))?;
        for addr in addrs {
            let mut backend = Backend {
                addr: pingora::protocols::l4::socket::SocketAddr::Inet(addr),
                weight: 1,
                ext: Default::default(),
            };
            if let Some(sni) = &u.tls {
                backend.ext.insert(BackendTls { sni: sni.clone() });
            }
            set.insert(backend);
        }
    }
    let lb = LoadBalancer::from_backends(Backends::new(Static::new(set)));
    // A static list: the first update completes at once, so requests find backends before
    // the health check's first round.
    lb.update()
        .now_or_never()
        .ok_or("backend list update did not complete")?
        .map_err(|e| format!("gms.backend.upstreams: {e}"))?;
    Ok(lb)
}

/// Pingora settings the gateway cannot honour. `daemon_wait_for_ready` makes the launching
/// process wait for a signal that is sent from inside `bootstrap()`; the gateway bootstraps
/// before daemonizing (see [`run`]), so the launcher would wait its whole timeout.
pub fn check_server_conf(conf: &ServerConf) -> Result<(), String> {
    if conf.daemon_wait_for_ready {
        return Err(
            "daemon_wait_for_ready: not supported by gms-gateway (the launching process \
                    exits once the new process holds the listening sockets)"
                .into(),
        );
    }
    Ok(())
}
