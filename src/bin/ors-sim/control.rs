//! The control API under `/sim/...`: instances' failure injection, the log, stats,
//! sessions and the callback mode.

use std::collections::HashMap;
use std::time::Duration;

use http::Method;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::callback::{CallbackConfig, Step, StepResult};
use crate::config::{InstanceConfig, Mode};
use crate::form::{decode_segment, query_pairs};
use crate::http::{error, json, json_bytes, method_not_allowed, not_found, Reply, Request};
use crate::record::LogEntry;
use crate::sim::{lock, Instance, Sim};

/// A PUT that switches refuse mode answers only once the listener really is down (or up
/// again), so a test can act on the reply without sleeping.
const MODE_SWITCH_WAIT: Duration = Duration::from_secs(2);

/// Answers a `/sim/...` request.
pub async fn handle(sim: &Sim, req: &Request) -> Reply {
    let m = &req.method;
    match req.path() {
        "/sim/instances" => match *m {
            Method::GET => {
                let mut all = Map::new();
                for i in &sim.instances {
                    all.insert(i.name.to_string(), config_json(&i.config()));
                }
                json(200, &all)
            }
            _ => method_not_allowed("GET"),
        },
        "/sim/log" => match *m {
            Method::GET => log_reply(sim, req.query()),
            Method::DELETE => {
                let cleared = {
                    let mut log = lock(&sim.log);
                    let n = log.entries.len();
                    log.entries.clear();
                    n
                };
                sim.instances.iter().for_each(|i| i.stats.reset());
                json(200, &json!({ "cleared": cleared }))
            }
            _ => method_not_allowed("GET, DELETE"),
        },
        "/sim/stats" => match *m {
            Method::GET => {
                let all: Map<String, Value> = sim
                    .instances
                    .iter()
                    .map(|i| (i.name.to_string(), i.stats.json()))
                    .collect();
                json(200, &all)
            }
            _ => method_not_allowed("GET"),
        },
        "/sim/sessions" => match *m {
            Method::GET => sessions_reply(sim),
            Method::DELETE => {
                lock(&sim.sessions).clear();
                json(200, &json!({}))
            }
            _ => method_not_allowed("GET, DELETE"),
        },
        "/sim/callback" => match *m {
            Method::GET => json(200, &sim.callbacks.config().as_deref()),
            Method::PUT => {
                match parse::<CallbackConfig>(&req.body, "config", CallbackConfig::validate) {
                    Ok(c) => {
                        let reply = json(200, &c);
                        sim.callbacks.set_config(Some(c));
                        reply
                    }
                    Err(e) => error(400, &e),
                }
            }
            Method::DELETE => {
                sim.callbacks.set_config(None);
                json(200, &json!({}))
            }
            _ => method_not_allowed("GET, PUT, DELETE"),
        },
        "/sim/callbacks" => match *m {
            Method::GET => json(200, &sim.callbacks.views()),
            Method::DELETE => {
                sim.callbacks.clear();
                json(200, &json!({}))
            }
            _ => method_not_allowed("GET, DELETE"),
        },
        "/sim/starts" => match *m {
            Method::GET => json(200, &sim.callbacks.starts()),
            Method::DELETE => {
                sim.callbacks.clear_starts();
                json(200, &json!({}))
            }
            _ => method_not_allowed("GET, DELETE"),
        },
        p => {
            if let Some(name) = p.strip_prefix("/sim/instances/") {
                let Some(inst) = sim.instance(&decode_segment(name)) else {
                    return error(404, "unknown instance");
                };
                return match *m {
                    Method::GET => json(200, &config_json(&inst.config())),
                    Method::PUT => put_config(inst, &req.body).await,
                    _ => method_not_allowed("GET, PUT"),
                };
            }
            match p.strip_prefix("/sim/callbacks/") {
                Some(rest) => callback_reply(sim, rest, req).await,
                None => not_found(),
            }
        }
    }
}

