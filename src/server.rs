//! Assembles the process: Pingora server, store, gateway, backend load balancer and its health
//! check, listeners, lifecycle (start work, drain).

use std::sync::Arc;
use std::time::Duration;

use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::{background_service, http_proxy_service, Opt};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::lifecycle::{Drain, Lifecycle};
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
    let mut api = http_proxy_service(
        &server.configuration,
        GatewayProxy::new(gw, backends, access_log, drain),
    );
    for addr in &config.listen {
        api.add_tcp(addr);
    }
    server.add_service(api);
    server.bootstrap();
    server.run_forever();
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
