//! Handlers of the client-facing API, one file per area.

pub mod admin;
pub mod service;
pub mod service_storage;
pub mod storage;
pub mod test_page;

use std::time::Duration;

use crate::config::Limits;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::store::ServiceRecord;

/// The 404 for an id that is unknown, expired or not the requester's: the same words for all
/// three, so the reply never hints that an id exists.
pub fn no_such(what: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("{what} '{id}' not found"))
}

/// Where the API's absolute URLs start: `{external_url_base}{first root}`, the base being the
/// request's own scheme and host unless `gms.external_url_base` is set (contract 7).
pub fn api_base(gw: &Gateway, req: &ApiRequest) -> String {
    let root = gw.config.prefixes.first().map(String::as_str).unwrap_or("");
    let scheme = if req.tls { "https" } else { "http" };
    match (&gw.config.external_url_base, &req.host) {
        (Some(base), _) => format!("{base}{root}"),
        (None, Some(host)) => format!("{scheme}://{host}{root}"),
        // Never from `answer.rs`, which falls back to the address the request came in on.
        (None, None) => format!("{scheme}://localhost{root}"),
    }
}

/// Whether a service record is visible to a requester (contract 4.1).
pub fn visible(record: &ServiceRecord, gms_user: Option<&str>) -> bool {
    crate::store::may_access(record.owner.as_deref(), gms_user)
}

/// The TTL user data gets: data stored without a `gms_user` lives at most
/// `gms.limits.max_anonymous_ttl` (issue 15: anonymous uploads must not hold memory for a day).
pub fn data_ttl(limits: &Limits, owner: Option<&str>, ttl: Duration) -> Duration {
    match owner {
        Some(_) => ttl,
        None => ttl.min(Duration::from_secs(limits.max_anonymous_ttl)),
    }
}
