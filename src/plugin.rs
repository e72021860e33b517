//! [`GmsApi`]: the GMS Service API, Storage API and admin API as a Pingora plugin, for any
//! Pingora server's `ProxyHttp` (River's request-filter modules, Pingora's
//! `examples/gateway.rs`). Its hook answers every request under an API root on the session it
//! came on and returns `Ok(true)`; for every other request it returns `Ok(false)` and the
//! embedder's proxy goes on (to its upstream, its cache, whatever it does).
//!
//! The background work the API needs comes as Pingora services for the embedder's `Server`
//! ([`GmsApi::background_services`]). What a plugin cannot do in someone else's server stays
//! the `gms-gateway` binary's: the limits on client connections (`gms.connections`), draining,
//! the access log and the metrics listener.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::prelude::{background_service, Session};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::services::ServiceWithDependents;

use crate::config::ApiConfig;
use crate::forwarded;
use crate::gateway::Gateway;
use crate::reply::Trace;
use crate::request_id::RequestId;
use crate::routes::{self, Route};
use crate::start_error::StartError;
use crate::store::{self, Store};

/// The GMS APIs as a plugin; cheap to clone (clones share everything).
#[derive(Clone)]
pub struct GmsApi {
    gw: Arc<Gateway>,
}

/// What the plugin made of one request, for the embedder's logs and metrics.
#[derive(Debug)]
pub struct ApiExchange {
    /// The request's id, sent back as `X-Request-Id` and named in error logs.
    pub request_id: RequestId,
    /// The API operation (`service_create`, `storage_get_key`, ...); `pass_through` when the
    /// plugin left the request to the embedder.
    pub route: &'static str,
    /// The service the request was about and the ORS node that served it, if any.
    pub trace: Option<Box<Trace>>,
}

impl ApiExchange {
    /// A request not yet seen by the plugin, with a fresh id.
    pub fn new(request_id: RequestId) -> Self {
        ApiExchange {
            request_id,
            route: Route::PassThrough.name(),
            trace: None,
        }
    }
}

impl GmsApi {
    /// The plugin over `store` (e.g. one [`crate::build_store`] made, shared by several
    /// plugins), ONLINE; fails when an ORS node of a service cannot be resolved.
    pub fn new(config: ApiConfig, store: Arc<dyn Store>) -> Result<GmsApi, StartError> {
        let gw = Gateway::new(Arc::new(config), store)?;
        Ok(GmsApi { gw: Arc::new(gw) })
    }

    /// The plugin over the store that `config.storage` names (memory, Redis, Redis Cluster).
    pub fn build(config: ApiConfig) -> Result<GmsApi, StartError> {
        let store = store::build(&config)?;
        GmsApi::new(config, store)
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ApiConfig {
        &self.gw.config
    }

    /// The services the API needs running beside it, for `Server::add_services`: ORS node
    /// health checks, the store's upkeep (the memory store's sweeper), with callback services
    /// the callback scheduler (submits scheduled callbacks, `gms-callback.md` §7.1) and, with
    /// [`ApiConfig::metrics`], the store usage gauges. They start once the server runs (after
    /// a daemon's fork, which would leave a thread started earlier behind).
    pub fn background_services(&self) -> Vec<Box<dyn ServiceWithDependents>> {
        let gw = &self.gw;
        let mut services: Vec<Box<dyn ServiceWithDependents>> = vec![
            Box::new(background_service(
                "ORS node health checks",
                OrsChecks(gw.clone()),
            )),
            Box::new(background_service("store upkeep", StoreUpkeep(gw.clone()))),
        ];
        if gw.config.metrics {
            services.push(Box::new(background_service(
                "store usage gauges",
                UsageGauges(gw.clone()),
            )));
        }
        if !gw.config.callback.services.is_empty() {
            services.push(Box::new(background_service(
                "callback scheduler",
                CallbackScheduler(gw.clone()),
            )));
        }
        services
    }

    /// The hook for an embedder's `ProxyHttp::request_filter`: answers every request under an
    /// API root (`Ok(true)`: stop here) and leaves every other one to the caller (`Ok(false)`).
    /// `Err` only when the reply could not be written (the client is gone).
    pub async fn request_filter(&self, session: &mut Session) -> pingora::Result<bool> {
        let mut exchange = ApiExchange::new(RequestId::new());
        self.handle(session, &mut exchange).await
    }

    /// [`Self::request_filter`] with the request's id given and what became of it noted in
    /// `exchange` (the binary logs it; an embedder may too).
    pub async fn handle(
        &self,
        session: &mut Session,
        exchange: &mut ApiExchange,
    ) -> pingora::Result<bool> {
        let route = {
            let h = session.req_header();
            routes::route(&h.method, h.uri.path(), &self.gw.config.prefixes)
        };
        if self.passes_through(&route) {
            return Ok(false);
        }
        exchange.route = route.name();
        let mut reply = crate::answer::answer(&self.gw, session, route, &exchange.request_id).await;
        exchange.trace = reply.trace.take();
        crate::answer::write_reply(session, reply, &exchange.request_id).await?;
        Ok(true)
    }

    /// The client's address as the API sees it (rate limits): the peer, or what a trusted
    /// proxy (`gms.trusted_proxies`) says the client was.
    pub fn client_ip(&self, session: &Session) -> Option<IpAddr> {
        forwarded::client_ip(session.as_downstream(), &self.gw.config.trusted_proxies)
    }

    fn passes_through(&self, route: &Route) -> bool {
        match route {
            Route::PassThrough => true,
            Route::CreateService { service } => {
                self.gw.config.fallback_to_backend && !self.gw.config.services.contains_key(service)
            }
            // A callback service configured on the web tier only (GMS behind the gateway).
            route => route.callback_service().is_some_and(|service| {
                self.gw.config.fallback_to_backend
                    && !self
                        .gw
                        .config
                        .callback
                        .services
                        .iter()
                        .any(|s| s == service)
            }),
        }
    }
}

/// Runs the ORS node health checks until the server stops.
struct OrsChecks(Arc<Gateway>);

#[async_trait]
impl BackgroundService for OrsChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = self.0.ors.run_background() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Starts the store's own upkeep (the memory store's sweeper thread) once the server runs.
struct StoreUpkeep(Arc<Gateway>);

#[async_trait]
impl BackgroundService for StoreUpkeep {
    async fn start(&self, _shutdown: ShutdownWatch) {
        self.0.store.start_upkeep();
    }
}

/// Keeps the store usage gauges (`gms_live_services`, `gms_reservations`) fresh until the
/// server stops; added only with metrics on.
struct UsageGauges(Arc<Gateway>);

#[async_trait]
impl BackgroundService for UsageGauges {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let gw = &self.0;
        tokio::select! {
            _ = crate::metrics::run_usage_gauges(gw.store.clone(), gw.config.clone()) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Submits scheduled callbacks when they come due, until the server stops (§7.1 of
/// `gms-callback.md`); added only with callback services configured.
struct CallbackScheduler(Arc<Gateway>);

#[async_trait]
impl BackgroundService for CallbackScheduler {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = crate::callback::api::scheduler::run(&self.0) => {}
            _ = shutdown.changed() => {}
        }
    }
}
