//! What an instance answers: the ORS endpoints and the echo, after failure injection.

use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, LOCATION};
use http::Method;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::callback::{self, CallbackConfig, QUEUE_POSITION};
use crate::config::{select_status, valid_reply_status, InstanceConfig, Mode, StartReply};
use crate::form::{decode_form, decode_segment, form_params, gms_param};
use crate::http::{
    empty, error, json, method_not_allowed, not_found, text, with_header, HeadersJson, Outcome,
    Reply, Request,
};
use crate::record::Kind;
use crate::sessions::Session;
use crate::sim::{lock, Instance, Sim};

static X_SIM_INSTANCE: HeaderName = HeaderName::from_static("x-sim-instance");

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Start,
    Request { sid: String, name: String },
    Event { sid: String },
    Terminate { sid: String },
    OrsUnknown,
    Echo,
}

impl Route {
    /// The route of a raw path.
    pub fn parse(path: &str) -> Route {
        if !(path == "/scxml" || path.starts_with("/scxml/")) {
            return Route::Echo;
        }
        let Some(rest) = path.strip_prefix("/scxml/session/") else {
            return Route::OrsUnknown;
        };
        if rest == "start" {
            return Route::Start;
        }
        let mut parts = rest.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(sid), Some("request"), Some(name), None)
                if !sid.is_empty() && !name.is_empty() =>
            {
                Route::Request {
                    sid: decode_segment(sid),
                    name: decode_segment(name),
                }
            }
            (Some(sid), Some("event"), Some(name), None) if !sid.is_empty() && !name.is_empty() => {
                Route::Event {
                    sid: decode_segment(sid),
                }
            }
            (Some(sid), Some("terminate"), None, None) if !sid.is_empty() => Route::Terminate {
                sid: decode_segment(sid),
            },
            _ => Route::OrsUnknown,
        }
    }

    /// The kind counted in `/sim/stats`.
    pub fn kind(&self) -> Kind {
        match self {
            Route::Start => Kind::Start,
            Route::Request { name, .. } if name == "status" => Kind::Status,
            Route::Request { .. } => Kind::Request,
            Route::Event { .. } => Kind::Event,
            Route::Terminate { .. } => Kind::Terminate,
            Route::OrsUnknown => Kind::Other,
            Route::Echo => Kind::Echo,
        }
    }
}

/// Serves an ORS or echo request on `inst`, whose config is `cfg`.
pub async fn handle(sim: &Sim, inst: &Instance, cfg: &InstanceConfig, req: &Request) -> Outcome {
    if cfg.mode == Mode::Refuse {
        return Outcome::Close;
    }
    let route = Route::parse(req.path());
    let ors = route != Route::Echo;
    let callbacks = sim.callbacks.config();
    // A callback strategy answers its queue position to a GET too (gms-callback.md 8).
    let get_allowed = callbacks.is_some()
        && matches!(&route, Route::Request { name, .. } if name == QUEUE_POSITION);
    let parsed = if get_allowed && req.method == Method::GET {
        decode_form(req.query().as_bytes())
    } else {
        form_params(req)
    };
    let (params, form_error) = match parsed {
        Ok(p) => (p, None),
        Err(e) => (Map::new(), Some(e)),
    };
    sim.record(inst, route.kind(), req, &params);
    if cfg.mode == Mode::Hang {
        return Outcome::Hang;
    }
    if cfg.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.latency_ms)).await;
    }
    let allowed = req.method == Method::POST || (get_allowed && req.method == Method::GET);
    let resp = match (cfg.mode, &cfg.redirect_to) {
        (Mode::Error, _) => error(cfg.error_status, "injected failure"),
        (Mode::Redirect, Some(to)) if ors => redirect(to, req),
        _ if !ors => echo(inst, req),
        _ if route != Route::OrsUnknown && !allowed => {
            method_not_allowed(if get_allowed { "GET, POST" } else { "POST" })
        }
        _ => match form_error {
            Some(e) => error(400, &format!("malformed form body: {e}")),
            None => handle_ors(sim, inst, cfg, callbacks.as_deref(), route, params, req),
        },
    };
    Outcome::Reply(with_header(
        resp,
        X_SIM_INSTANCE.clone(),
        inst.header.clone(),
    ))
}

fn redirect(to: &str, req: &Request) -> Reply {
    let mut loc = format!("{}{}", to.trim_end_matches('/'), req.path());
    if !req.query().is_empty() {
        loc.push('?');
        loc.push_str(req.query());
    }
    match HeaderValue::from_str(&loc) {
        Ok(v) => with_header(empty(307), LOCATION, v),
        Err(_) => error(500, "redirect target is not a valid header value"),
    }
}

