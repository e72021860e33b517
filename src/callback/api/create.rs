//! Create (contract `gms-callback.md` §3): `POST {root}/service/callback/{name}`.
//!
//! The checks run in the order of §3.2 and the first failure answers with nothing stored:
//! the service, `_redirect` (another service's create answers instead), the mandatory lookup
//! keys, the number's syntax, the desired time (past, future, office hours), then in one
//! atomic store step the bucket's room, the queue and throttle limits and in-queue duplicates.
//! A scheduled callback is then stored `SCHEDULED` and answered with a ConfirmationDialog; an
//! immediate one is stored claimed by this node, submitted to ORS, and answered with ORS's
//! dialog (§3.3).

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;

use super::availability;
use super::errors::{self, DUPLICATE, MISSING_PARAMETER, NUMBER};
use super::options::{self, effective};
use super::submit;
use super::view::FIELDS;
use super::{now, signed, text, Service};
use crate::callback::desired::{Refusal, Timing};
use crate::callback::record::{CallbackRecord, CUSTOMER_NUMBER};
use crate::callback::time::{format_utc, parse_instant};
use crate::config::ServiceKind;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::{JsonObject, Reply};
use crate::store::callback::{CreateRefusal, Limits, NewCallback, ParameterThrottle, Throttle};
use crate::store::{DataRecord, PutMode};

/// `POST {root}/service/callback/{name}`.
pub async fn create(gw: &Gateway, name: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    create_with(gw, name, req, true).await
}

/// A create; `may_redirect`: false for the create a `_redirect` runs (one hop only).
fn create_with<'a>(
    gw: &'a Gateway,
    name: &'a str,
    req: ApiRequest,
    may_redirect: bool,
) -> Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send + 'a>> {
    Box::pin(async move {
        let svc = Service::named(gw, name)?;
        req.params.check_service_params()?;
        if may_redirect {
            if let Some(target) = redirect_target(&svc, &req) {
                return redirect(gw, &target, req).await;
            }
        }
        check_request(&svc, &req)?;
        let now = now();
        let plan = plan(gw, &svc, &req, now).await?;
        let NewPlan { new, data_ttl } = plan;
        let owner = req.gms_user;
        let data_id = new.record.data_id.hyphenated().to_string();
        let data = DataRecord {
            owner: owner.clone(),
            fields: req.params.into_user_data(),
        };
        // The data first: an immediate callback's strategy may read it as soon as ORS starts.
        gw.store
            .put_data(&data_id, data, data_ttl, PutMode::New)
            .await?;
        let stored = match gw.store.callbacks().create(&new).await {
            Ok(Ok(stored)) => stored,
            Ok(Err(refusal)) => {
                forget_data(gw, &data_id, owner.as_deref()).await;
                return Err(refused(gw, &svc, &new.record, refusal, now).await);
            }
            Err(e) => {
                forget_data(gw, &data_id, owner.as_deref()).await;
                return Err(e.into());
            }
        };
        if stored.immediate {
            immediate(gw, &svc, &new, stored).await
        } else {
            crate::metrics::callback_created(name, false);
            Ok(scheduled_reply(&svc, &stored))
        }
    })
}

