//! The gateway's shared state and the one place that maps a [`Route`] to its handler.
//! Handlers are plain async functions over these types: no Pingora here, so tests can call
//! [`Gateway::handle`] without a socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::access::{check_api_auth, ClientLimits};
use crate::api;
use crate::config::{BuiltinKind, Config, InternalAuth, ServiceKind};
use crate::error::ApiError;
use crate::ors::Ors;
use crate::params::Params;
use crate::reply::Reply;
use crate::routes::Route;
use crate::store::{Store, StoreError};

/// Everything a handler may use: configuration, store, node state.
pub struct Gateway {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Where all state lives.
    pub store: Arc<dyn Store>,
    /// The ORS client, nodes, status cache and background starts.
    pub ors: Arc<Ors>,
    /// ONLINE (true) or OFFLINE (false), as set through the admin API.
    online: AtomicBool,
    /// The per-client-IP limits of `gms.limits`.
    pub client_limits: ClientLimits,
}

/// One API request, parsed: the route, its parameters and the headers handlers read.
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
    /// The client's address: what the per-IP limits count and `gms.internal_networks` admits.
    pub client_ip: Option<std::net::IpAddr>,
    /// The API key header named by `gms.api_auth.header`, when client auth is on.
    pub api_key: Option<String>,
    /// The API key header named by `gms.internal_auth.header`, when internal credentials are
    /// configured (match-interaction).
    pub internal_key: Option<String>,
}

impl Gateway {
    /// A gateway over a store, ONLINE; fails when an ORS node cannot be resolved.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Result<Self, String> {
        let ors = Arc::new(Ors::new(&config, store.clone())?);
        Ok(Gateway {
            store,
            ors,
            online: AtomicBool::new(true),
            client_limits: ClientLimits::new(&config.limits),
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

    /// Answers an API route. Pass-through routes never reach here.
    pub async fn handle(&self, route: Route, req: ApiRequest) -> Result<Reply, ApiError> {
        self.admit(&route, &req)?;
        match route {
            Route::CreateService { service } => api::service::create(self, &service, req).await,
            Route::ServiceRequest { id, request } => {
                api::service::request(self, &id, &request, req).await
            }
            Route::DeleteService { id } => api::service::delete(self, &id, req).await,
            Route::StorageCreate { ttl } => api::storage::create(self, &ttl, req).await,
            Route::StorageUpdate { id, ttl } => api::storage::update(self, &id, &ttl, req).await,
            Route::StorageCustom { id, ttl } => api::storage::custom(self, &id, &ttl, req).await,
            Route::StorageGetAll { id } => api::storage::get_all(self, &id, req).await,
            Route::StorageGetKey { id, key } | Route::StorageBinary { id, key } => {
                api::storage::get_key(self, &id, &key, req).await
            }
            Route::StorageDelete { id } => api::storage::delete(self, &id, req).await,
            Route::NodeStatus => api::admin::node_status(self, &req),
            Route::NodeChangeStatus { status } => api::admin::change_status(self, &status, &req),
            Route::NodeHealth => api::admin::health(self).await,
            Route::StatusPush { id } => api::admin::status_push(self, &id, req).await,
            Route::TestPage(file) if self.config.test_page => {
                api::test_page::serve(&self.config, file)
            }
            Route::NotFound | Route::PassThrough | Route::TestPage(_) => {
                Err(ApiError::NotFound("no such API path".into()))
            }
            Route::MethodNotAllowed { allow } => Err(ApiError::MethodNotAllowed(allow)),
            Route::BadPath(m) => Err(ApiError::BadRequest(m)),
        }
    }
}

impl Gateway {
    /// Client credentials on the service and storage APIs (when `gms.api_auth` is set), then
    /// the per-IP limits on writes and upload bytes. The admin API has its own credentials;
    /// health has none; match-interaction has the internal ones (`builtin::matching`).
    fn admit(&self, route: &Route, req: &ApiRequest) -> Result<(), ApiError> {
        let client_api = matches!(
            route,
            Route::CreateService { .. }
                | Route::ServiceRequest { .. }
                | Route::DeleteService { .. }
                | Route::StorageCreate { .. }
                | Route::StorageUpdate { .. }
                | Route::StorageCustom { .. }
                | Route::StorageGetAll { .. }
                | Route::StorageGetKey { .. }
                | Route::StorageBinary { .. }
                | Route::StorageDelete { .. }
        );
        let internal =
            matches!(route, Route::CreateService { service } if self.is_internal(service));
        if let (true, false, Some(auth)) = (client_api, internal, &self.config.api_auth) {
            check_api_auth(auth, req.api_key.as_deref(), req.authorization.as_deref())?;
        }
        let Some(ip) = &req.client_ip else {
            return Ok(());
        };
        match route {
            _ if internal => Ok(()),
            Route::CreateService { .. }
            | Route::StorageCreate { .. }
            | Route::StorageUpdate { .. }
            | Route::StorageCustom { .. } => self.client_limits.admit_write(ip, req.params.bytes()),
            Route::ServiceRequest { .. } => self.client_limits.admit_upload(ip, req.params.bytes()),
            _ => Ok(()),
        }
    }

    /// Whether a create names an internal operation guarded by the internal credentials
    /// rather than the client's (match-interaction, unless `internal_auth: none` opened it).
    fn is_internal(&self, service: &str) -> bool {
        self.config.internal.auth != InternalAuth::Open
            && self
                .config
                .services
                .get(service)
                .is_some_and(|s| s.kind == ServiceKind::Builtin(BuiltinKind::MatchInteraction))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::StoreFailed(m),
            StoreError::Exhausted(m) => ApiError::Unavailable(m),
            StoreError::Full(m) => ApiError::InsufficientStorage(m),
            StoreError::PhoneLimit(m) => ApiError::TooManyReservations(m),
        }
    }
}
