//! The Service API for ORS services (contract 6.1, 6.2): create starts a session (now or in the
//! background), requests go to the owning session, delete terminates it.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::forward::{self, Payload, Scope};
use super::session::relay;
use super::start;
use crate::api::data_ttl;
use crate::config::{
    OrsServiceConfig, ServiceConfig, StartMode, DEFAULT_SERVICE_TTL_S, DEFAULT_TTL_S,
};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::new_id;
use crate::params::Options;
use crate::reply::Reply;
use crate::store::{DataRecord, OrsSession, ServiceRecord};

fn id_only(id: &str) -> Reply {
    Reply::json(&serde_json::json!({ "_id": id }))
}

/// The create reply: the start request's JSON object with `_id` set to the gateway's id.
pub fn create_reply(id: &str, start_reply: Option<super::client::OrsReply>) -> Reply {
    let Some(r) = start_reply else {
        return id_only(id);
    };
    if !(200..300).contains(&r.status) {
        return relay(r);
    }
    match serde_json::from_slice::<Map<String, Json>>(&r.body) {
        Ok(mut obj) => {
            obj.insert("_id".into(), Json::String(id.to_string()));
            Reply::json(&obj)
        }
        Err(_) => id_only(id),
    }
}

/// `POST {root}/service/{name}` for an ORS service.
pub async fn create(
    gw: &Gateway,
    svc: &Arc<ServiceConfig>,
    conf: &OrsServiceConfig,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let opts = Options::new(svc, &req.params);
    let max_ttl = gw.config.limits.max_ttl;
    let data_ttl_s = opts.number("_ttl", DEFAULT_TTL_S, 1, max_ttl)?;
    let service_ttl = opts.number("_service_ttl", DEFAULT_SERVICE_TTL_S, 1, max_ttl)?;
    let record = ServiceRecord {
        id: new_id(),
        service: svc.name.clone(),
        data_id: new_id(),
        owner: req.gms_user.clone(),
        service_ttl: std::time::Duration::from_secs(service_ttl),
        data_ttl: data_ttl(
            &gw.config.limits,
            req.gms_user.as_deref(),
            std::time::Duration::from_secs(data_ttl_s),
        ),
        ors: Some(OrsSession::Pending),
        reservations: Vec::new(),
    };
    let id = record.id.hyphenated().to_string();
    let params = forward::parameters(svc, &req.params, &record, Scope::Start);
    // Checked before anything is stored: header mode refuses names that are not header names.
    let payload = Payload::new(conf.forward, Some(&conf.src), &params)?;
    let place = match conf.start {
        StartMode::Async => Some(gw.ors.starts.reserve()?),
        StartMode::Sync => None,
    };
    // User data is stored before the session starts: the SCXML strategy may read it at once.
    let data = DataRecord {
        owner: req.gms_user.clone(),
        fields: req.params.into_user_data(),
    };
    gw.store.create_service(record.clone(), data, None).await?;
    if let Some(place) = place {
        let reply = id_only(&id).traced(&svc.name, record.id, None);
        start::spawn(
            gw.ors.clone(),
            svc.clone(),
            conf.clone(),
            record,
            payload,
            place,
        );
        return Ok(reply);
    }
    match gw.ors.start_session(svc, conf, &payload).await {
        Ok(started) => {
            let reply = create_reply(&id, started.start_reply).traced(
                &svc.name,
                record.id,
                Some(&started.node),
            );
            let session = OrsSession::Started {
                node: started.node,
                session_id: started.session_id,
            };
            gw.store.set_ors_session(record.id, session).await?;
            Ok(reply)
        }
        Err(e) => {
            gw.store
                .delete_service(record.id, record.owner.as_deref())
                .await?;
            Err(e.into_api_error())
        }
    }
}

/// `POST {root}/service/{id}/{request}` for an ORS service, other than `update` and `status`
/// (`status.rs`).
pub async fn request(
    gw: &Gateway,
    svc: &Arc<ServiceConfig>,
    conf: &OrsServiceConfig,
    record: ServiceRecord,
    request: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let params = forward::parameters(svc, &req.params, &record, Scope::Request);
    let payload = Payload::new(conf.forward, None, &params)?;
    let user_data = req.params.into_user_data();
    if !user_data.is_empty() {
        gw.merge_user_data(&record, user_data).await?;
    }
    let reply = gw.ors.request(svc, &record, request, &payload).await?;
    gw.store.touch_service(&record).await?;
    let node = match &record.ors {
        Some(OrsSession::Started { node, .. }) => Some(node.as_str()),
        _ => None,
    };
    Ok(relay(reply).traced(&svc.name, record.id, node))
}

/// After a delete: terminate the session, best effort (contract 6.2).
pub async fn terminate(
    gw: &Gateway,
    svc: &ServiceConfig,
    conf: &OrsServiceConfig,
    record: &ServiceRecord,
) {
    let params = forward::parameters(
        svc,
        &crate::params::Params::default(),
        record,
        Scope::Request,
    );
    if let Ok(payload) = Payload::new(conf.forward, None, &params) {
        gw.ors.terminate(svc, record, &payload).await;
    }
}