/// A JSON body as `T` (a `what`), checked by `validate`; else the message of the 400.
fn parse<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<T, String> {
    let v: T = serde_json::from_slice(body).map_err(|e| format!("bad {what}: {e}"))?;
    validate(&v).map_err(|e| format!("bad {what}: {e}"))?;
    Ok(v)
}

fn config_json(cfg: &InstanceConfig) -> Value {
    serde_json::to_value(cfg).unwrap_or(Value::Null)
}

async fn put_config(inst: &Instance, body: &[u8]) -> Reply {
    let cfg = match parse::<InstanceConfig>(body, "config", InstanceConfig::validate) {
        Ok(c) => c,
        Err(e) => return error(400, &e),
    };
    let refuse = cfg.mode == Mode::Refuse;
    let reply = config_json(&cfg);
    inst.set_config(cfg);
    inst.refuse.send_if_modified(|v| {
        let changed = *v != refuse;
        *v = refuse;
        changed
    });
    let mut rx = inst.listening.subscribe();
    let settled = matches!(
        tokio::time::timeout(MODE_SWITCH_WAIT, rx.wait_for(|l| *l != refuse)).await,
        Ok(Ok(_))
    );
    if settled {
        json(200, &reply)
    } else {
        json(
            503,
            &json!({"error": "config stored, but the listener could not be rebound yet; still retrying", "config": reply}),
        )
    }
}

fn log_reply(sim: &Sim, query: &str) -> Reply {
    let mut prefix = None;
    let mut instance = None;
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "path_prefix" => prefix = Some(v),
            "instance" => instance = Some(v),
            _ => {}
        }
    }
    let log = lock(&sim.log);
    let picked: Vec<&LogEntry> = log
        .entries
        .iter()
        .filter(|e| prefix.as_deref().is_none_or(|p| e.path.starts_with(p)))
        .filter(|e| instance.as_deref().is_none_or(|i| *e.instance == *i))
        .collect();
    let body = serde_json::to_vec(&picked).unwrap_or_default();
    drop(log);
    json_bytes(200, body)
}

/// A session as listed by `GET /sim/sessions`, borrowed so that listing a full table does
/// not copy every session's parameters first.
#[derive(Serialize)]
struct SessionView<'a> {
    owner: &'a str,
    params: &'a Map<String, Value>,
    age_ms: u64,
}

fn sessions_reply(sim: &Sim) -> Reply {
    let sessions = lock(&sim.sessions);
    let all: HashMap<&str, SessionView<'_>> = sessions
        .map
        .iter()
        .map(|(id, s)| {
            let view = SessionView {
                owner: &s.owner,
                params: &s.params,
                age_ms: s.started.elapsed().as_millis() as u64,
            };
            (id.as_str(), view)
        })
        .collect();
    let body = serde_json::to_vec(&all).unwrap_or_default();
    drop(all);
    drop(sessions);
    json_bytes(200, body)
}

/// `GET /sim/callbacks/{id}` and `POST /sim/callbacks/{id}/state`.
async fn callback_reply(sim: &Sim, rest: &str, req: &Request) -> Reply {
    let (id, state) = match rest.strip_suffix("/state") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let Some(cb) = sim.callbacks.get(&decode_segment(id)) else {
        return error(404, "unknown callback");
    };
    match (state, &req.method) {
        (false, &Method::GET) => json(200, &cb.view()),
        (false, _) => method_not_allowed("GET"),
        (true, &Method::POST) => {
            let explicit = if req.body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                match parse::<Step>(&req.body, "step", Step::validate) {
                    Ok(s) => Some(s),
                    Err(e) => return error(400, &e),
                }
            };
            match sim.callbacks.step(&cb, explicit, None).await {
                StepResult::Taken(report) => {
                    json(200, &json!({"callback": cb.view(), "report": report}))
                }
                _ => error(409, "the callback has no step left"),
            }
        }
        (true, _) => method_not_allowed("POST"),
    }
}
