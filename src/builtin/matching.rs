//! `match-interaction` (contract 5.3): the contact center matches an arriving call to the
//! service that reserved the dialled number (and code), and the reservation is released.

use crate::access::check_internal;
use crate::api::storage::fields_json;
use crate::config::ServiceConfig;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::metrics::MATCHES;
use crate::params::Options;
use crate::reply::{JsonObject, Reply};
use crate::store::{MatchOutcome, MatchRequest};

fn no_match() -> ApiError {
    ApiError::NotFound("no reservation matches this access number and code".into())
}

/// Counts a failed match against the client's address (the 429 is for the next one).
fn count_client_failure(gw: &Gateway, req: &ApiRequest) {
    if let (Some(limit), Some(ip)) = (&gw.client_limits.failed_matches, &req.client_ip) {
        let _ = limit.admit(ip, 1);
    }
}

/// Matches a call. An internal operation (the IVR calls it, not the app): it needs the
/// internal credentials or network (`gms.internal_auth`, `gms.internal_networks`), checked
/// before anything else; no `gms_user` check. Failed matches are limited per number (in the
/// store, atomically with the match) and per client address.
///
/// Without `_access_code` the number's only live reservation matches, coded or not (GMS; its
/// QA suite matches coded reservations that way); with several, 404, counted against the
/// client's address but not against the number (see [`MatchOutcome::Ambiguous`]). Service
/// option `_require_access_code: true` restores the strict rule: a coded reservation needs its
/// code, and a call without one is a failed match like a wrong code.
pub async fn match_interaction(
    gw: &Gateway,
    svc: &ServiceConfig,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    check_internal(
        &gw.config.internal,
        req.internal_key.as_deref(),
        req.authorization.as_deref(),
        req.client_ip,
    )
    .inspect_err(|_| MATCHES.unauthorized.inc())?;
    let failed_limit = gw.client_limits.failed_matches.as_ref();
    if let (Some(limit), Some(ip)) = (failed_limit, &req.client_ip) {
        limit
            .check(ip)
            .inspect_err(|_| MATCHES.client_limited.inc())?;
    }
    let opts = Options::new(svc, &req.params);
    let call = MatchRequest {
        number: opts.required("_access_number")?.to_string(),
        code: opts
            .get("_access_code")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        phone: opts
            .get("_phone_number")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        max_failed: gw.config.limits.max_failed_matches,
        require_code: opts.flag("_require_access_code", false)?,
    };
    let with_data = opts.flag("_return_user_data", false)?;
    let id = match gw.store.match_reservation(&call).await? {
        MatchOutcome::Matched(id) => id,
        MatchOutcome::NoMatch => {
            MATCHES.failed.inc();
            count_client_failure(gw, &req);
            return Err(no_match());
        }
        MatchOutcome::Ambiguous => {
            MATCHES.failed.inc();
            count_client_failure(gw, &req);
            return Err(ApiError::NotFound(
                "this access number holds several reservations: the access code is required".into(),
            ));
        }
        MatchOutcome::Locked(left) => {
            MATCHES.number_locked.inc();
            let secs = u32::try_from(left.as_millis().div_ceil(1000)).unwrap_or(u32::MAX);
            return Err(ApiError::NumberLocked(secs.max(1)));
        }
    };
    MATCHES.matched.inc();
    // The reservation is released; the service lives on, renewed by this use.
    let record = gw.store.get_service(id).await?.ok_or_else(no_match)?;
    gw.store.touch_service(&record).await?;
    let data_id = record.data_id.hyphenated().to_string();
    let mut out = JsonObject::default();
    out.field("_id", &id.hyphenated().to_string())
        .field("_data_id", &data_id);
    if with_data {
        if let Some(mut data) = gw.store.get_data(&data_id).await? {
            // Underscore keys can only come in through the Storage API; they would collide
            // with the reply's own `_id` and `_data_id`.
            data.fields.retain(|(k, _)| !k.starts_with('_'));
            fields_json(gw, &req, &data_id, &data.fields, &mut out);
        }
    }
    Ok(out.reply())
}