fn unknown_session() -> Reply {
    error(404, "unknown session")
}

fn handle_ors(
    sim: &Sim,
    inst: &Instance,
    cfg: &InstanceConfig,
    callbacks: Option<&CallbackConfig>,
    route: Route,
    params: Map<String, Value>,
    req: &Request,
) -> Reply {
    match route {
        Route::Start => {
            if !matches!(params.get("src"), Some(Value::String(s)) if !s.is_empty()) {
                return error(400, "src is required");
            }
            let sid = uuid::Uuid::new_v4().simple().to_string();
            let service_id = gms_param(&params, req, "_service_id");
            if let (Some(id), Some(_)) = (&service_id, callbacks) {
                sim.callbacks.count_start(id, false);
            }
            let session = Session {
                owner: inst.name.clone(),
                service_id,
                service_name: gms_param(&params, req, "_service_name"),
                params,
                started: Instant::now(),
            };
            lock(&sim.sessions).insert(sid.clone(), session);
            match cfg.start_reply {
                StartReply::Json => json(200, &json!({ "sessionid": sid })),
                StartReply::Text => text(200, sid),
            }
        }
        Route::Request { sid, name } => {
            let started = lock(&sim.sessions).map.get(&sid).map(|s| s.started);
            let Some(started) = started else {
                return unknown_session();
            };
            if let Some(cb) = callbacks {
                if let Some(r) = callback::ors_request(sim, cfg, cb, &sid, &name, &params, req) {
                    return r;
                }
            }
            if name == "status" {
                let script = cfg.status_script.as_deref().unwrap_or(&sim.status_script);
                let elapsed = started.elapsed().as_millis() as u64;
                return match select_status(script, elapsed) {
                    Some(body) => json(200, body),
                    None => json(200, &json!({})),
                };
            }
            if name == "gms.start" {
                let seen = params.get("_service_id").cloned().unwrap_or(Value::Null);
                return json(
                    200,
                    &json!({"message": "started", "sessionid": sid, "_id_seen": seen}),
                );
            }
            if let Some(code) = name
                .strip_prefix("fail-")
                .and_then(|c| c.parse::<u16>().ok())
            {
                if valid_reply_status(code) {
                    return error(code, "requested failure");
                }
            }
            json(
                200,
                &json!({"request": name, "sessionid": sid, "params": params}),
            )
        }
        Route::Event { sid } => {
            if lock(&sim.sessions).map.contains_key(&sid) {
                json(200, &json!({}))
            } else {
                unknown_session()
            }
        }
        Route::Terminate { sid } => {
            if callback::end_session(sim, &sid) {
                json(200, &json!({}))
            } else {
                unknown_session()
            }
        }
        Route::OrsUnknown | Route::Echo => not_found(),
    }
}

/// The echo reply, serialized from borrows of the request.
#[derive(Serialize)]
struct Echo<'a> {
    instance: &'a str,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: HeadersJson<'a>,
    body: std::borrow::Cow<'a, str>,
    body_len: usize,
}

fn echo(inst: &Instance, req: &Request) -> Reply {
    json(
        200,
        &Echo {
            instance: &inst.name,
            method: req.method.as_str(),
            path: req.path(),
            query: req.query(),
            headers: HeadersJson(&req.headers),
            body: String::from_utf8_lossy(&req.body),
            body_len: req.body.len(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::parse("/scxml/session/start"), Route::Start);
        assert_eq!(
            Route::parse("/scxml/session/abc/request/gms%2Estart"),
            Route::Request {
                sid: "abc".into(),
                name: "gms.start".into()
            }
        );
        assert_eq!(
            Route::parse("/scxml/session/abc/request/status").kind(),
            Kind::Status
        );
        assert_eq!(
            Route::parse("/scxml/session/abc/event/e1"),
            Route::Event { sid: "abc".into() }
        );
        assert_eq!(
            Route::parse("/scxml/session/abc/terminate"),
            Route::Terminate { sid: "abc".into() }
        );
        // "+" is literal in a path; only queries and form bodies read it as a space.
        assert_eq!(
            Route::parse("/scxml/session/a+b%20c/terminate"),
            Route::Terminate {
                sid: "a+b c".into()
            }
        );
        assert_eq!(Route::parse("/scxml/session//terminate"), Route::OrsUnknown);
        assert_eq!(
            Route::parse("/scxml/session/a/request/b/c"),
            Route::OrsUnknown
        );
        assert_eq!(Route::parse("/scxml"), Route::OrsUnknown);
        assert_eq!(Route::parse("/scxmlx"), Route::Echo);
        assert_eq!(Route::parse("/health"), Route::Echo);
    }
}
