//! `request-interaction` and `request-access` (contract 5.1, 5.2): reserve an access number,
//! and a code on a shared number, for a service.

use std::time::Duration;

use serde::Serialize;

use crate::api::{data_ttl, no_such};
use crate::config::{
    ServiceConfig, DEFAULT_CODE_LEN, DEFAULT_GROUP, DEFAULT_SERVICE_TTL_S, DEFAULT_TTL_S,
};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::{new_id, parse_id};
use crate::params::Options;
use crate::reply::Reply;
use crate::store::{Allocation, DataRecord, Reservation, ReserveRequest, ServiceRecord};

#[derive(Serialize)]
struct AccessReply<'a> {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_access_number")]
    number: &'a str,
    #[serde(rename = "_access_code", skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(rename = "_expires_in")]
    expires_in: u64,
}

/// The reservation a request asks for, read from its effective options.
fn reserve_request(gw: &Gateway, opts: &Options<'_>) -> Result<ReserveRequest, ApiError> {
    let phone = opts.required("_phone_number")?.to_string();
    let group = opts
        .get("_resource_group")
        .filter(|g| !g.is_empty())
        .unwrap_or(DEFAULT_GROUP);
    let numbers = gw
        .config
        .resources
        .get(group)
        .ok_or_else(|| ApiError::BadRequest(format!("resource group '{group}' is not configured")))?
        .clone();
    let code_len = if opts.flag("_provide_code", false)? {
        Some(opts.number("_access_code_length", DEFAULT_CODE_LEN, 1, 12)? as u8)
    } else {
        None
    };
    let allocation = match opts.get("_allocation") {
        None | Some("") | Some("random") => Allocation::Random,
        Some("round-robin") => Allocation::RoundRobin,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "_allocation must be random or round-robin, not '{other}'"
            )))
        }
    };
    Ok(ReserveRequest {
        group: group.to_string(),
        numbers,
        code_len,
        allocation,
        phone,
        ttl: Duration::from_secs(ttl_s(gw, opts)?),
        per_phone: gw.config.limits.reservations_per_phone,
    })
}

fn ttl_s(gw: &Gateway, opts: &Options<'_>) -> Result<u64, ApiError> {
    opts.number("_ttl", DEFAULT_TTL_S, 1, gw.config.limits.max_ttl)
}

fn reply(id: String, r: &Reservation, ttl: Duration) -> Reply {
    Reply::json(&AccessReply {
        id,
        number: &r.number,
        code: r.code.as_deref(),
        expires_in: ttl.as_secs(),
    })
}

/// `request-interaction`: a new service with a reservation and the request's user data.
pub async fn request_interaction(
    gw: &Gateway,
    svc: &ServiceConfig,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let opts = Options::new(svc, &req.params);
    let reserve = reserve_request(gw, &opts)?;
    let ttl = reserve.ttl;
    let service_ttl = opts.number(
        "_service_ttl",
        DEFAULT_SERVICE_TTL_S,
        1,
        gw.config.limits.max_ttl,
    )?;
    let record = ServiceRecord {
        id: new_id(),
        service: svc.name.clone(),
        data_id: new_id(),
        owner: req.gms_user.clone(),
        service_ttl: Duration::from_secs(service_ttl),
        data_ttl: data_ttl(&gw.config.limits, req.gms_user.as_deref(), ttl),
        ors: None,
        reservations: Vec::new(),
    };
    let uuid = record.id;
    let id = uuid.hyphenated().to_string();
    let data = DataRecord {
        owner: req.gms_user.clone(),
        fields: req.params.into_user_data(),
    };
    let reservation = gw
        .store
        .create_service(record, data, Some(reserve))
        .await?
        .ok_or_else(|| ApiError::Internal("store made no reservation".into()))?;
    Ok(reply(id, &reservation, ttl).traced(&svc.name, uuid, None))
}

/// `request-access`: one more reservation for an existing service (`_id`).
pub async fn request_access(
    gw: &Gateway,
    svc: &ServiceConfig,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let opts = Options::new(svc, &req.params);
    let id = opts.required("_id")?;
    let reserve = reserve_request(gw, &opts)?;
    let ttl = reserve.ttl;
    let uuid = parse_id(id).ok_or_else(|| no_such("service", id))?;
    let reservation = gw
        .store
        .add_reservation(uuid, req.gms_user.as_deref(), reserve)
        .await?
        .ok_or_else(|| no_such("service", id))?;
    if let Some(record) = gw.store.get_service(uuid).await? {
        gw.store.touch_service(&record).await?;
    }
    Ok(reply(id.to_string(), &reservation, ttl))
}
