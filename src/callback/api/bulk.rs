//! The admin's bulk cancel (contract `gms-callback.md` §9): `POST {root}/admin/callback/cancel`
//! with `{"reason":"CANCELLED_BY_ADMIN","ids":["…"]}`. Each id is cancelled as a client's
//! DELETE cancels it (§4, [`cancel_record`]), whatever its service; the reply lists what was
//! cancelled and why the others were not: `{"cancelled":[…],"failed":{"<id>":"<message>"}}`.

use futures::{FutureExt, StreamExt};
use serde::Deserialize;

use super::admin::{authorize, json_body, MAX_RECORDS};
use super::cancel::cancel_record;
use super::{all_services, errors, Service};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::parse_id;
use crate::reply::Reply;

/// `reason` when the body gives none (GMS, research §1.8).
pub const DEFAULT_REASON: &str = "CANCELLED_BY_ADMIN";

/// The body of a bulk cancel.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: Option<String>,
    ids: Vec<String>,
}

/// `POST {root}/admin/callback/cancel`.
pub async fn cancel(gw: &Gateway, req: ApiRequest) -> Result<Reply, ApiError> {
    authorize(gw, &req, false)?;
    let body: CancelBody = json_body(&req, r#"{"reason":"…","ids":["…"]}"#)?;
    let reason = match body.reason.as_deref().map(str::trim) {
        None => DEFAULT_REASON.to_string(),
        Some("") => return Err(errors::invalid_parameter("reason must not be empty")),
        Some(r) => r.to_string(),
    };
    let mut ids: Vec<String> = Vec::with_capacity(body.ids.len());
    for id in body.ids {
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() > MAX_RECORDS {
            return Err(errors::invalid_parameter(format!(
                "at most {MAX_RECORDS} ids per request"
            )));
        }
    }
    // As many at once as the scheduler submits: a cancel may wait on ORS.
    let results: Vec<(String, Result<(), ApiError>)> = futures::stream::iter(ids)
        .map(|id| cancel_one(gw, id, &reason).boxed())
        .buffered(gw.config.callback.submit_concurrency)
        .collect()
        .await;
    let mut cancelled = Vec::new();
    let mut failed = serde_json::Map::new();
    for (id, result) in results {
        match result {
            Ok(()) => cancelled.push(id),
            Err(e) => {
                if let Some(detail) = e.detail() {
                    log::warn!("admin cancel of callback {id}: {detail}");
                }
                failed.insert(id, e.message().into());
            }
        }
    }
    Ok(Reply::json(
        &serde_json::json!({ "cancelled": cancelled, "failed": failed }),
    ))
}

/// Cancels one callback of any callback service with `reason`; the id and what happened.
async fn cancel_one(gw: &Gateway, id: String, reason: &str) -> (String, Result<(), ApiError>) {
    let result = cancel_id(gw, &id, reason).await;
    (id, result)
}

async fn cancel_id(gw: &Gateway, id: &str, reason: &str) -> Result<(), ApiError> {
    let uuid = parse_id(id).ok_or_else(|| errors::no_callback(id))?;
    let services = all_services(gw);
    let record = gw
        .store
        .callbacks()
        .find(&services, uuid)
        .await?
        .ok_or_else(|| errors::no_callback(id))?;
    let svc = Service::named(gw, &record.service)?;
    cancel_record(gw, &svc, record, reason, false).await?;
    Ok(())
}
