//! The office-hours and capacity built-ins' own API (contract `gms-callback.md` §10):
//! `GET {root}/service/{name}` of an office-hours service (its open periods) or of a capacity
//! service (its hourly counts). Any other name is a 404.

use super::{errors, now};
use crate::callback::{CapacityRequest, OfficeHoursRequest};
use crate::config::ServiceKind;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;

/// `GET {root}/service/{name}`.
pub fn get(gw: &Gateway, name: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let params = &req.params;
    match gw.config.services.get(name).map(|s| &s.kind) {
        Some(ServiceKind::OfficeHours(hours)) => {
            let request =
                OfficeHoursRequest::parse(|k| params.text(k)).map_err(errors::bad_param)?;
            let (start, end) = request
                .range(now(), hours.timezone())
                .map_err(errors::bad_param)?;
            Ok(Reply::json(&hours.reply(start, end)))
        }
        Some(ServiceKind::Capacity(capacity)) => {
            let request = CapacityRequest::parse(|k| params.text(k)).map_err(errors::bad_param)?;
            let (start, end, tz) = request
                .range(capacity.timezone())
                .map_err(errors::bad_param)?;
            Ok(Reply::json(&capacity.reply(start, end, &tz)))
        }
        // A GET reads office hours or capacity; any other name has none.
        _ => Err(ApiError::NotFound(format!(
            "no office-hours or capacity service is named '{name}'"
        ))),
    }
}
