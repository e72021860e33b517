//! The callback strategy's side of the ORS interface: the start request's dialog,
//! `check-queue-position` and `cancel`.

use serde_json::{json, Map, Value};

use super::{render, CallbackConfig, DialogKind, DialogSpec};
use crate::config::InstanceConfig;
use crate::form::gms_param;
use crate::http::{error, json, Reply, Request};
use crate::sim::{lock, Sim};

/// The request asking for a callback's place in the queue.
pub const QUEUE_POSITION: &str = "check-queue-position";

/// The request cancelling a callback.
const CANCEL: &str = "cancel";

/// Answers the request `name` on session `sid` when the callback strategy handles it
/// (None for the others).
pub fn ors_request(
    sim: &Sim,
    inst_cfg: &InstanceConfig,
    cfg: &CallbackConfig,
    sid: &str,
    name: &str,
    params: &Map<String, Value>,
    req: &Request,
) -> Option<Reply> {
    if cfg.start_requests.iter().any(|n| n == name) {
        return Some(start(sim, inst_cfg, cfg, sid, params, req));
    }
    match name {
        QUEUE_POSITION => Some(queue_position(sim, cfg, sid)),
        CANCEL => Some(if end_session(sim, sid) {
            json(200, &json!({}))
        } else {
            error(404, "unknown session")
        }),
        _ => None,
    }
}

/// Removes session `sid` and stops its callback; false if there was no such session.
pub fn end_session(sim: &Sim, sid: &str) -> bool {
    let Some(session) = lock(&sim.sessions).map.remove(sid) else {
        return false;
    };
    if let Some(id) = &session.service_id {
        sim.callbacks.end_session(id, sid);
    }
    true
}

/// The start request: registers the callback and answers its dialog.
fn start(
    sim: &Sim,
    inst_cfg: &InstanceConfig,
    cfg: &CallbackConfig,
    sid: &str,
    params: &Map<String, Value>,
    req: &Request,
) -> Reply {
    let found = lock(&sim.sessions).map.get(sid).map(|s| {
        let dialog = s.params.get("_sim_dialog").and_then(Value::as_str);
        (
            s.owner.clone(),
            s.service_id.clone(),
            s.service_name.clone(),
            dialog.map(str::to_string),
        )
    });
    let Some((owner, service_id, service_name, session_dialog)) = found else {
        return error(404, "unknown session");
    };
    let Some(service_id) = service_id.or_else(|| gms_param(params, req, "_service_id")) else {
        return error(400, "a callback start request needs _service_id");
    };
    let service_name = service_name.or_else(|| gms_param(params, req, "_service_name"));
    let asked = gms_param(params, req, "_sim_dialog").or(session_dialog);
    let spec = match asked {
        Some(name) => match DialogKind::parse(&name) {
            Some(kind) => DialogSpec::Named(kind),
            None => return error(400, &format!("unknown _sim_dialog {name:?}")),
        },
        None => inst_cfg
            .callback_dialog
            .clone()
            .unwrap_or_else(|| cfg.dialog.clone()),
    };
    let dialog = render(&spec, cfg, &service_id);
    sim.callbacks.count_start(&service_id, true);
    sim.callbacks.register(service_id, service_name, sid, owner);
    json(200, &dialog)
}

/// `{"_position","_eta","_total_waiting"}`, as strings like a strategy's.
fn queue_position(sim: &Sim, cfg: &CallbackConfig, sid: &str) -> Reply {
    let service_id = lock(&sim.sessions)
        .map
        .get(sid)
        .map(|s| s.service_id.clone());
    let Some(service_id) = service_id else {
        return error(404, "unknown session");
    };
    let cb = service_id
        .and_then(|id| sim.callbacks.get(&id))
        .filter(|cb| cb.session == sid);
    let (position, waiting) = match cb {
        Some(cb) => sim.callbacks.position(&cb),
        None => (0, 0),
    };
    json(
        200,
        &json!({
            "_position": position.to_string(),
            "_eta": (position * cfg.eta_per_position_s).to_string(),
            "_total_waiting": waiting.to_string(),
        }),
    )
}
