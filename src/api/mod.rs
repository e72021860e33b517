//! Handlers of the client-facing API, one file per area.

pub mod admin;
pub mod service;
pub mod storage;
pub mod test_page;

use crate::error::ApiError;
use crate::store::ServiceRecord;

/// The 404 for an id that is unknown, expired or not the requester's: the same words for all
/// three, so the reply never hints that an id exists.
pub fn no_such(what: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("{what} '{id}' not found"))
}

/// Whether a service record is visible to a requester (contract 4.1).
pub fn visible(record: &ServiceRecord, gms_user: Option<&str>) -> bool {
    crate::store::may_access(record.owner.as_deref(), gms_user)
}
