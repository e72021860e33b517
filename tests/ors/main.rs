//! ORS-based services (`_type: ors`, contract sections 6, 4.2, 4.3, 8): session start,
//! parameter forwarding, node selection and failover, requests, delete, the status cache,
//! status push, async start and record lifetimes.
//!
//! Every test starts its own `ors-sim` (one or two ORS nodes sharing sessions) and its own
//! gateway pointed at it, and reads back what the gateway sent through the sim's request log
//! (`/sim/log`), counters (`/sim/stats`) and sessions (`/sim/sessions`).
//!
//! This file holds the helpers; the tests are in one module per concern: `start` (create and
//! `_ors_forward`), `nodes` (node selection and failover), `requests` (requests on a running
//! session, delete), `status` (the status cache, status push), `lifetime` (async start,
//! record lifetime), `check` (`-t` on ORS options).

#[path = "../common/mod.rs"]
mod common;

mod check;
mod lifetime;
mod nodes;
mod requests;
mod start;
mod status;

use std::fs;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Map, Value};

/// The ORS service of most tests (its name lets it take requests, contract 4.2).
const SVC: &str = "request-inbound-poll";
/// Its SCXML application, sent to ORS as `src`.
const SRC: &str = "http://scxml.example.com/poll.scxml";
/// Timeouts generous enough for a loaded 2-core machine.
const ORS_BASE: &str =
    "max_ors_request_attempts: 3, connect_timeout_ms: 500, socket_timeout_ms: 1000";
/// The gateway's own options: never sent to ORS.
const GATEWAY_OPTIONS: [&str; 12] = [
    "_type",
    "_service",
    "_ors",
    "_ors_lb_strategy",
    "_ors_forward",
    "_ors_start",
    "_ors_start_timeout_s",
    "_start_request",
    "_status_ttl_ms",
    "_status_push_ttl_ms",
    "_overwritable_options",
    "_service_ttl",
];

// Gateway configuration.

/// The gms block of an ORS test: admin credentials, `gms.ors`, one ORS service.
struct Cfg {
    name: String,
    nodes: Vec<String>,
    ors: String,
    opts: Vec<(String, String)>,
}

/// An ORS service named `SVC` on these node URLs, with `ORS_BASE` timeouts.
fn cfg(nodes: Vec<String>) -> Cfg {
    Cfg {
        name: SVC.to_string(),
        nodes,
        ors: ORS_BASE.to_string(),
        opts: Vec::new(),
    }
}

impl Cfg {
    /// Another service name.
    fn name(mut self, name: &str) -> Cfg {
        self.name = name.to_string();
        self
    }

    /// Replace the `gms.ors` settings (the inside of the flow map).
    fn ors(mut self, ors: &str) -> Cfg {
        self.ors = ors.to_string();
        self
    }

    /// Add `health_check_interval_ms: 200` to `gms.ors`.
    fn health(mut self) -> Cfg {
        self.ors.push_str(", health_check_interval_ms: 200");
        self
    }

    /// A service option.
    fn opt(mut self, key: &str, value: &str) -> Cfg {
        self.opts.push((key.to_string(), value.to_string()));
        self
    }

    fn yaml(&self) -> String {
        let mut y = String::new();
        y.push_str("admin: {user: admin, password: secret}\n");
        y.push_str(&format!("ors: {{{}}}\n", self.ors));
        y.push_str("services:\n");
        y.push_str(&format!("  {}:\n", self.name));
        y.push_str("    _type: ors\n");
        y.push_str(&format!("    _service: {}\n", json!(SRC)));
        y.push_str(&format!("    _ors: {}\n", json!(self.nodes.join(","))));
        for (k, v) in &self.opts {
            // A JSON string is a valid YAML double-quoted scalar.
            y.push_str(&format!("    {k}: {}\n", json!(v)));
        }
        y
    }

    fn start(&self) -> Gateway {
        Gateway::start(&self.yaml())
    }
}

/// The base URLs of all sim instances.
fn nodes(sim: &OrsSim) -> Vec<String> {
    (0..sim.len()).map(|i| sim.url(i)).collect()
}

/// `http://127.0.0.1:<port>` of a port nobody listens on (free a moment ago).
fn dead_node() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

// Gateway calls.

fn request_url(gw: &Gateway, id: &str, request: &str) -> String {
    gw.url(&format!("/genesys/1/service/{id}/{request}"))
}

fn status(gw: &Gateway, id: &str) -> Resp {
    post_empty(&request_url(gw, id, "status"), &[])
}

