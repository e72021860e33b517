//! Reschedule, update and ORS's state reports (contract `gms-callback.md` §5, §7.2):
//! `PUT {root}/service/callback/{name}/{id}`.
//!
//! - `_new_desired_time` (in `SCHEDULED` only): checked as a create's desired time; the
//!   bucket counts, due time and expiration move with it. A new time within the execution
//!   buffer makes the callback immediate: it is submitted before the reply.
//! - User keys (no `_`): set, or removed when empty, in the user data, and in the record when
//!   they are lookup keys or kept properties. Other underscore keys are ignored (GMS clients
//!   resend the create body).
//! - `_callback_state` and `_callback_reason` are ORS's (admin credentials, else 401): a state
//!   change by the rules of §7.2.

use jiff::Timestamp;

use super::{availability, errors, find, now, record_reply, scheduler, signed, text, Service};
use crate::callback::change::{Change, Reschedule, Update};
use crate::callback::desired::{Refusal, Timing};
use crate::callback::record::{CallbackRecord, State};
use crate::callback::time::parse_instant;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::store::callback::{Rejection, Updated};
use crate::store::{DataRecord, PutMode};
use crate::value::Value;

/// `PUT {root}/service/callback/{name}/{id}`.
pub async fn update(
    gw: &Gateway,
    name: &str,
    id: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let svc = Service::named(gw, name)?;
    req.params.check_service_params()?;
    let record = find(gw, &svc, id, &req).await?;
    let params = &req.params;
    let state = text(params, "_callback_state");
    let reason = text(params, "_callback_reason");
    let mut update = Update::default();
    if state.is_some() || reason.is_some() {
        if !crate::api::admin::is_admin(gw, &req) {
            return Err(ApiError::Unauthorized(
                "_callback_state and _callback_reason are ORS's: admin credentials are required",
            ));
        }
        let state = state.ok_or_else(|| {
            errors::invalid_parameter("_callback_reason is reported with a _callback_state")
        })?;
        let state = State::parse(state).ok_or_else(|| {
            errors::invalid_parameter(format!(
                "'{state}' is not a callback state (QUEUED, ROUTING, PROCESSING, PAUSED, COMPLETED)"
            ))
        })?;
        update.change = Some(Change::Report {
            state,
            reason: reason.map(str::to_string),
        });
    }
    let now = now();
    let mut rescheduled = None;
    if let Some(value) = text(params, "_new_desired_time") {
        if update.change.is_some() {
            return Err(errors::invalid_parameter(
                "give _new_desired_time or _callback_state, not both",
            ));
        }
        if record.state.is_final() {
            return Err(errors::completed(id));
        }
        match record.state {
            State::Scheduled => {}
            State::Submitting => {
                return Err(errors::invalid_state(format!(
                    "Callback {id} is being submitted to ORS: it can no longer be rescheduled"
                )))
            }
            other => {
                return Err(errors::invalid_state(format!(
                    "Callback {id} is {}: only a SCHEDULED callback can be rescheduled",
                    other.name()
                )))
            }
        }
        let desired = parse_instant(value)
            .map_err(|e| errors::invalid_parameter(format!("_new_desired_time '{value}': {e}")))?;
        let r = reschedule(gw, &svc, desired, now).await?;
        rescheduled = Some(r.bucket.is_none());
        update.change = Some(Change::Reschedule(r));
    }
    let mut data_edits: Vec<(String, Option<String>)> = Vec::new();
    for (k, v) in params.iter() {
        let Value::Text(v) = v else {
            return Err(errors::invalid_parameter(format!(
                "'{k}' is a file: a callback's user data is text"
            )));
        };
        if k.starts_with('_') || data_edits.iter().any(|(d, _)| d == k) {
            continue;
        }
        let value = Some(v.clone()).filter(|v| !v.is_empty());
        if svc.callback.lookup_keys.iter().any(|l| l == k) {
            update.lookup.push((k.to_string(), value.clone()));
        } else if is_kept(gw, k) {
            update.props.push((k.to_string(), value.clone()));
        }
        data_edits.push((k.to_string(), value));
    }
    let before = record.state;
    let updated = match gw
        .store
        .callbacks()
        .update(name, record.id, &update)
        .await?
    {
        Updated::Done(r) => r,
        Updated::NotFound => return Err(errors::no_callback(id)),
        Updated::Refused(why, current) => {
            return Err(rejected(gw, &svc, &update, why, &current, now).await)
        }
    };
    if updated.state != before {
        crate::metrics::callback_state(name, updated.state);
    }
    if !data_edits.is_empty() || rescheduled.is_some() {
        edit_data(gw, &updated, data_edits, now).await?;
    }
    let record = match rescheduled {
        Some(true) => submitted_now(gw, &svc, updated).await?,
        _ => updated,
    };
    Ok(record_reply(gw, &req, &record))
}

