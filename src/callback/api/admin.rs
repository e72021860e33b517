//! The callback admin endpoints that read (contract `gms-callback.md` §9):
//! `GET {root}/admin/callback/queues` (records per callback service in a time window, by state
//! and `filter-keys` values) and `GET {root}/admin/callback/watermarks` (active callbacks per
//! service, from the store's per-state counts). Both need the admin credentials unless
//! `gms.callback.admin_open` opens them (§13 Q5). The writes, bulk cancel and the cancelled
//! report, are `bulk.rs` and `report.rs`.

use futures::FutureExt;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;

use super::view::record_object;
use super::{errors, now, Service};
use crate::callback::record::{CallbackRecord, State, CUSTOMER_NUMBER};
use crate::callback::time::parse_instant;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::store::callback::{Field, Found, Operand, Query, Term};
use crate::value::Value;

/// `max` of a queues request when it gives none (§9).
pub const DEFAULT_MAX: usize = 1000;
/// The largest `max` of a queues request, and the most ids or rows the other admin
/// endpoints take or answer (§9).
pub const MAX_RECORDS: usize = 10_000;
/// The default window of a queues request: from this long before now... (GMS: research §1.8)
const BEFORE_NOW: SignedDuration = SignedDuration::from_mins(15);
/// ...to this long after it.
const AFTER_NOW: SignedDuration = SignedDuration::from_hours(24);

/// The admin credentials, unless `open` (an endpoint `gms.callback.admin_open` opens).
pub fn authorize(gw: &Gateway, req: &ApiRequest, open: bool) -> Result<(), ApiError> {
    if open && gw.config.callback.admin_open {
        return Ok(());
    }
    crate::api::admin::authorize(gw, req)
}

/// The text value of a parameter, or a 400 for a file.
fn text<'a>(key: &str, value: &'a Value) -> Result<&'a str, ApiError> {
    match value {
        Value::Text(v) => Ok(v),
        Value::File(_) => Err(errors::invalid_parameter(format!("'{key}' must be text"))),
    }
}

/// A configured callback service named by a parameter, or a 400 naming it.
fn known_service(gw: &Gateway, key: &str, name: &str) -> Result<String, ApiError> {
    match Service::named(gw, name) {
        Ok(svc) => Ok(svc.name().to_string()),
        Err(_) => Err(errors::invalid_parameter(format!(
            "{key} '{name}' is not a callback service"
        ))),
    }
}

/// A queues request, parsed.
struct QueuesRequest {
    /// The services asked about (every callback service when none is named), in order.
    services: Vec<String>,
    /// `filter-keys` filters: key, value, negated.
    filters: Vec<(String, String, bool)>,
    /// The query, without its filters (they depend on the service's lookup keys).
    query: Query,
}

fn parse_queues(gw: &Gateway, req: &ApiRequest) -> Result<QueuesRequest, ApiError> {
    let settings = &gw.config.callback;
    let mut services: Vec<String> = Vec::new();
    let mut filters = Vec::new();
    let mut query = Query::new(Vec::new(), Operand::And, DEFAULT_MAX);
    let (mut from, mut to) = (None, None);
    for (key, value) in req.params.iter() {
        let value = text(key, value)?;
        let instant = |v: &str| {
            parse_instant(v).map_err(|e| {
                errors::invalid_parameter(format!("{key} '{v}' is not an instant: {e}"))
            })
        };
        match key {
            // Repeated, or a comma list.
            "target" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let name = known_service(gw, key, name)?;
                    if !services.contains(&name) {
                        services.push(name);
                    }
                }
            }
            "start_time" => from = Some(instant(value)?),
            "end_time" => to = Some(instant(value)?),
            "states" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let state = State::parse(&name.to_ascii_uppercase()).ok_or_else(|| {
                        errors::invalid_parameter(format!(
                            "'{name}' is not a callback state: SCHEDULED, QUEUED, ROUTING, \
                             PROCESSING, PAUSED or COMPLETED"
                        ))
                    })?;
                    query.states.push(state);
                }
            }
            "max" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_RECORDS).contains(n))
                    .ok_or_else(|| {
                        errors::invalid_parameter(format!(
                            "max '{value}' must be a number from 1 to {MAX_RECORDS}"
                        ))
                    })?;
            }
            k if settings.filter_keys.iter().any(|f| f == k) => {
                let (v, negate) = match value.strip_prefix('!') {
                    Some(not) => (not, true),
                    None => (value, false),
                };
                filters.push((k.to_string(), v.to_string(), negate));
            }
            k => {
                return Err(errors::invalid_parameter(format!(
                    "'{k}' is not a parameter of queues: target, start_time, end_time, states, \
                     max or a filter key ({})",
                    settings.filter_keys.join(", ")
                )))
            }
        }
    }
    let (first, last) = default_window(now());
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    if from > to {
        return Err(errors::invalid_parameter(
            "start_time must not be after end_time",
        ));
    }
    (query.from, query.to) = (Some(from), Some(to));
    if services.is_empty() {
        services = settings.services.clone();
    }
    Ok(QueuesRequest {
        services,
        filters,
        query,
    })
}

