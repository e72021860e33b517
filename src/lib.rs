//! gms-gateway: the Genesys Mobile Services (GMS) Service API, Storage API and admin API as a
//! plugin for Cloudflare's Pingora ([`GmsApi`]), and the `gms-gateway` binary that runs it in
//! front of an existing web tier.
//!
//! # Embedding
//! An embedder's `ProxyHttp` calls the hook first and goes on with what it leaves
//! (`examples/embed.rs` is a whole one):
//! ```no_run
//! # use pingora::prelude::*;
//! # use gms_gateway::{ApiConfig, GmsApi};
//! # struct MyProxy { gms: GmsApi }
//! # #[async_trait::async_trait]
//! # impl ProxyHttp for MyProxy {
//! #     type CTX = ();
//! #     fn new_ctx(&self) {}
//! #     async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<Box<HttpPeer>> {
//! #         Ok(Box::new(HttpPeer::new("127.0.0.1:8000", false, String::new())))
//! #     }
//! async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
//!     self.gms.request_filter(session).await // Ok(true): a GMS request, answered
//! }
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gms = GmsApi::build(ApiConfig::load("gms.yaml")?)?;
//! let mut server = Server::new(None)?;
//! server.bootstrap();
//! server.add_services(gms.background_services());
//! let mut proxy = http_proxy_service(&server.configuration, MyProxy { gms });
//! proxy.add_tcp("0.0.0.0:8080");
//! server.add_service(proxy);
//! server.run_forever();
//! # }
//! ```
//!
//! # Layout
//! - `plugin.rs`: [`GmsApi`], the hook and the background services; `answer.rs`: one API
//!   request from head to reply, the one place errors become replies.
//! - `routes.rs`: method + path -> route (`paths.rs`: a path's normal form and the readings of
//!   a lenient server); `dispatch.rs`: route -> handler; `gateway.rs`: the state handlers share.
//! - `api/`, `builtin/`, `ors/`: the handlers (Service, Storage, admin API; access numbers;
//!   ORS sessions and the status cache). [`store`]: the [`Store`] trait and its memory and
//!   Redis implementations (public: custom stores and the store-level tests use its types).
//! - `form/`, `params.rs`, `value.rs`: request bodies (multipart through `multer`,
//!   urlencoded, JSON) read under limits into [`Params`].
//! - [`callback`]: the pure date and time logic of the Callback Services API (callback times,
//!   office hours, capacity, buckets, availability slots, the record's state machine); public,
//!   for the code built on it. Its crate-private `api/` is the Callback Services API itself
//!   (handlers, submission to ORS, the scheduler).
//! - `access.rs`: who may call what (API and internal credentials, internal networks) and the
//!   per-address limits.
//! - `config/`: the YAML file in two layers, [`ApiConfig`] (the plugin's) and [`EdgeConfig`]
//!   (the binary's).
//! - The binary: `server.rs` assembles it, `proxy.rs` is its `ProxyHttp` (the plugin first,
//!   then the web tier), `app.rs` its connection loop, `head_limits.rs` the limits on request
//!   heads, `forwarded.rs` what the web tier is told, `access_log.rs`, `lifecycle.rs`,
//!   `logs.rs`.

#![warn(missing_docs)]

mod access;
mod access_log;
mod answer;
mod api;
mod app;
mod builtin;
pub mod callback;
mod clock;
mod config;
mod dispatch;
mod error;
mod form;
mod forwarded;
mod gateway;
mod head_limits;
mod ids;
mod lifecycle;
mod logs;
mod metrics;
mod ors;
mod params;
mod paths;
mod plugin;
mod proxy;
mod reply;
mod request_id;
mod routes;
mod server;
mod start_error;
pub mod store;
mod tls;
mod value;

pub use config::{
    ApiConfig, CallbackService, CallbackSettings, ConfigError, ConfigErrors, Connections,
    EdgeConfig, GatewayConfig, Limits, StorageKind,
};
pub use error::ApiError;
pub use form::{collect, parse_json, parse_urlencoded, read_params, BodyInfo};
pub use ors::client::NodeAddrError;
pub use params::Params;
pub use paths::normalize;
pub use plugin::{ApiExchange, GmsApi};
pub use reply::{Reply, Trace};
pub use request_id::RequestId;
pub use routes::{route, Route};
pub use start_error::StartError;
pub use store::memory::MemoryStore;
pub use store::{build as build_store, Store};
pub use value::{FileValue, Value};

/// The `gms-gateway` binary's parts, for its `main.rs`.
pub mod binary {
    pub use crate::logs::init as init_logging;
    pub use crate::server::{check_server_conf, run};
}
