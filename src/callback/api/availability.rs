//! Availability V1 and V2 (contract `gms-callback.md` §6.2), and the free slots a refused
//! desired time proposes (§3.4): the open buckets of the window from the pure logic, their
//! booked counts from the store, the first free ones.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::{errors, now, Service};
use crate::callback::slots::{Slot, SlotWindow};
use crate::callback::{AvailabilityRequest, Refusal, SlotRules, Version};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::store::callback::CallbackStore;

/// Buckets whose counts one store call asks for first; each further call asks for twice as
/// many, so a window costs O(log n) round trips and a short answer (the 5 slots of a refusal)
/// only one.
const FIRST_CHUNK: usize = 64;

/// `GET {root}/service/callback/{name}/availability` (V1) and `GET {v2 root}/...` (V2).
pub async fn availability(
    gw: &Gateway,
    name: &str,
    version: Version,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let svc = Service::named(gw, name)?;
    let rules = &svc.callback.rules;
    let params = &req.params;
    let request =
        AvailabilityRequest::parse(|k| params.text(k), version).map_err(errors::bad_param)?;
    let now = now();
    let window = rules.window(&request, now).map_err(errors::bad_param)?;
    let slots = free_slots(gw.store.callbacks(), name, rules, &window, now).await?;
    Ok(match version {
        Version::V1 => Reply::json_bytes(SlotRules::v1_json(&slots).into()),
        Version::V2 => Reply::json_bytes(rules.v2_json(&slots, request.timezone.as_ref()).into()),
    })
}

/// The slots of `window` to list at `now`, with their room from `service`'s booked counts.
pub async fn free_slots(
    store: &dyn CallbackStore,
    service: &str,
    rules: &SlotRules,
    window: &SlotWindow,
    now: Timestamp,
) -> Result<Vec<Slot>, ApiError> {
    let candidates = rules.candidates(window, now);
    let limit = window.limit as usize;
    let mut slots = Vec::new();
    let mut chunk = FIRST_CHUNK.max(limit.min(4 * FIRST_CHUNK));
    let mut rest = &candidates[..];
    while !rest.is_empty() && slots.len() < limit {
        let (part, next) = rest.split_at(chunk.min(rest.len()));
        let keys: Vec<i64> = part.iter().map(|c| rules.bucket_key(c.start)).collect();
        // One count per key, in order: `counts[i]` is `part[i]`'s.
        let counts = store.booked(service, &keys).await?;
        let mut part_window = window.clone();
        part_window.limit = (limit - slots.len()) as u32;
        slots.extend(rules.pick(&part_window, part, &counts));
        rest = next;
        chunk *= 2;
    }
    Ok(slots)
}

/// What a refused desired time proposes instead (§3.4): up to 5 free slots from it (from now
/// when it was too early or too far ahead), as the V1 map.
pub async fn proposals(
    gw: &Gateway,
    svc: &Service,
    refusal: &Refusal,
    now: Timestamp,
) -> Result<BTreeMap<String, u32>, ApiError> {
    let rules = &svc.callback.rules;
    let window = rules.window_around(refusal, now);
    let slots = free_slots(gw.store.callbacks(), svc.name(), rules, &window, now).await?;
    Ok(SlotRules::v1(&slots))
}

/// The 400 for a refused desired time, with its proposals.
pub async fn refused(gw: &Gateway, svc: &Service, refusal: &Refusal, now: Timestamp) -> ApiError {
    match proposals(gw, svc, refusal, now).await {
        Ok(map) => errors::refused_time(refusal, map),
        Err(e) => e,
    }
}
