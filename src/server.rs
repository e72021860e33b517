//! Assembles the process: Pingora server, store, gateway, backend load balancer and its health
//! check, listeners.

use std::sync::Arc;
use std::time::Duration;

use pingora::apps::HttpServerOptions;
use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::{background_service, http_proxy_service, Opt};
use pingora::server::Server;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::ors::Ors;
use crate::proxy::GatewayProxy;
use crate::store;
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

/// Builds every service from a validated configuration and runs until told to stop.
pub fn run(opt: Opt, config: Config) -> Result<(), String> {
    let mut server = Server::new(Some(opt)).map_err(|e| format!("cannot start Pingora: {e}"))?;
    server.bootstrap();
    let config = Arc::new(config);
    let store = store::build(&config)?;
    let gw = Arc::new(Gateway::new(config.clone(), store)?);
    server.add_service(background_service(
        "ORS node health checks",
        OrsChecks(gw.ors.clone()),
    ));

    let backends = match &config.backend {
        Some(b) => {
            let mut lb =
                LoadBalancer::<RoundRobin>::try_from_iter(b.upstreams.iter().map(String::as_str))
                    .map_err(|e| format!("gms.backend.upstreams: {e}"))?;
            lb.set_health_check(TcpHealthCheck::new());
            lb.health_check_frequency = Some(Duration::from_millis(b.health_check_interval_ms));
            let bg = background_service("backend health check", lb);
            let task = bg.task();
            server.add_service(bg);
            Some(task)
        }
        None => None,
    };

    if let Some(addr) = &config.metrics_listen {
        let mut metrics = pingora_prometheus::prometheus_http_service();
        metrics.add_tcp(addr);
        server.add_service(metrics);
    }
    let access_log = match &config.access_log {
        Some(dest) => Some(AccessLog::open(dest)?),
        None => None,
    };
    let mut api = http_proxy_service(
        &server.configuration,
        GatewayProxy::new(gw, backends, access_log),
    );
    // Pingora answers CONNECT itself with an empty 405; let it reach request_filter, which
    // refuses it with the API's JSON 405 (and never opens a tunnel).
    let mut options = HttpServerOptions::default();
    options.allow_connect_method_proxying = true;
    if let Some(proxy) = api.app_logic_mut() {
        proxy.server_options = Some(options);
    }
    for addr in &config.listen {
        api.add_tcp(addr);
    }
    server.add_service(api);
    server.run_forever();
}
