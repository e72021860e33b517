//! Service API (contract section 4): create, service-specific requests, delete.

use serde_json::json;

use super::{no_such, visible};
use crate::builtin;
use crate::callback::api as callbacks;
use crate::config::ServiceKind;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::parse_id;
use crate::ors;
use crate::reply::Reply;
use crate::store::{ServiceRecord, StatusEntry};

/// `POST {root}/service/{service}`: creates a service of a configured name.
pub async fn create(gw: &Gateway, name: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let svc = gw
        .config
        .services
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("service '{name}' is not configured")))?
        .clone();
    req.params.check_service_params()?;
    match &svc.kind {
        ServiceKind::Builtin(kind) => builtin::create(gw, &svc, *kind, req).await,
        ServiceKind::Ors(conf) => ors::service::create(gw, &svc, conf, req).await,
        ServiceKind::Callback(_) => Err(ApiError::BadRequest(format!(
            "'{name}' is a callback service: callbacks are created with POST {{root}}/service/callback/{name}"
        ))),
        ServiceKind::OfficeHours(_) | ServiceKind::Capacity(_) => Err(ApiError::BadRequest(format!(
            "'{name}' is answered by GET {{root}}/service/{name}; it creates nothing"
        ))),
    }
}

/// A live service the requester may use, or the 404 that hides it.
pub async fn find(gw: &Gateway, id: &str, req: &ApiRequest) -> Result<ServiceRecord, ApiError> {
    Ok(lookup(gw, id, req, false).await?.0)
}

/// `find`, and with `with_status` the service's cached ORS status read in the same store call
/// (a status poll, the most frequent request: one Redis round trip instead of two).
async fn lookup(
    gw: &Gateway,
    id: &str,
    req: &ApiRequest,
    with_status: bool,
) -> Result<(ServiceRecord, Option<StatusEntry>), ApiError> {
    let uuid = parse_id(id).ok_or_else(|| no_such("service", id))?;
    let (record, status) = if with_status {
        gw.store.get_service_and_status(uuid).await?
    } else {
        (gw.store.get_service(uuid).await?, None)
    };
    record
        .filter(|r| visible(r, req.gms_user.as_deref()))
        .map(|r| (r, status))
        .ok_or_else(|| no_such("service", id))
}

/// `POST {root}/service/{id}/{request}`: a service-specific request (contract 4.2).
pub async fn request(
    gw: &Gateway,
    id: &str,
    request: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let (record, cached_status) = match lookup(gw, id, &req, request == "status").await {
        Ok(found) => found,
        // Callback ids take requests too, relayed to their ORS session (gms-callback.md §8).
        // On the heap: a status poll would otherwise move this branch's bytes with its own.
        Err(ApiError::NotFound(m)) => {
            return match callbacks::request::find_any(gw, id, &req).await? {
                Some(cb) => Box::pin(callbacks::request::request(gw, cb, request, req)).await,
                None => Err(ApiError::NotFound(m)),
            }
        }
        Err(e) => return Err(e),
    };
    let Some(svc) = gw.config.services.get(&record.service).cloned() else {
        // Configured once, since removed (a shared store outlives a configuration).
        return Err(no_such("service", id));
    };
    if !svc.accepts_requests() {
        return Err(ApiError::BadRequest(format!(
            "service '{}' does not accept requests: only request-inbound-* and request-outbound-* services do",
            svc.name
        )));
    }
    req.params.check_service_params()?;
    match (request, &svc.kind) {
        ("update", _) => update(gw, &record, req).await,
        ("status", ServiceKind::Ors(conf)) => {
            ors::status::status(&gw.ors, &svc, conf, record, cached_status).await
        }
        (_, ServiceKind::Ors(conf)) => {
            ors::service::request(gw, &svc, conf, record, request, req).await
        }
        // Service records are only made by the built-ins and ORS services.
        _ => Err(ApiError::BadRequest(format!(
            "request '{request}' needs an ORS session; service '{}' is built in",
            svc.name
        ))),
    }
}

/// `update`: merges the request's user data into the service's data; never goes to ORS.
async fn update(gw: &Gateway, record: &ServiceRecord, req: ApiRequest) -> Result<Reply, ApiError> {
    gw.merge_user_data(record, req.params.into_user_data())
        .await?;
    gw.store.touch_service(record).await?;
    Ok(Reply::json(&json!({})))
}

/// `DELETE {root}/service/{id}`: releases, deletes and forgets a service (contract 4.3).
pub async fn delete(gw: &Gateway, id: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let uuid = parse_id(id).ok_or_else(|| no_such("service", id))?;
    let Some(record) = gw
        .store
        .delete_service(uuid, req.gms_user.as_deref())
        .await?
    else {
        return Err(no_such("service", id));
    };
    if let Some(svc) = gw.config.services.get(&record.service) {
        if let ServiceKind::Ors(conf) = &svc.kind {
            ors::service::terminate(gw, svc, conf, &record).await;
        }
    }
    Ok(Reply::json(&json!({ "_id": id })))
}
