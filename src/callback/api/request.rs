//! Requests on a callback (contract `gms-callback.md` §8): `GET|POST {root}/service/{id}/{request}`
//! with a callback's id is relayed to its ORS session as `request/{request}` (a GET's query
//! parameters as a POST's), and ORS's reply goes back as it is. A callback not yet submitted
//! has no session (400); a completed one is over (404). User keys go into its user data, as
//! for every ORS service (`gms-api.md` §6.2).

use super::{errors, visible, Service};
use crate::callback::record::{CallbackRecord, State};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::parse_id;
use crate::ors::forward::{parameters_of, Payload, Scope};
use crate::ors::session::relay;
use crate::reply::Reply;
use crate::store::{DataRecord, PutMode};

/// The live callback with id `id`, in any callback service, if `req` may see it.
pub async fn find_any(
    gw: &Gateway,
    id: &str,
    req: &ApiRequest,
) -> Result<Option<CallbackRecord>, ApiError> {
    let Some(uuid) = parse_id(id) else {
        return Ok(None);
    };
    let services = &gw.config.callback.services;
    if services.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    Ok(gw
        .store
        .callbacks()
        .find(&names, uuid)
        .await?
        .filter(|r| visible(gw, req, r)))
}

/// Relays `request` to `record`'s ORS session.
pub async fn request(
    gw: &Gateway,
    record: CallbackRecord,
    request: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let id = record.id.hyphenated().to_string();
    let svc = Service::named(gw, &record.service).map_err(|_| errors::no_callback(&id))?;
    req.params.check_service_params()?;
    let ors = match (record.state, &record.ors) {
        (State::Completed, _) => {
            return Err(ApiError::callback(
                404,
                errors::NOT_FOUND,
                format!("Callback {id} is COMPLETED: its ORS session is over"),
            ))
        }
        (_, Some(ors)) if record.state.is_active() => ors.clone(),
        _ => {
            return Err(errors::invalid_state(format!(
                "Callback {id} is not submitted yet"
            )))
        }
    };
    let params = parameters_of(
        &svc.config,
        &req.params,
        record.id,
        record.data_id,
        Scope::Request,
    );
    let payload = Payload::new(svc.callback.ors.forward, None, &params)?;
    let user_data = req.params.into_user_data();
    if !user_data.is_empty() {
        let data_id = record.data_id.hyphenated().to_string();
        let ttl = record
            .expires
            .duration_since(super::now())
            .unsigned_abs()
            .max(std::time::Duration::from_secs(1));
        let owner = record.owner.as_deref();
        if !gw
            .store
            .merge_data(&data_id, owner, user_data.clone(), ttl)
            .await?
        {
            let data = DataRecord {
                owner: record.owner.clone(),
                fields: user_data,
            };
            gw.store.put_data(&data_id, data, ttl, PutMode::New).await?;
        }
    }
    let reply = gw
        .ors
        .on_session(&svc.config, &ors.node, &ors.session, request, &payload)
        .await?;
    Ok(relay(reply).traced(svc.name(), record.id, Some(&ors.node)))
}
