//! `match-interaction` (contract 5.3): the contact center matches an arriving call to the
//! service that reserved the dialled number (and code), and the reservation is released.

use crate::api::storage::fields_json;
use crate::config::ServiceConfig;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::params::Options;
use crate::reply::{JsonObject, Reply};
use crate::store::MatchRequest;

fn no_match() -> ApiError {
    ApiError::NotFound("no reservation matches this access number and code".into())
}

/// Matches a call; no `gms_user` check: the contact center calls it, not the app.
pub async fn match_interaction(
    gw: &Gateway,
    svc: &ServiceConfig,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
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
    };
    let with_data = opts.flag("_return_user_data", false)?;
    let id = gw
        .store
        .match_reservation(&call)
        .await?
        .ok_or_else(no_match)?;
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
