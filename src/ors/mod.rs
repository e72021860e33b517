//! ORS-based services (contract section 6): the gateway drives SCXML sessions on
//! Orchestration Server nodes over HTTP.
//!
//! - [`client`]: HTTP to one node (Pingora's pooled connector, timeouts).
//! - [`nodes`]: the configured nodes, their health, `circular` / `linear` order.
//! - [`idle`]: the client's idle keep-alive connections.
//! - [`forward`]: which parameters go to ORS, in the body or as headers.
//! - [`session`]: start, request, terminate, with attempts across nodes and one 307.
//! - [`status`]: the status cache that absorbs mobile polling (single flight, stale on error).
//! - [`start`]: background starts for `_ors_start: async`, through a bounded queue.
//! - [`service`]: the Service API operations of ORS services, built from the above.

pub mod client;
pub mod forward;
pub mod idle;
pub mod nodes;
pub mod service;
pub mod session;
pub mod start;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use crate::config::ApiConfig;
use crate::start_error::StartError;
use crate::store::Store;

/// Everything the gateway needs to talk to ORS; one per process.
pub struct Ors {
    /// HTTP client with pooled connections.
    pub client: client::OrsClient,
    /// Configured nodes and per-service lists.
    pub nodes: nodes::Nodes,
    /// `gms.ors.max_ors_request_attempts`.
    pub attempts: u32,
    /// Where records and status entries live.
    pub store: Arc<dyn Store>,
    /// In-flight status fetches, one per service.
    pub status: status::StatusFlights,
    /// Background starts.
    pub starts: start::StartQueue,
    health_interval: Duration,
    connect_timeout: Duration,
}

impl Ors {
    /// Resolves the configured nodes and prepares the client.
    pub fn new(config: &ApiConfig, store: Arc<dyn Store>) -> Result<Ors, StartError> {
        Ok(Ors {
            client: client::OrsClient::new(&config.ors, config.ca_file.as_deref()),
            nodes: nodes::Nodes::from_config(config)?,
            attempts: config.ors.max_ors_request_attempts,
            store,
            status: status::StatusFlights::default(),
            starts: start::StartQueue::new(
                config.ors.start_queue_size,
                config.ors.start_concurrency,
            ),
            health_interval: Duration::from_millis(config.ors.health_check_interval_ms),
            connect_timeout: Duration::from_millis(config.ors.connect_timeout_ms),
        })
    }

    /// Work that runs for the life of the process: node health checks.
    pub async fn run_background(&self) {
        self.nodes
            .run_health_checks(self.health_interval, self.connect_timeout)
            .await;
    }
}
