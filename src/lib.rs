//! gms-gateway: the Genesys Mobile Services (GMS) Service API and Storage API at the edge,
//! on Cloudflare's Pingora.
//!
//! Layout:
//! - [`config`]: the YAML file (`gms:` section) parsed into a validated [`config::Config`].
//! - [`routes`]: method + path -> [`routes::Route`]; everything not under an API root passes
//!   through to the web tier.
//! - [`form`], [`multipart`] and [`params`]: request bodies (multipart, urlencoded, JSON) read
//!   under limits into [`params::Params`]; underscore parameters vs user data.
//! - [`gateway`]: the shared state ([`gateway::Gateway`]) and the one `match` that dispatches a
//!   route to its handler in [`api`] or [`builtin`].
//! - [`callback`]: the pure date and time logic of the Callback Services API: callback times,
//!   office hours, capacity, buckets and availability slots.
//! - [`ors`]: ORS-based services: the ORS client, node selection, the status cache.
//! - [`store`]: the [`store::Store`] trait that holds every piece of state, and its
//!   implementations (embedded memory store).
//! - [`reply`] and [`error`]: what handlers return; the one error enum and its mapping to HTTP.
//! - [`access_log`]: one line per request, written off the request path.
//! - [`metrics`]: Prometheus counters, histograms and gauges, served on `gms.metrics_listen`.
//! - [`tls`]: HTTPS listener certificates and the upstream CA file, checked at start-up.
//! - [`proxy`]: the only module that knows Pingora's `Session`; [`server`] assembles the process.
//! - [`lifecycle`]: work that starts once the process serves, and the drain before it stops.

#![warn(missing_docs)]

pub mod access;
pub mod access_log;
pub mod api;
pub mod app;
pub mod builtin;
pub mod callback;
pub mod chunked;
pub mod config;
pub mod conn_guard;
pub mod error;
pub mod form;
pub mod gateway;
pub mod h1;
pub mod ids;
pub mod lifecycle;
pub mod metrics;
pub mod multipart;
pub mod ors;
pub mod params;
pub mod proxy;
pub mod reply;
pub mod routes;
pub mod server;
pub mod store;
pub mod tls;
pub mod upstream;
pub mod value;
pub mod web_tier;