/// How long a reschedule into the buffer waits for a pass that another task (or node) won,
/// at most.
const SUBMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A callback rescheduled within the execution buffer, submitted before the reply (§5): by
/// this request's own pass, or, when a scheduler pass claimed it first, as that pass left it
/// (waited for a moment).
async fn submitted_now(
    gw: &Gateway,
    svc: &Service,
    record: CallbackRecord,
) -> Result<CallbackRecord, ApiError> {
    scheduler::submit_now(gw, svc).await;
    let deadline = std::time::Instant::now() + SUBMIT_WAIT;
    let mut current = record;
    loop {
        match gw.store.callbacks().get(svc.name(), current.id).await? {
            Some(r) => current = r,
            None => return Ok(current),
        }
        if current.state != State::Submitting || std::time::Instant::now() >= deadline {
            return Ok(current);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// §5: the new desired time checked as on create, with the times and bucket that go with it.
async fn reschedule(
    gw: &Gateway,
    svc: &Service,
    desired: Timestamp,
    now: Timestamp,
) -> Result<Reschedule, ApiError> {
    let cb = &svc.callback;
    let buffer = signed(cb.buffer);
    let scheduled = desired > now.saturating_add(buffer).unwrap_or(now);
    let timing = match scheduled {
        true => Timing::Scheduled,
        false => Timing::Immediate {
            reject_out_of_office_hours: cb.reject_out_of_office_hours,
        },
    };
    if let Err(refusal) = cb.rules.check_desired_time(desired, now, timing) {
        return Err(availability::refused(gw, svc, &refusal, now).await);
    }
    let expires = desired
        .saturating_add(signed(cb.ttl))
        .unwrap_or(Timestamp::MAX);
    Ok(match scheduled {
        true => Reschedule {
            desired,
            submit_at: desired.saturating_sub(buffer).unwrap_or(desired),
            expires,
            bucket: Some(cb.rules.bucket_key(desired)),
            capacity: Some(cb.rules.bucket_total(cb.rules.bucket_start(desired))),
        },
        false => Reschedule {
            desired,
            submit_at: now,
            expires,
            bucket: None,
            capacity: None,
        },
    })
}

/// Whether a user key is kept on the record for replies and filters.
fn is_kept(gw: &Gateway, key: &str) -> bool {
    let settings = &gw.config.callback;
    settings
        .returned_keys
        .iter()
        .chain(&settings.filter_keys)
        .any(|k| k == key)
}

/// The error for an update the store refused.
async fn rejected(
    gw: &Gateway,
    svc: &Service,
    update: &Update,
    why: Rejection,
    current: &CallbackRecord,
    now: Timestamp,
) -> ApiError {
    let id = current.id.hyphenated().to_string();
    match (why, &update.change) {
        (_, _) if current.state.is_final() => errors::completed(&id),
        (Rejection::BucketFull, Some(Change::Reschedule(r))) => {
            let full = Refusal::BucketFull {
                desired: r.desired,
                bucket: svc.callback.rules.bucket_start(r.desired),
            };
            availability::refused(gw, svc, &full, now).await
        }
        (_, Some(Change::Report { state, .. })) => errors::invalid_state(format!(
            "Callback {id} cannot go from {} to {}",
            current.state.name(),
            state.name()
        )),
        _ => errors::invalid_state(format!(
            "Callback {id} cannot be changed in state {}",
            current.state.name()
        )),
    }
}

/// Sets and removes user keys in the callback's data, which lives as long as the record.
async fn edit_data(
    gw: &Gateway,
    record: &CallbackRecord,
    edits: Vec<(String, Option<String>)>,
    now: Timestamp,
) -> Result<(), ApiError> {
    let id = record.data_id.hyphenated().to_string();
    let ttl = record
        .expires
        .duration_since(now)
        .unsigned_abs()
        .max(std::time::Duration::from_secs(1));
    let mut data = gw.store.get_data(&id).await?.unwrap_or(DataRecord {
        owner: record.owner.clone(),
        fields: Vec::new(),
    });
    for (k, v) in edits {
        data.fields.retain(|(f, _)| *f != k);
        if let Some(v) = v {
            data.fields.push((k, Value::Text(v)));
        }
    }
    gw.store.put_data(&id, data, ttl, PutMode::New).await?;
    Ok(())
}
