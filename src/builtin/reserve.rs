//! `request-interaction` and `request-access` (contract 5.1, 5.2): reserve an access number,
//! and a code on a shared number, for a service.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::api::{data_ttl, no_such};
use crate::callback::time::{format_utc, from_epoch_ms};
use crate::clock::unix_ms;
use crate::config::{
    ServiceConfig, BOOKING_TIMEOUT_S, DEFAULT_CODE_LEN, DEFAULT_GROUP, DEFAULT_SERVICE_TTL_S,
    DEFAULT_TTL_S,
};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::{new_id, parse_id};
use crate::metrics::free_capacity;
use crate::params::Options;
use crate::reply::Reply;
use crate::store::{Allocation, DataRecord, Reservation, ReserveRequest, ServiceRecord};

/// The reply GMS clients read: every value a JSON string (the QA suite reads them into Java
/// `String`s), except `_expires_in`, ours, in seconds.
#[derive(Serialize)]
struct AccessReply<'a> {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "_access_number")]
    number: &'a str,
    #[serde(rename = "_access_code", skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(rename = "_expiration_time")]
    expiration_time: String,
    #[serde(rename = "_expires_in")]
    expires_in: u64,
    #[serde(rename = "_pool_health", skip_serializing_if = "Option::is_none")]
    pool_health: Option<PoolHealth<'a>>,
}

/// `_return_pool_health: true` (ours: GMS's field names are not documented): the group the
/// number came from, its numbers, and how many of them hold no live reservation after this
/// one, as strings like every other value of the reply.
#[derive(Serialize)]
struct PoolHealth<'a> {
    group: &'a str,
    size: String,
    free: String,
}

/// The reservation a request asks for, read from its effective options.
fn reserve_request(
    gw: &Gateway,
    opts: &Options<'_>,
    phone: Option<&str>,
) -> Result<ReserveRequest, ApiError> {
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
    let code = if opts.flag("_provide_code", false)? {
        let len = opts.number("_access_code_length", DEFAULT_CODE_LEN, 1, 12)? as u8;
        Some(gw.config.code_space(len).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "_access_code_length {len} leaves no digit after gms.server.access_code_prefix"
            ))
        })?)
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
    // `_booking_expiration_timeout` (GMS), when set, is how long the reservation holds;
    // `_ttl` still sets the user data's lifetime.
    let booking = opts.number(
        "_booking_expiration_timeout",
        0,
        *BOOKING_TIMEOUT_S.start(),
        *BOOKING_TIMEOUT_S.end(),
    )?;
    let ttl = match booking {
        0 => ttl_s(gw, opts)?,
        s => s,
    };
    Ok(ReserveRequest {
        group: group.to_string(),
        numbers,
        code,
        allocation,
        phone: phone.map(str::to_string),
        ttl: Duration::from_secs(ttl),
        per_phone: gw.config.limits.reservations_per_phone,
    })
}

fn ttl_s(gw: &Gateway, opts: &Options<'_>) -> Result<u64, ApiError> {
    opts.number("_ttl", DEFAULT_TTL_S, 1, gw.config.limits.max_ttl)
}

/// The phone that will call: the request's `_phone_number` (GMS documents it as mandatory but
/// serves requests without it, and its own tests rely on that). Never the configuration's: a
/// configured `_phone_number` (GMS's request-access template has `undefined`) is ignored, and
/// `-t` says so.
fn phone(req: &ApiRequest) -> Option<&str> {
    req.params.text("_phone_number").filter(|p| !p.is_empty())
}

/// When a reservation made now for `ttl` ends, as GMS clients read it: ISO 8601 UTC with
/// milliseconds (`gms-callback.md` 11.1).
fn expiration_time(ttl: Duration) -> String {
    let ms = unix_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    // Reservations last at most `gms.limits.max_ttl` (ten years at most): a valid instant.
    from_epoch_ms(i64::try_from(ms).unwrap_or(i64::MAX))
        .map(format_utc)
        .unwrap_or_default()
}

/// The group a reservation came from, kept for `_return_pool_health` (the reservation
/// request itself goes to the store).
struct Pool {
    group: String,
    numbers: Arc<[String]>,
}

/// The pool to report on, when the service asks for it (`_return_pool_health`).
fn pool_to_report(opts: &Options<'_>, reserve: &ReserveRequest) -> Result<Option<Pool>, ApiError> {
    Ok(opts.flag("_return_pool_health", false)?.then(|| Pool {
        group: reserve.group.clone(),
        numbers: reserve.numbers.clone(),
    }))
}

/// The reply to a reservation held for `ttl`, with the pool's health when asked.
async fn reply(
    gw: &Gateway,
    pool: Option<Pool>,
    id: String,
    r: &Reservation,
    ttl: Duration,
) -> Result<Reply, ApiError> {
    let pool_health = match &pool {
        Some(p) => {
            let uses = gw.store.group_use(&p.group, &p.numbers).await?;
            Some(PoolHealth {
                group: &p.group,
                size: p.numbers.len().to_string(),
                free: free_capacity(&uses, None).to_string(),
            })
        }
        None => None,
    };
    Ok(Reply::json(&AccessReply {
        id,
        number: &r.number,
        code: r.code.as_deref(),
        expiration_time: expiration_time(ttl),
        expires_in: ttl.as_secs(),
        pool_health,
    }))
}

/// `request-interaction`: a new service with a reservation and the request's user data.
pub async fn request_interaction(
    gw: &Gateway,
    svc: &ServiceConfig,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let opts = Options::new(svc, &req.params);
    let reserve = reserve_request(gw, &opts, phone(&req))?;
    let pool = pool_to_report(&opts, &reserve)?;
    let ttl = reserve.ttl;
    let data_ttl_s = ttl_s(gw, &opts)?;
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
        data_ttl: data_ttl(
            &gw.config.limits,
            req.gms_user.as_deref(),
            Duration::from_secs(data_ttl_s),
        ),
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
    Ok(reply(gw, pool, id, &reservation, ttl)
        .await?
        .traced(&svc.name, uuid, None))
}

/// `request-access`: one more reservation for an existing service (`_id`).
pub async fn request_access(
    gw: &Gateway,
    svc: &ServiceConfig,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let opts = Options::new(svc, &req.params);
    let id = opts.required("_id")?;
    let reserve = reserve_request(gw, &opts, phone(&req))?;
    let pool = pool_to_report(&opts, &reserve)?;
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
    reply(gw, pool, id.to_string(), &reservation, ttl).await
}
