//! Cancel (contract `gms-callback.md` §4):
//! `DELETE {root}/service/callback/{name}/{id}[?discard_ors_failure=true]`.
//!
//! A callback not yet submitted is marked `COMPLETED`/`CANCELLED`; one in ORS's hands is
//! cancelled on ORS first (`cancel`, else `terminate` when ORS no longer knows the session),
//! and marked only once ORS answered, unless `discard_ors_failure=true`. The record stays
//! until its expiration time.

use log::info;

use super::{errors, find, record_reply, submit, text, Service};
use crate::callback::change::{Change, Update};
use crate::callback::record::{CallbackRecord, CANCELLED};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::store::callback::{Rejection, Updated};

/// `DELETE {root}/service/callback/{name}/{id}`.
pub async fn cancel(
    gw: &Gateway,
    name: &str,
    id: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let svc = Service::named(gw, name)?;
    let record = find(gw, &svc, id, &req).await?;
    let discard = match text(&req.params, "discard_ors_failure") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return Err(errors::invalid_parameter(format!(
                "discard_ors_failure must be true or false, not '{v}'"
            )))
        }
    };
    let record = cancel_record(gw, &svc, record, CANCELLED, discard).await?;
    Ok(record_reply(gw, &req, &record))
}

/// Cancels `record` with `reason` (§4; the admin's bulk cancel does the same, §9): ORS is told
/// first when the callback is in its hands. Returns the record as it is now.
pub async fn cancel_record(
    gw: &Gateway,
    svc: &Service,
    record: CallbackRecord,
    reason: &str,
    discard_ors_failure: bool,
) -> Result<CallbackRecord, ApiError> {
    let id = record.id.hyphenated().to_string();
    if record.state.is_final() {
        return Err(errors::completed(&id));
    }
    if let Some(ors) = record.ors.as_ref().filter(|_| record.state.is_active()) {
        if let Err(e) = submit::cancel_session(gw, svc, &record, ors).await {
            if !discard_ors_failure {
                return Err(e);
            }
            info!("callback {id}: ORS did not take its cancel ({e}); marked cancelled anyway");
        }
    }
    let update = Update {
        change: Some(Change::Cancel {
            reason: reason.to_string(),
        }),
        ..Update::default()
    };
    match gw
        .store
        .callbacks()
        .update(svc.name(), record.id, &update)
        .await?
    {
        Updated::Done(r) => {
            crate::metrics::callback_state(svc.name(), r.state);
            Ok(r)
        }
        Updated::NotFound => Err(errors::no_callback(&id)),
        Updated::Refused(Rejection::InvalidState, now) if now.state.is_final() => {
            Err(errors::completed(&id))
        }
        Updated::Refused(why, now) => Err(errors::invalid_state(format!(
            "Callback {id} cannot be cancelled in state {} ({why:?})",
            now.state.name()
        ))),
    }
}
