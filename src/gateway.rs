//! The API's shared state: configuration, store, ORS client and node state, the ONLINE flag
//! and the per-client limits, and [`ApiRequest`], what a handler gets of a request. No
//! handler is imported here: the route match that calls them is `dispatch.rs`, one level up.
//! No Pingora either, so tests can build a [`Gateway`] without a socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::access::ClientLimits;
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::ors::Ors;
use crate::params::Params;
use crate::start_error::StartError;
use crate::store::{DataRecord, PutMode, ServiceRecord, Store};
use crate::value::Fields;

/// Everything a handler may use: configuration, store, node state.
pub struct Gateway {
    /// The validated configuration.
    pub config: Arc<ApiConfig>,
    /// Where all state lives.
    pub store: Arc<dyn Store>,
    /// The ORS client, nodes, status cache and background starts.
    pub ors: Arc<Ors>,
    /// ONLINE (true) or OFFLINE (false), as set through the admin API.
    online: AtomicBool,
    /// The per-client-IP limits of `gms.limits`.
    pub client_limits: ClientLimits,
    /// This node's id, unique per process: what its claims on callbacks carry
    /// (`gms-callback.md` §7.1).
    pub node_id: String,
}

/// One API request, parsed: its parameters and the headers handlers read.
#[derive(Debug, Default)]
pub struct ApiRequest {
    /// Body and query parameters (empty for routes that read none).
    pub params: Params,
    /// The `gms_user` header.
    pub gms_user: Option<String>,
    /// The `Authorization` header (admin API).
    pub authorization: Option<String>,
    /// The request's host (HTTP/2 `:authority` or Host): binary URLs start with
    /// `{scheme}://{host}` unless `external_url_base` is set.
    pub host: Option<String>,
    /// Whether the request came over TLS: the scheme of binary URLs is then `https`.
    pub tls: bool,
    /// The raw body, for routes that take one as it is (status push).
    pub body: bytes::Bytes,
    /// The client's address (the TCP peer, or what a trusted proxy says:
    /// `gms.trusted_proxies`): what the per-IP limits count and `gms.internal_networks` admits.
    pub client_ip: Option<std::net::IpAddr>,
    /// The API key header named by `gms.api_auth.header`, when client auth is on.
    pub api_key: Option<String>,
    /// The API key header named by `gms.internal_auth.header`, when internal credentials are
    /// configured (match-interaction).
    pub internal_key: Option<String>,
}

impl Gateway {
    /// A gateway over a store, ONLINE; fails when an ORS node cannot be resolved.
    pub fn new(config: Arc<ApiConfig>, store: Arc<dyn Store>) -> Result<Self, StartError> {
        let ors = Arc::new(Ors::new(&config, store.clone())?);
        Ok(Gateway {
            store,
            ors,
            online: AtomicBool::new(true),
            client_limits: ClientLimits::new(&config.limits),
            node_id: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            config,
        })
    }

    /// Whether the node is ONLINE.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// Sets ONLINE (true) or OFFLINE (false).
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Relaxed);
    }

    /// Merges fields into a service's user data, starting it afresh if it has expired (the
    /// Service API's `update` and an ORS request's user data both do this).
    pub async fn merge_user_data(
        &self,
        record: &ServiceRecord,
        fields: Fields,
    ) -> Result<(), ApiError> {
        let data_id = record.data_id.hyphenated().to_string();
        let merged = self
            .store
            .merge_data(
                &data_id,
                record.owner.as_deref(),
                fields.clone(),
                record.data_ttl,
            )
            .await?;
        if !merged {
            // The data (short TTL) expired while the service (long TTL) lives on: start it
            // afresh.
            let data = DataRecord {
                owner: record.owner.clone(),
                fields,
            };
            self.store
                .put_data(&data_id, data, record.data_ttl, PutMode::New)
                .await?;
        }
        Ok(())
    }
}