/// A status reply that must be 200 JSON.
fn status_ok(gw: &Gateway, id: &str) -> Value {
    ok_json(&status(gw, id))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn push_status(gw: &Gateway, id: &str, body: &Value, auth: Option<&str>) -> Resp {
    let url = gw.url(&format!("/genesys/1/admin/service/{id}/status"));
    match auth {
        Some(a) => post_json(&url, body, &[("Authorization", a)]),
        None => post_json(&url, body, &[]),
    }
}

/// Create `SVC` and return `(reply, _id)`.
fn create(gw: &Gateway, fields: &[(&str, &str)]) -> (Value, String) {
    let v = gw.create_ok(SVC, fields);
    let id = str_field(&v, "_id").to_string();
    assert!(is_uuid_v4(&id), "_id is not a UUID v4: {v}");
    (v, id)
}

// Simulator helpers.

fn log_entries(sim: &OrsSim) -> Vec<Value> {
    sim.log()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("/sim/log is not an array"))
}

fn path_of(e: &Value) -> &str {
    e["path"].as_str().unwrap_or("")
}

fn instance_of(e: &Value) -> &str {
    e["instance"].as_str().unwrap_or("")
}

/// Logged `POST /scxml/session/start` requests.
fn starts(sim: &OrsSim) -> Vec<Value> {
    log_entries(sim)
        .into_iter()
        .filter(|e| path_of(e) == "/scxml/session/start")
        .collect()
}

/// Logged `.../request/{name}` requests.
fn requests_named(sim: &OrsSim, name: &str) -> Vec<Value> {
    let suffix = format!("/request/{name}");
    log_entries(sim)
        .into_iter()
        .filter(|e| path_of(e).starts_with("/scxml/session/") && path_of(e).ends_with(&suffix))
        .collect()
}

/// How many of `entries` one instance received.
fn on(entries: &[Value], sim: &OrsSim, i: usize) -> usize {
    let addr = sim.addr(i);
    entries.iter().filter(|e| instance_of(e) == addr).count()
}

/// The service id an ORS request carried (form parameter or header).
fn carried_id(e: &Value) -> Option<&str> {
    e["params"]["_service_id"]
        .as_str()
        .or_else(|| e["headers"]["x-gms-service_id"].as_str())
}

/// The start request of service `id`.
fn start_of(sim: &OrsSim, id: &str) -> Value {
    let all = starts(sim);
    let mine: Vec<&Value> = all.iter().filter(|e| carried_id(e) == Some(id)).collect();
    assert_eq!(
        mine.len(),
        1,
        "expected exactly one start for service {id}; starts: {all:?}"
    );
    mine[0].clone()
}

/// The `_data_id` the gateway sent with the start of service `id`.
fn data_id_of(sim: &OrsSim, id: &str) -> String {
    let e = start_of(sim, id);
    e["params"]["_data_id"]
        .as_str()
        .or_else(|| e["headers"]["x-gms-data_id"].as_str())
        .unwrap_or_else(|| panic!("start carries no _data_id: {e}"))
        .to_string()
}

/// `GET /sim/sessions`: session id -> {owner, params, age_ms}.
fn sessions(sim: &OrsSim) -> Map<String, Value> {
    let r = get(&format!("{}/sim/sessions", sim.control_url()), &[]);
    assert_eq!(r.status, 200, "GET /sim/sessions: {}", r.text());
    r.json()
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("/sim/sessions is not an object"))
}

/// The ORS session started for service `id` (found by its `_service_id` parameter).
fn session_of(sim: &OrsSim, id: &str) -> Option<String> {
    sessions(sim)
        .into_iter()
        .find(|(_, s)| s["params"]["_service_id"].as_str() == Some(id))
        .map(|(sid, _)| sid)
}

/// `/sim/stats`: the count of one request kind over all instances.
fn kind_count(sim: &OrsSim, kind: &str) -> u64 {
    let r = get(&format!("{}/sim/stats", sim.control_url()), &[]);
    assert_eq!(r.status, 200, "GET /sim/stats: {}", r.text());
    r.json()
        .as_object()
        .unwrap_or_else(|| panic!("/sim/stats is not an object"))
        .values()
        .map(|i| i["by_kind"][kind].as_u64().unwrap_or(0))
        .sum()
}

/// A one-step status script: ORS answers `body` to every status request.
fn fixed_status(body: &Value) -> Value {
    json!([{"after_ms": 0, "body": body}])
}

/// The sim's default status for a young session.
fn waiting() -> Value {
    json!({"status": "waiting-for-agent", "dialog": "/waitingforagent.html"})
}

/// Call `f` every `every` until it returns Some, at most `limit` long (and a bounded
/// number of times).
fn poll<T>(limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    let max_rounds = (limit.as_millis() / every.as_millis().max(1)) as usize + 2;
    for _ in 0..max_rounds {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(every);
    }
    None
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
