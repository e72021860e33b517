//! Assembles the `gms-gateway` process: Pingora's server, the plugin and its background
//! services, the web tier's load balancer and health check, the listeners, the metrics
//! listener, the access log, and the lifecycle (start work, drain).

use std::collections::BTreeSet;
use std::net::ToSocketAddrs;
use std::time::Duration;

use futures::FutureExt;
use pingora::apps::HttpServerOptions;
use pingora::lb::discovery::Static;
use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::prelude::{background_service, Opt};
use pingora::protocols::ALPN;
use pingora::proxy::HttpProxy;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;

use crate::access_log::AccessLog;
use crate::app::GatewayApp;
use crate::config::{BackendConfig, GatewayConfig, TlsListener};
use crate::head_limits::HeadLimits;
use crate::lifecycle::{Drain, Lifecycle};
use crate::plugin::GmsApi;
use crate::proxy::{BackendTls, GatewayProxy, WebTier};
use crate::start_error::StartError;

/// Builds every service from a validated configuration and runs until told to stop.
///
/// With `-u` the listening sockets come from the running process (`server.bootstrap()`), and
/// that is the last step before running: everything that can fail is done before the upgrade
/// socket appears, so a new process that cannot start never makes the old one hand over.
pub fn run(opt: Opt, config: GatewayConfig) -> Result<(), StartError> {
    let mut server = Server::new(Some(opt)).map_err(StartError::Pingora)?;
    check_server_conf(&server.configuration)?;
    let gms = GmsApi::build(config.api.clone())?;
    server.add_services(gms.background_services());

    let web = match &config.edge.backend {
        Some(b) => {
            let mut lb = backend_balancer(b)?;
            // A TCP connect, also for TLS upstreams: a handshake per check would cost more and
            // prove little that the first proxied request does not.
            lb.set_health_check(TcpHealthCheck::new());
            lb.health_check_frequency = Some(Duration::from_millis(b.health_check_interval_ms));
            let bg = background_service("backend health check", lb);
            let lb = bg.task();
            server.add_service(bg);
            Some(WebTier {
                lb,
                retries: b.upstreams.len(),
                timeout: Duration::from_millis(b.timeout_ms),
            })
        }
        None => None,
    };

    if let Some(addr) = &config.edge.metrics_listen {
        let mut metrics = pingora_prometheus::prometheus_http_service();
        metrics.add_tcp(addr);
        server.add_service(metrics);
    }
    let (access_log, log_writer) = match &config.edge.access_log {
        Some(dest) => {
            let (log, writer) = AccessLog::open(dest)?;
            (Some(log), Some(writer))
        }
        None => (None, None),
    };
    let drain = Drain::default();
    let on_start = Box::new(move || {
        if let Some(Err(e)) = log_writer.map(|w| w.spawn()) {
            log::error!("gms.access_log: cannot start its thread: {e}");
        }
    });
    server.add_service(background_service(
        "lifecycle",
        Lifecycle::new(drain.clone(), server.watch_execution_phase(), on_start),
    ));
    let proxy = GatewayProxy::new(gms, &config, web, access_log, drain);
    let mut api = api_service(&server, &config, proxy);
    for addr in &config.edge.listen {
        // No L4 read buffer on plain listeners: Pingora reads each head into a buffer of its
        // own and each body chunk into another, so a 64 KB one under them only added a copy of
        // every byte and its memory to every kept-alive connection (RSS per idle connection
        // 110 -> 29 KB, bench/README.md). TLS listeners keep it, for the TLS layer's small
        // reads.
        api.add_listener(
            ListenerConfig::tcp(addr.as_str()).l4_buffer(L4BufferSettings {
                read: Some(0),
                write: None,
            }),
        );
    }
    for l in &config.edge.tls_listen {
        api.add_tls_with_settings(&l.addr, None, listener_settings(l)?);
    }
    server.add_service(api);
    server.bootstrap();
    server.run_forever();
}

/// The listening service: Pingora's HTTP proxy over the gateway, each HTTP/1 connection under
/// the head limits of `gms.connections` (see `app.rs`).
fn api_service(
    server: &Server,
    config: &GatewayConfig,
    proxy: GatewayProxy,
) -> Service<GatewayApp> {
    let c = &config.edge.connections;
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
    let limits = HeadLimits {
        header_timeout: Duration::from_millis(c.header_timeout_ms),
        idle_timeout: Duration::from_millis(c.idle_timeout_ms),
        max_header_bytes: usize::try_from(c.max_header_bytes).unwrap_or(usize::MAX),
    };
    Service::new("gms API".to_string(), GatewayApp::new(app, limits, reuses))
}

/// Pingora's settings for one HTTPS listener: its certificate, and ALPN offering HTTP/2 before
/// HTTP/1.1 unless `h2` is off.
fn listener_settings(l: &TlsListener) -> Result<TlsSettings, StartError> {
    let mut settings =
        TlsSettings::intermediate(&l.cert, &l.key).map_err(|error| StartError::TlsListener {
            addr: l.addr.clone(),
            error,
        })?;
    settings.set_alpn(if l.h2 { ALPN::H2H1 } else { ALPN::H1 });
    Ok(settings)
}

/// The web tier's load balancer: every address each upstream resolves to, TLS upstreams
/// carrying their [`BackendTls`] for `upstream_peer`.
fn backend_balancer(b: &BackendConfig) -> Result<LoadBalancer<RoundRobin>, StartError> {
    let mut set = BTreeSet::new();
    for (i, u) in b.upstreams.iter().enumerate() {
        let addrs = u
            .addr
            .to_socket_addrs()
            .map_err(|error| StartError::Backend {
                path: format!("gms.backend.upstreams[{i}]"),
                entry: u.addr.clone(),
                error,
            })?;
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
    match lb.update().now_or_never() {
        Some(Ok(())) => Ok(lb),
        Some(Err(e)) => Err(StartError::Pingora(e)),
        None => Err(StartError::Unsupported(
            "gms.backend.upstreams: the backend list did not load at once",
        )),
    }
}

/// Pingora settings the gateway cannot honour. `daemon_wait_for_ready` makes the launching
/// process wait for a signal that is sent from inside `bootstrap()`; the gateway bootstraps
/// before daemonizing (see [`run`]), so the launcher would wait its whole timeout.
pub fn check_server_conf(conf: &ServerConf) -> Result<(), StartError> {
    if conf.daemon_wait_for_ready {
        return Err(StartError::Unsupported(
            "daemon_wait_for_ready: not supported by gms-gateway (the launching process \
             exits once the new process holds the listening sockets)",
        ));
    }
    Ok(())
}