/// The service a create runs instead (§3.3): `_redirect` (the request's value only when the
/// option is overwritable; empty means none).
fn redirect_target(svc: &Service, req: &ApiRequest) -> Option<String> {
    let configured = svc.config.option("_redirect");
    let requested = svc
        .config
        .is_overwritable("_redirect")
        .then(|| req.params.text("_redirect"))
        .flatten();
    requested
        .or(configured)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// Runs `target`'s create with the same parameters; its reply is the reply.
async fn redirect(gw: &Gateway, target: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    match gw.config.services.get(target).map(|s| &s.kind) {
        Some(ServiceKind::Callback(_)) => create_with(gw, target, req, false).await,
        Some(ServiceKind::Builtin(_) | ServiceKind::Ors(_)) => {
            crate::api::service::create(gw, target, req).await
        }
        _ => Err(errors::invalid_parameter(format!(
            "_redirect: '{target}' is not a service that can be created"
        ))),
    }
}

/// §3.2 steps 2 and 3: the mandatory lookup keys, the number's syntax; and text only
/// (ours: a strategy reads a callback's user data as properties, not files).
fn check_request(svc: &Service, req: &ApiRequest) -> Result<(), ApiError> {
    let cb = &svc.callback;
    if let Some(k) = req.params.file_names().next() {
        return Err(errors::invalid_parameter(format!(
            "'{k}' is a file: a callback's user data is text"
        )));
    }
    for key in &cb.mandatory_keys {
        if text(&req.params, key).is_none() {
            crate::metrics::callback_refused(svc.name(), "missing_key");
            return Err(ApiError::callback(
                400,
                MISSING_PARAMETER,
                format!("Mandatory lookup key {key} is missing"),
            ));
        }
    }
    if let Some(number) = text(&req.params, CUSTOMER_NUMBER) {
        if cb.check_numbers && !possible_number(number) {
            crate::metrics::callback_refused(svc.name(), "number");
            return Err(ApiError::callback(
                400,
                NUMBER,
                format!("Customer Number [{number}] is disallowed, because it is invalid. Check option _disallow_impossible_phone_numbers"),
            ));
        }
    }
    Ok(())
}

/// Ours (§3.2 step 3): an optional `+` and 2 to 20 digits, once spaces, `-`, `(` and `)` are
/// taken out.
fn possible_number(number: &str) -> bool {
    let kept: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let digits = kept.strip_prefix('+').unwrap_or(&kept);
    (2..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A create ready for the store, and how long its user data lives.
struct NewPlan {
    new: NewCallback,
    data_ttl: std::time::Duration,
}

/// §3.2 step 4 and the record: the desired time checked, scheduled or immediate, times,
/// bucket, keys, options and limits.
async fn plan(
    gw: &Gateway,
    svc: &Service,
    req: &ApiRequest,
    now: Timestamp,
) -> Result<NewPlan, ApiError> {
    let cb = &svc.callback;
    let params = &req.params;
    let desired = text(params, "_desired_time")
        .map(|v| {
            parse_instant(v)
                .map_err(|e| errors::invalid_parameter(format!("_desired_time '{v}': {e}")))
        })
        .transpose()?;
    let buffer = signed(cb.buffer);
    let scheduled = desired.filter(|d| *d > now.saturating_add(buffer).unwrap_or(now));
    let timing = match scheduled {
        Some(_) => Timing::Scheduled,
        None => Timing::Immediate {
            reject_out_of_office_hours: cb.reject_out_of_office_hours,
        },
    };
    let desired = desired.unwrap_or(now);
    if let Err(refusal) = cb.rules.check_desired_time(desired, now, timing) {
        crate::metrics::callback_refused(svc.name(), refusal_label(&refusal));
        return Err(availability::refused(gw, svc, &refusal, now).await);
    }
    let ttl = signed(cb.ttl);
    let customer = text(params, CUSTOMER_NUMBER).unwrap_or("");
    // An immediate callback expires `_ttl` after its creation (§6.1).
    let expires = scheduled
        .unwrap_or(now)
        .saturating_add(ttl)
        .unwrap_or(Timestamp::MAX);
    let mut record = CallbackRecord::new(svc.name(), customer, desired, expires, now);
    record.owner = req.gms_user.clone();
    record.options = options::request_options(&svc.config, params);
    record.lookup = cb.lookup_keys[1..]
        .iter()
        .filter_map(|k| text(params, k).map(|v| (k.clone(), v.to_string())))
        .collect();
    record.props = props(gw, svc, &record, req);
    let capacity = match scheduled {
        Some(d) => {
            record.submit_at = d.saturating_sub(buffer).unwrap_or(d);
            record.bucket = Some(cb.rules.bucket_key(d));
            Some(cb.rules.bucket_total(cb.rules.bucket_start(d)))
        }
        None => {
            record.submit_at = now;
            let until = now
                .saturating_add(signed(submit::lease(&gw.config)))
                .unwrap_or(now);
            record = record.immediate(&gw.node_id, until);
            None
        }
    };
    let values: Vec<(String, String)> = cb
        .parameter_keys
        .iter()
        .filter_map(|k| {
            let v = if k == CUSTOMER_NUMBER {
                Some(record.customer_number.as_str()).filter(|v| !v.is_empty())
            } else {
                text(params, k)
            };
            v.map(|v| (k.clone(), v.to_string()))
        })
        .collect();
    let limits = Limits {
        max_active: scheduled.is_none().then_some(cb.max_active),
        throttles: cb
            .throttles
            .iter()
            .map(|(window, max)| Throttle {
                window: *window,
                max: *max,
            })
            .collect(),
        per_parameter: (!values.is_empty()).then(|| ParameterThrottle {
            values,
            max: cb.parameter_limit,
        }),
        in_queue: cb.in_queue,
    };
    let data_ttl = (expires.duration_since(now))
        .unsigned_abs()
        .max(std::time::Duration::from_secs(1));
    Ok(NewPlan {
        new: NewCallback {
            record: record.normalized(),
            capacity,
            limits,
        },
        data_ttl,
    })
}

/// The values a record keeps for replies and admin filters (`returned-keys`, `filter-keys`)
/// that are not its own fields or lookup keys: from its options, else its user data.
fn props(
    gw: &Gateway,
    svc: &Service,
    record: &CallbackRecord,
    req: &ApiRequest,
) -> Vec<(String, String)> {
    let settings = &gw.config.callback;
    let mut out: Vec<(String, String)> = Vec::new();
    for key in settings.returned_keys.iter().chain(&settings.filter_keys) {
        let own = FIELDS.contains(&key.as_str()) || svc.callback.lookup_keys.contains(key);
        if own || out.iter().any(|(k, _)| k == key) {
            continue;
        }
        let value = match key.starts_with('_') {
            true => effective(&svc.config, record, key),
            false => req.params.text(key),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push((key.clone(), v.to_string()));
        }
    }
    out
}

async fn forget_data(gw: &Gateway, data_id: &str, owner: Option<&str>) {
    if let Err(e) = gw.store.delete_data(data_id, owner).await {
        log::warn!("cannot remove the data {data_id} of a refused callback: {e:?}");
    }
}

/// The error for a refusal of the store's checks (§3.2 steps 4 and 5).
async fn refused(
    gw: &Gateway,
    svc: &Service,
    record: &CallbackRecord,
    refusal: CreateRefusal,
    now: Timestamp,
) -> ApiError {
    let name = svc.name();
    let label = match &refusal {
        CreateRefusal::BucketFull => "bucket_full",
        CreateRefusal::QueueFull => "queue_full",
        CreateRefusal::Throttled { .. } => "throttle",
        CreateRefusal::ParameterLimit { .. } => "parameter_limit",
        CreateRefusal::Duplicate => "duplicate",
    };
    crate::metrics::callback_refused(name, label);
    match refusal {
        CreateRefusal::BucketFull => {
            let full = Refusal::BucketFull {
                desired: record.desired,
                bucket: svc.callback.rules.bucket_start(record.desired),
            };
            availability::refused(gw, svc, &full, now).await
        }
        CreateRefusal::QueueFull => {
            errors::unavailable(format!("Limit of queued callbacks for {name} is reached."))
        }
        CreateRefusal::Throttled { window, .. } => errors::unavailable(format!(
            "Limit of queued callbacks for {name} is reached for interval {}s.",
            window.as_secs()
        )),
        CreateRefusal::ParameterLimit { key, value } => errors::unavailable(format!(
            "Callback for {key}={value} rejected because previous callbacks for this parameter were requested for more than {} times today.",
            svc.callback.parameter_limit
        )),
        CreateRefusal::Duplicate => ApiError::callback(
            400,
            DUPLICATE,
            format!(
                "Callback for {CUSTOMER_NUMBER}={} is already in the queue of {name}",
                record.customer_number
            ),
        ),
    }
}

fn refusal_label(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Past { .. } => "past",
        Refusal::TooFarAhead { .. } => "too_far_ahead",
        Refusal::OutsideOfficeHours { .. } => "office_hours",
        Refusal::BucketFull { .. } => "bucket_full",
    }
}

/// §3.3 immediate: ORS starts the session now; its start request's dialog is the reply. When
/// ORS cannot, nothing is kept.
async fn immediate(
    gw: &Gateway,
    svc: &Service,
    new: &NewCallback,
    stored: CallbackRecord,
) -> Result<Reply, ApiError> {
    let id = stored.id.hyphenated().to_string();
    match submit::start(gw, svc, &stored).await {
        Ok(started) => {
            crate::metrics::callback_created(svc.name(), true);
            submit::record_started(gw, svc, &stored, &started).await?;
            let node = started.node.clone();
            Ok(
                crate::ors::service::create_reply(&id, started.start_reply).traced(
                    svc.name(),
                    stored.id,
                    Some(&node),
                ),
            )
        }
        Err(e) => {
            if !gw.store.callbacks().abort(new).await? {
                log::warn!("callback {id}: ORS failed and the record could not be taken back");
            }
            let data_id = stored.data_id.hyphenated().to_string();
            forget_data(gw, &data_id, stored.owner.as_deref()).await;
            Err(e.into_api_error())
        }
    }
}

/// §3.3 scheduled: the ConfirmationDialog shape, every value a string.
fn scheduled_reply(svc: &Service, record: &CallbackRecord) -> Reply {
    let cb = &svc.callback;
    let mut o = JsonObject::with_capacity(320);
    o.field("_id", &record.id.hyphenated().to_string())
        .field("_action", "ConfirmationDialog")
        .field("_text", &cb.scheduled_text)
        .field("_ok_title", &cb.scheduled_ok_title)
        .field("_dialog_id", "0")
        .field("_callback_state", record.state.name())
        .field("_desired_time", &format_utc(record.desired))
        .field("_expiration_time", &format_utc(record.expires));
    o.reply().traced(svc.name(), record.id, None)
}

#[cfg(test)]
mod tests {
    use super::possible_number;

    #[test]
    fn number_syntax() {
        for ok in ["5551234", "+33 1 23 45 67 89", "(555) 123-4567", "12"] {
            assert!(possible_number(ok), "{ok}");
        }
        for bad in [
            "1",
            "12ab",
            "+",
            "",
            "++12",
            "123456789012345678901",
            "555.1234",
        ] {
            assert!(!possible_number(bad), "{bad}");
        }
    }
}
