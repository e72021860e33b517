//! Admin API (contract section 8): node status, health, status push. Basic auth with the
//! `gms.admin` credentials; with none configured the admin paths do not exist (404), except
//! health, which load balancers call without credentials.

use serde_json::json;

use super::no_such;
use crate::access::{basic_credentials, constant_time_eq};
use crate::clock::unix_ms;
use crate::config::ServiceKind;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::parse_id;
use crate::reply::Reply;
use crate::store::StatusEntry;

/// How long a pushed status stays fresh when the service has no `_status_push_ttl_ms`.
const DEFAULT_PUSH_TTL_MS: u64 = 30_000;

/// Whether the request carries the `gms.admin` credentials (false when none are configured).
pub fn is_admin(gw: &Gateway, req: &ApiRequest) -> bool {
    gw.config.admin.is_some() && authorize(gw, req).is_ok()
}

/// Checks the request's basic-auth credentials against `gms.admin`.
pub fn authorize(gw: &Gateway, req: &ApiRequest) -> Result<(), ApiError> {
    let Some(admin) = &gw.config.admin else {
        return Err(ApiError::NotFound("the admin API is not configured".into()));
    };
    let given = basic_credentials(req.authorization.as_deref());
    let expected = format!("{}:{}", admin.user, admin.password);
    if constant_time_eq(&given, expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "valid admin credentials are required",
        ))
    }
}

fn status_word(gw: &Gateway) -> &'static str {
    if gw.is_online() {
        "ONLINE"
    } else {
        "OFFLINE"
    }
}

/// `GET {root}/admin/node/status`: `ONLINE` or `OFFLINE`.
pub fn node_status(gw: &Gateway, req: &ApiRequest) -> Result<Reply, ApiError> {
    authorize(gw, req)?;
    Ok(Reply::text(status_word(gw)))
}

/// `POST {root}/admin/node/changestatus/{ONLINE|OFFLINE}`.
pub fn change_status(gw: &Gateway, status: &str, req: &ApiRequest) -> Result<Reply, ApiError> {
    authorize(gw, req)?;
    match status {
        "ONLINE" => gw.set_online(true),
        "OFFLINE" => gw.set_online(false),
        other => {
            return Err(ApiError::BadRequest(format!(
                "'{other}' is not a node status: ONLINE or OFFLINE"
            )))
        }
    }
    Ok(Reply::text(status_word(gw)))
}

/// `GET {root}/admin/node/health`: 200 when ONLINE and the store answers, else 503.
pub async fn health(gw: &Gateway) -> Result<Reply, ApiError> {
    if !gw.is_online() {
        return Err(ApiError::Unavailable("node is OFFLINE".into()));
    }
    gw.store.ping().await?;
    Ok(Reply::json(&json!({ "status": "ONLINE", "storage": "ok" })))
}

/// `POST {root}/admin/service/{id}/status`: ORS pushes a status; it replaces the cached one.
pub async fn status_push(gw: &Gateway, id: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    authorize(gw, &req)?;
    let uuid = parse_id(id).ok_or_else(|| no_such("service", id))?;
    let record = gw
        .store
        .get_service(uuid)
        .await?
        .ok_or_else(|| no_such("service", id))?;
    if serde_json::from_slice::<serde_json::Value>(&req.body).is_err() {
        return Err(ApiError::BadRequest(
            "a pushed status must be a JSON body".into(),
        ));
    }
    let fresh_ms = match gw.config.services.get(&record.service).map(|s| &s.kind) {
        Some(ServiceKind::Ors(o)) => o.status_push_ttl_ms,
        _ => DEFAULT_PUSH_TTL_MS,
    };
    let entry = StatusEntry {
        body: req.body,
        stored_at_ms: unix_ms(),
        fresh_ms,
    };
    gw.store.put_status(uuid, entry, record.service_ttl).await?;
    Ok(Reply::json(&json!({})))
}