/// The field a `filter-keys` key tests on `svc`'s records: the state and reason are the
/// record's own (indexed), a lookup key of the service is indexed too, any other key is a
/// property the record keeps (`create.rs` keeps every filter key's value).
fn filter_field(svc: &Service, key: &str) -> Field {
    match key {
        "_id" => Field::Id,
        "_callback_state" => Field::State,
        "_callback_reason" => Field::Reason,
        k if k == CUSTOMER_NUMBER || svc.callback.lookup_keys.iter().any(|l| l == k) => {
            Field::Lookup(k.to_string())
        }
        k => Field::Prop(k.to_string()),
    }
}

/// `GET {root}/admin/callback/queues`: `{"<service>":[<record>,…],…}`, one key per service
/// asked about, records by desired time; at most `max` records in all.
pub async fn queues(gw: &Gateway, req: ApiRequest) -> Result<Reply, ApiError> {
    authorize(gw, &req, true)?;
    let parsed = parse_queues(gw, &req)?;
    // One query per service: a filter key is indexed on a service that has it as a lookup key
    // and a kept property on another. They run concurrently.
    let asks = parsed
        .services
        .iter()
        .map(|name| query_service(gw, name, &parsed).boxed());
    let found = Found::merge(
        futures::future::try_join_all(asks).await?,
        parsed.query.limit,
    );
    if !found.complete {
        log::info!(
            "an admin queues request stopped at the scan bound; its answer may miss records ({:?})",
            parsed.services
        );
    }
    Ok(Reply::json_bytes(
        queues_body(gw, &req, &parsed.services, &found.records).into(),
    ))
}

/// The records of service `name` that a queues request asks for.
async fn query_service(
    gw: &Gateway,
    name: &str,
    parsed: &QueuesRequest,
) -> Result<Found, ApiError> {
    let mut query = parsed.query.clone();
    let svc = Service::named(gw, name)?;
    query.terms = parsed
        .filters
        .iter()
        .map(|(k, v, negate)| {
            let field = filter_field(&svc, k);
            match negate {
                true => Term::not(field, v),
                false => Term::is(field, v),
            }
        })
        .collect();
    Ok(gw.store.callbacks().query(&[name], &query).await?)
}

/// `{"<service>":[<record>,…],…}`: every service of `services` in order, each with its
/// records (already in desired-time order).
fn queues_body(
    gw: &Gateway,
    req: &ApiRequest,
    services: &[String],
    records: &[CallbackRecord],
) -> Vec<u8> {
    let mut buf = vec![b'{'];
    for (i, name) in services.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut buf, name);
        buf.extend_from_slice(b":[");
        let mine = records.iter().filter(|r| &r.service == name);
        for (j, r) in mine.enumerate() {
            if j > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(&record_object(gw, req, r).finish());
        }
        buf.push(b']');
    }
    buf.push(b'}');
    buf
}

/// `GET {root}/admin/callback/watermarks[?service_name=a&service_name=b]`:
/// `{"services":{"a":1,"b":0},"total":1}`, counting QUEUED, ROUTING, PROCESSING and PAUSED
/// records (every callback service when none is named).
pub async fn watermarks(gw: &Gateway, req: ApiRequest) -> Result<Reply, ApiError> {
    authorize(gw, &req, true)?;
    let mut services: Vec<String> = Vec::new();
    for (key, value) in req.params.iter() {
        let value = text(key, value)?;
        if key != "service_name" {
            return Err(errors::invalid_parameter(format!(
                "'{key}' is not a parameter of watermarks: service_name"
            )));
        }
        let name = known_service(gw, key, value)?;
        if !services.contains(&name) {
            services.push(name);
        }
    }
    if services.is_empty() {
        services = gw.config.callback.services.clone();
    }
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let counts = gw.store.callbacks().state_counts(&names).await?;
    let mut per_service = serde_json::Map::new();
    let mut total = 0;
    for (name, count) in services.iter().zip(&counts) {
        per_service.insert(name.clone(), count.watermark().into());
        total += count.watermark();
    }
    Ok(Reply::json(
        &serde_json::json!({ "services": per_service, "total": total }),
    ))
}

/// A JSON body of an admin write (`cancel`, `reportcancelled`): an object of type `T`, or a
/// 400 that says what was expected.
pub fn json_body<T: DeserializeOwned>(req: &ApiRequest, shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(&req.body).map_err(|e| {
        errors::invalid_parameter(format!("the body must be a JSON object {shape}: {e}"))
    })
}

/// The window of desired times a queues request reads at `now` when it names none.
pub fn default_window(now: Timestamp) -> (Timestamp, Timestamp) {
    (now - BEFORE_NOW, now + AFTER_NOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_window_is_fifteen_minutes_back_to_a_day_ahead() {
        let t = Timestamp::from_second(1_772_400_000).unwrap();
        let (from, to) = default_window(t);
        assert_eq!(t.duration_since(from), SignedDuration::from_secs(900));
        assert_eq!(to.duration_since(t), SignedDuration::from_secs(86_400));
    }
}
