//! The Callback Services API (contract `gms-callback.md` §3–§8, §10), built on the pure logic
//! of [`crate::callback`], the store's callback records ([`crate::store::callback`]) and the
//! ORS client ([`crate::ors`]). Handlers are plain async functions over [`Gateway`] and
//! [`ApiRequest`], one file per operation:
//!
//! - `create.rs` (§3), `cancel.rs` (§4), `update.rs` (§5 and ORS's state reports, §7.2),
//!   `query.rs` (§6.1), `availability.rs` (§6.2), `request.rs` (requests on a callback id,
//!   §8), `hours.rs` (the office-hours and capacity GETs, §10).
//! - `submit.rs`: a callback's ORS session (§7.1), shared by immediate creates, the scheduler
//!   and cancels; `scheduler.rs`: the background pass that submits scheduled callbacks.
//! - `options.rs` (a callback's options and `$token$`s), `view.rs` (a record as clients read
//!   it), `errors.rs` (GMS's exception names).
//!
//! - The admin endpoints (§9): `admin.rs` (queues, watermarks, their credentials), `bulk.rs`
//!   (bulk cancel), `report.rs` (the cancelled report as CSV).

pub mod admin;
pub mod availability;
pub mod bulk;
pub mod cancel;
pub mod create;
pub mod errors;
pub mod hours;
pub mod options;
pub mod query;
pub mod report;
pub mod request;
pub mod scheduler;
pub mod submit;
pub mod update;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::callback::record::CallbackRecord;
use crate::config::{CallbackService, ServiceConfig, ServiceKind};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::parse_id;
use crate::params::Params;
use crate::reply::Reply;

/// A configured callback service and its parsed options.
pub struct Service {
    /// The service's section.
    pub config: Arc<ServiceConfig>,
    /// Its callback options.
    pub callback: Arc<CallbackService>,
}

impl Service {
    /// The callback service `name`, or the 404 of §3.2 step 1 (unknown, or not a callback
    /// service).
    pub fn named(gw: &Gateway, name: &str) -> Result<Service, ApiError> {
        let config = gw
            .config
            .services
            .get(name)
            .ok_or_else(|| errors::no_service(name))?;
        match &config.kind {
            ServiceKind::Callback(cb) => Ok(Service {
                config: config.clone(),
                callback: cb.clone(),
            }),
            _ => Err(errors::no_service(name)),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// The names of every configured callback service, sorted.
pub fn all_services(gw: &Gateway) -> Vec<&str> {
    gw.config
        .callback
        .services
        .iter()
        .map(String::as_str)
        .collect()
}

/// Now, by this node's clock (the store judges leases and expiry by its own).
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// A [`Duration`] as a [`SignedDuration`] (saturating: configured values are far below).
pub fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Whether `req` may see `record`: the admin credentials see every callback; otherwise as for
/// every service (`gms-api.md` §4.1, §13 Q14): an owned callback only by its `gms_user`.
pub fn visible(gw: &Gateway, req: &ApiRequest, record: &CallbackRecord) -> bool {
    crate::store::may_access(record.owner.as_deref(), req.gms_user.as_deref())
        || crate::api::admin::is_admin(gw, req)
}

/// A live callback of `svc` that `req` may see, or the 404 that hides it.
pub async fn find(
    gw: &Gateway,
    svc: &Service,
    id: &str,
    req: &ApiRequest,
) -> Result<CallbackRecord, ApiError> {
    let uuid = parse_id(id).ok_or_else(|| errors::no_callback(id))?;
    gw.store
        .callbacks()
        .get(svc.name(), uuid)
        .await?
        .filter(|r| visible(gw, req, r))
        .ok_or_else(|| errors::no_callback(id))
}

/// A record's §6.1 object as a 200 reply (cancel and update answer this).
pub fn record_reply(gw: &Gateway, req: &ApiRequest, record: &CallbackRecord) -> Reply {
    view::record_object(gw, req, record).reply().traced(
        &record.service,
        record.id,
        record.ors.as_ref().map(|o| o.node.as_str()),
    )
}

/// The first text value of `name`, unless empty.
pub fn text<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.text(name).filter(|v| !v.is_empty())
}
