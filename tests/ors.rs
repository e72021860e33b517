//! ORS-based services (`_type: ors`, contract sections 6, 4.2, 4.3, 8): session start,
//! parameter forwarding, node selection and failover, requests, delete, the status cache,
//! status push, async start and record lifetimes.
//!
//! Every test starts its own `ors-sim` (one or two ORS nodes sharing sessions) and its own
//! gateway pointed at it, and reads back what the gateway sent through the sim's request log
//! (`/sim/log`), counters (`/sim/stats`) and sessions (`/sim/sessions`).

mod common;

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

// ---------------------------------------------------------------------------
// Gateway configuration
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Gateway calls
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Simulator helpers
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Start (create)
// ---------------------------------------------------------------------------

#[test]
fn create_starts_a_session_then_sends_gms_start_and_returns_its_reply() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v["message"], "started", "not the gms.start reply: {v}");
    assert_eq!(
        v["_id_seen"],
        id.as_str(),
        "ORS saw another _service_id: {v}"
    );
    let sid = str_field(&v, "sessionid").to_string();

    let st = start_of(&sim, &id);
    assert_eq!(st["method"], "POST");
    let ct = st["headers"]["content-type"].as_str().unwrap_or("");
    assert!(
        ct.starts_with("application/x-www-form-urlencoded"),
        "start is not form-urlencoded: {st}"
    );
    assert_eq!(st["params"]["src"], SRC);
    assert_eq!(st["params"]["_service_id"], id.as_str());
    assert_eq!(st["params"]["_service_name"], SVC);
    assert!(
        st["params"]["_data_id"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "start lacks _data_id: {st}"
    );
    assert_eq!(starts(&sim).len(), 1, "one create, one start");
    assert!(sessions(&sim).contains_key(&sid), "no ORS session {sid}");

    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1, "exactly one gms.start: {gs:?}");
    assert_eq!(gs[0]["method"], "POST");
    assert_eq!(
        path_of(&gs[0]),
        format!("/scxml/session/{sid}/request/gms.start")
    );
    assert_eq!(instance_of(&gs[0]), instance_of(&st), "gms.start elsewhere");
}

#[test]
fn gms_start_carries_the_same_parameters_as_the_start() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_foo", "configured").start();
    let (_, id) = create(&gw, &[("_bar", "from client"), ("color", "red")]);
    let mut st = start_of(&sim, &id)["params"].clone();
    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1, "{gs:?}");
    let mut gp = gs[0]["params"].clone();
    // Whether `src` is repeated on gms.start is left open; compare the rest.
    st.as_object_mut().map(|o| o.remove("src"));
    gp.as_object_mut().map(|o| o.remove("src"));
    assert_eq!(gp, st, "gms.start and start parameters differ");
    assert_eq!(gp["_foo"], "configured");
    assert_eq!(gp["_bar"], "from client");
}

#[test]
fn start_sends_underscore_params_but_not_user_data_files_or_gateway_options() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_ors_lb_strategy", "circular")
        .opt("_status_ttl_ms", "1000")
        .opt("_status_push_ttl_ms", "30000")
        .opt("_ors_forward", "params")
        .opt("_ors_start", "sync")
        .opt("_ors_start_timeout_s", "30")
        .opt("_start_request", "gms.start")
        .opt("_overwritable_options", "_none")
        .opt("_service_ttl", "3600")
        .opt("_foo", "configured")
        .start();
    let mp = Multipart::new()
        .text("_extra", "x y")
        .text("color", "red")
        .text("_status_ttl_ms", "5")
        .text("_ors", "http://127.0.0.1:9/")
        .file("doc", "scan.png", "image/png", &fake_jpeg(500));
    let v = ok_json(&post_multipart(&gw.service_url(SVC), &mp, &[]));
    let id = str_field(&v, "_id").to_string();
    let st = start_of(&sim, &id);
    let data_id = data_id_of(&sim, &id);
    assert_eq!(
        st["params"],
        json!({
            "src": SRC,
            "_foo": "configured",
            "_extra": "x y",
            "_service_id": id,
            "_data_id": data_id,
            "_service_name": SVC,
        }),
        "start parameters"
    );
    for opt in GATEWAY_OPTIONS {
        assert!(st["params"].get(opt).is_none(), "{opt} sent to ORS: {st}");
    }
}

#[test]
fn configured_options_win_over_request_params_unless_overwritable() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_foo", "configured")
        .opt("_bar", "fixed")
        .opt("_overwritable_options", "_foo")
        .start();
    let (_, id) = create(&gw, &[("_foo", "client"), ("_bar", "client")]);
    let st = start_of(&sim, &id);
    assert_eq!(st["params"]["_foo"], "client", "_foo is overwritable: {st}");
    assert_eq!(st["params"]["_bar"], "fixed", "_bar is not: {st}");

    // Without a request value, the configured one is sent.
    let (_, id2) = create(&gw, &[]);
    let st2 = start_of(&sim, &id2);
    assert_eq!(st2["params"]["_foo"], "configured");
    assert_eq!(st2["params"]["_bar"], "fixed");
}

#[test]
fn client_values_for_reserved_params_are_ignored() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let fake = uuid::Uuid::new_v4().to_string();
    let (v, id) = create(
        &gw,
        &[
            ("_service_id", &fake),
            ("_data_id", "client-data"),
            ("_service_name", "client-name"),
        ],
    );
    assert_ne!(id, fake, "the client chose the service id");
    assert_eq!(v["_id_seen"], id.as_str(), "{v}");
    let st = start_of(&sim, &id);
    assert_eq!(st["params"]["_service_id"], id.as_str());
    assert_eq!(st["params"]["_service_name"], SVC);
    assert_ne!(st["params"]["_data_id"], "client-data", "{st}");
    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1);
    assert_eq!(gs[0]["params"]["_service_id"], id.as_str());
    assert_eq!(gs[0]["params"]["_service_name"], SVC);
}

#[test]
fn empty_start_request_skips_gms_start_and_replies_with_the_id_only() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_start_request", "").start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v, json!({"_id": id}));
    assert_eq!(starts(&sim).len(), 1);
    assert!(session_of(&sim, &id).is_some(), "no ORS session started");
    assert_eq!(kind_count(&sim, "request"), 0, "a request was sent");
    assert!(requests_named(&sim, "gms.start").is_empty());
}

#[test]
fn plain_text_session_id_from_ors_is_accepted() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"start_reply": "text"}));
    let gw = cfg(nodes(&sim)).start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v["message"], "started", "{v}");
    assert_eq!(v["_id_seen"], id.as_str());
    let sid = session_of(&sim, &id).expect("an ORS session");
    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1);
    assert_eq!(
        path_of(&gs[0]),
        format!("/scxml/session/{sid}/request/gms.start")
    );
}

#[test]
fn create_user_data_is_stored_under_the_data_id() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let doc = fake_jpeg(2000);
    let mp = Multipart::new()
        .text("color", "red")
        .text("size", "L")
        .text("_param", "not data")
        .file("doc", "scan.png", "image/png", &doc);
    let v = ok_json(&post_multipart(&gw.service_url(SVC), &mp, &[]));
    let id = str_field(&v, "_id");
    let data_id = data_id_of(&sim, id);
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &[])),
        json!({"color": "red", "size": "L", "doc": gw.binary_url(&data_id, "doc")})
    );
    let bin = get(&gw.binary_url(&data_id, "doc"), &[]);
    assert_eq!(bin.status, 200);
    assert_eq!(bin.body, doc);
}

// ---------------------------------------------------------------------------
// _ors_forward: headers
// ---------------------------------------------------------------------------

#[test]
fn headers_forwarding_sends_params_as_percent_encoded_x_gms_headers() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_ors_forward", "headers")
        .opt("_foo", "configured")
        .start();
    let (v, id) = create(&gw, &[("_greeting", "hello wörld/ok~"), ("color", "red")]);
    assert_eq!(v["message"], "started", "{v}");
    let st = start_of(&sim, &id);
    assert_eq!(st["params"], json!({"src": SRC}), "body must hold only src");
    let h = &st["headers"];
    assert_eq!(h["x-gms-service_id"], id.as_str(), "{st}");
    assert_eq!(h["x-gms-service_name"], SVC);
    assert!(
        h["x-gms-data_id"].as_str().is_some_and(|d| !d.is_empty()),
        "{st}"
    );
    assert_eq!(h["x-gms-foo"], "configured");
    assert_eq!(h["x-gms-greeting"], "hello%20w%C3%B6rld%2Fok~");
    assert!(h.get("x-gms-color").is_none(), "user data sent: {st}");
    for opt in GATEWAY_OPTIONS {
        let name = format!("x-gms-{}", &opt[1..]);
        assert!(h.get(&name).is_none(), "{name} sent to ORS: {st}");
    }

    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1);
    let gh = &gs[0]["headers"];
    for name in [
        "x-gms-service_id",
        "x-gms-service_name",
        "x-gms-data_id",
        "x-gms-foo",
        "x-gms-greeting",
    ] {
        assert_eq!(gh[name], h[name], "{name} differs on gms.start: {}", gs[0]);
    }
    let gp = gs[0]["params"].as_object().cloned().unwrap_or_default();
    assert!(
        gp.keys().all(|k| !k.starts_with('_')),
        "gms.start body carries parameters: {}",
        gs[0]
    );
}

#[test]
fn headers_forwarding_applies_to_later_requests() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_ors_forward", "headers").start();
    let (_, id) = create(&gw, &[]);
    let r = post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "a b"), ("color", "blue")],
        &[],
    );
    let echo = ok_json(&r);
    assert_eq!(echo["request"], "ask", "{echo}");
    let asks = requests_named(&sim, "ask");
    assert_eq!(asks.len(), 1, "{asks:?}");
    let h = &asks[0]["headers"];
    assert_eq!(h["x-gms-q"], "a%20b", "{}", asks[0]);
    assert_eq!(h["x-gms-service_id"], id.as_str());
    assert_eq!(h["x-gms-service_name"], SVC);
    assert!(h["x-gms-data_id"].as_str().is_some());
    let p = asks[0]["params"].as_object().cloned().unwrap_or_default();
    assert!(
        p.keys().all(|k| !k.starts_with('_')) && p.get("color").is_none(),
        "request body carries parameters: {}",
        asks[0]
    );
}

// ---------------------------------------------------------------------------
// Node selection and failover
// ---------------------------------------------------------------------------

#[test]
fn circular_strategy_spreads_starts_over_the_nodes() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "circular")
        .start();
    for _ in 0..10 {
        create(&gw, &[]);
    }
    let all = starts(&sim);
    assert_eq!(all.len(), 10, "{all:?}");
    let (a, b) = (on(&all, &sim, 0), on(&all, &sim, 1));
    assert!(a >= 1 && b >= 1, "starts per node: {a} and {b}");
}

#[test]
fn linear_strategy_always_uses_the_first_node() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    for _ in 0..6 {
        create(&gw, &[]);
    }
    let all = starts(&sim);
    assert_eq!(on(&all, &sim, 0), 6, "{all:?}");
    assert_eq!(on(&all, &sim, 1), 0, "{all:?}");
}

#[test]
fn ors_from_the_server_section_is_the_default() {
    let sim = OrsSim::start(1);
    let yaml = format!(
        "admin: {{user: admin, password: secret}}\n\
         ors: {{{ORS_BASE}}}\n\
         server:\n  _ors: {}\n\
         services:\n  {SVC}:\n    _type: ors\n    _service: {}\n",
        json!(sim.url(0)),
        json!(SRC)
    );
    let gw = Gateway::start(&yaml);
    let (v, id) = create(&gw, &[]);
    assert_eq!(v["message"], "started", "{v}");
    start_of(&sim, &id);
}

#[test]
fn a_node_nobody_listens_on_is_skipped() {
    let sim = OrsSim::start(1);
    let gw = cfg(vec![dead_node(), sim.url(0)])
        .health()
        .opt("_ors_lb_strategy", "circular")
        .start();
    for _ in 0..6 {
        let (v, _) = create(&gw, &[]);
        assert_eq!(v["message"], "started", "{v}");
    }
    assert_eq!(on(&starts(&sim), &sim, 0), 6);
}

/// A node that closes idle kept-alive connections (as servers with an idle timeout do) must
/// cost no request: the gateway sees the pooled connection closed, or retries the exchange
/// once on a fresh one. One attempt only, so that no second attempt at the node hides a
/// failure.
#[test]
fn connections_the_node_closed_while_idle_lose_no_request() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"idle_close_ms": 100}));
    let gw = cfg(nodes(&sim))
        .ors("max_ors_request_attempts: 1, connect_timeout_ms: 500, socket_timeout_ms: 1000")
        .start();
    for round in 0..4 {
        let (v, _) = create(&gw, &[]);
        assert_eq!(v["message"], "started", "round {round}: {v}");
        // Past the node's idle limit: every pooled connection is closed by now.
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(starts(&sim).len(), 4);
}

#[test]
fn a_refusing_node_is_skipped() {
    let sim = OrsSim::start(2);
    sim.set(0, &json!({"mode": "refuse"}));
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    for _ in 0..4 {
        let (v, _) = create(&gw, &[]);
        assert_eq!(v["message"], "started", "{v}");
    }
    let all = starts(&sim);
    assert_eq!(on(&all, &sim, 1), 4, "{all:?}");
    assert_eq!(on(&all, &sim, 0), 0, "{all:?}");
}

#[test]
fn all_nodes_down_is_502_ors_service_exception() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"mode": "refuse"}));
    let mut gw = cfg(vec![dead_node(), sim.url(0)]).health().start();
    let r = gw.create(SVC, &[("color", "red")]);
    let e = assert_error(&r, 502);
    assert_eq!(e["exception"], "OrsServiceException", "{e}");
    let message = str_field(&e, "message");
    assert!(message.starts_with("ORS request failed"), "{e}");
    // Issue 15, item 6: no address or library text for the client, the request id instead
    // (the same as in the header and the log, where the detail is).
    assert!(
        !message.contains("127.0.0.1") && !message.contains("Connect"),
        "{e}"
    );
    let id = r.header("x-request-id").expect("a request id");
    assert!(message.contains(id), "{e}");
    let log = gw.stderr();
    assert!(
        log.lines().any(|l| l.contains(id) && l.contains("ORS")),
        "no log line with the request id: {log}"
    );
    gw.assert_alive();
}

/// Issue 15 item 6: the client reads GMS's short text and the request id; the node's address
/// and the connector's words go to the gateway's log only.
#[test]
fn a_failed_ors_create_tells_the_client_no_address_and_logs_it() {
    let dead = dead_node();
    let port = dead.rsplit(':').next().unwrap_or_default().to_string();
    let gw = cfg(vec![dead.clone()]).start();
    let r = gw.create(SVC, &[("color", "red")]);
    let e = assert_error(&r, 502);
    let id = r.header("x-request-id").expect("a request id");
    assert_eq!(
        e,
        json!({
            "exception": "OrsServiceException",
            "message": format!("ORS request failed: cannot connect to ORS. (request id {id})")
        })
    );
    let body = r.text();
    for leak in ["127.0.0.1", port.as_str(), "Connect", "context"] {
        assert!(!body.contains(leak), "{leak} in {body}");
    }
    let logged = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        gw.stderr().contains(&dead)
    });
    assert!(logged, "the detail is not in the log:\n{}", gw.stderr());
}

#[test]
fn a_slow_single_node_is_504() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"latency_ms": 1500}));
    let gw = cfg(nodes(&sim))
        .ors("max_ors_request_attempts: 3, connect_timeout_ms: 500, socket_timeout_ms: 300")
        .start();
    let t = Instant::now();
    let r = gw.create(SVC, &[]);
    let e = assert_error(&r, 504);
    assert_eq!(e["exception"], "OrsServiceException", "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn a_slow_node_fails_over_to_a_healthy_one() {
    let sim = OrsSim::start(2);
    sim.set(0, &json!({"latency_ms": 1500}));
    let gw = cfg(nodes(&sim))
        .ors("max_ors_request_attempts: 3, connect_timeout_ms: 500, socket_timeout_ms: 300")
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v["message"], "started", "{v}");
    let all = starts(&sim);
    assert!(
        on(&all, &sim, 0) >= 1,
        "the slow node was not tried: {all:?}"
    );
    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1, "{gs:?}");
    assert_eq!(instance_of(&gs[0]), sim.addr(1), "gms.start not on node 1");
    assert_eq!(gs[0]["params"]["_service_id"], id.as_str());
}

#[test]
fn an_ors_5xx_on_start_is_retried_on_the_next_node() {
    let sim = OrsSim::start(2);
    sim.set(0, &json!({"mode": "error", "error_status": 503}));
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (v, _) = create(&gw, &[]);
    assert_eq!(v["message"], "started", "{v}");
    let all = starts(&sim);
    assert_eq!(on(&all, &sim, 0), 1, "{all:?}");
    assert_eq!(on(&all, &sim, 1), 1, "{all:?}");
}

#[test]
fn an_ors_4xx_on_start_is_not_retried() {
    let sim = OrsSim::start(2);
    sim.set(0, &json!({"mode": "error", "error_status": 400}));
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let r = gw.create(SVC, &[]);
    let e = assert_error(&r, 502);
    assert_eq!(e["exception"], "OrsServiceException", "{e}");
    let all = starts(&sim);
    assert_eq!(on(&all, &sim, 0), 1, "{all:?}");
    assert_eq!(on(&all, &sim, 1), 0, "a 4xx was retried: {all:?}");
}

// ---------------------------------------------------------------------------
// Requests on a running session
// ---------------------------------------------------------------------------

#[test]
fn requests_go_to_the_owning_node_with_underscore_params_only() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "circular")
        .start();
    let mut owners = Vec::new();
    for n in 0..4 {
        let (v, id) = create(&gw, &[]);
        let sid = str_field(&v, "sessionid").to_string();
        let q = format!("q{n}");
        let r = post_form(
            &request_url(&gw, &id, "ask"),
            &[("_q", &q), ("color", "blue")],
            &[],
        );
        let echo = ok_json(&r);
        assert_eq!(echo["request"], "ask", "{echo}");
        assert_eq!(echo["sessionid"], sid.as_str(), "{echo}");
        let p = &echo["params"];
        assert_eq!(p["_q"], q.as_str(), "{echo}");
        assert_eq!(p["_service_id"], id.as_str(), "{echo}");
        assert_eq!(p["_service_name"], SVC, "{echo}");
        assert_eq!(p["_data_id"], data_id_of(&sim, &id).as_str(), "{echo}");
        assert!(p.get("color").is_none(), "user data sent to ORS: {echo}");

        let owner = instance_of(&start_of(&sim, &id)).to_string();
        let asks: Vec<Value> = requests_named(&sim, "ask")
            .into_iter()
            .filter(|e| carried_id(e) == Some(id.as_str()))
            .collect();
        assert_eq!(asks.len(), 1, "{asks:?}");
        assert_eq!(instance_of(&asks[0]), owner, "not sent to the owner");
        assert_eq!(asks[0]["method"], "POST");
        assert_eq!(
            path_of(&asks[0]),
            format!("/scxml/session/{sid}/request/ask")
        );
        owners.push(owner);
    }
    let distinct = tally(owners);
    assert_eq!(distinct.len(), 2, "all sessions on one node: {distinct:?}");
}

#[test]
fn request_user_data_is_merged_into_storage_and_not_sent() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (_, id) = create(&gw, &[("color", "red"), ("shape", "round")]);
    let data_id = data_id_of(&sim, &id);
    let r = post_form(
        &request_url(&gw, &id, "ask"),
        &[("color", "blue"), ("size", "L"), ("_q", "1")],
        &[],
    );
    let echo = ok_json(&r);
    assert!(echo["params"].get("color").is_none(), "{echo}");
    assert!(echo["params"].get("size").is_none(), "{echo}");
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &[])),
        json!({"color": "blue", "shape": "round", "size": "L"})
    );
}

#[test]
fn an_ors_4xx_reply_to_a_request_passes_through_and_is_not_retried() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim)).health().start();
    let (_, id) = create(&gw, &[]);
    let r = post_form(&request_url(&gw, &id, "fail-409"), &[("_q", "1")], &[]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.content_type().starts_with("application/json"), "{r:?}");
    assert_eq!(r.json(), json!({"error": "requested failure"}));
    assert_eq!(requests_named(&sim, "fail-409").len(), 1, "retried");
}

#[test]
fn an_ors_5xx_reply_to_a_request_is_retried_on_another_node() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (v, id) = create(&gw, &[]);
    let sid = str_field(&v, "sessionid").to_string();
    assert_eq!(instance_of(&start_of(&sim, &id)), sim.addr(0));
    sim.set(0, &json!({"mode": "error", "error_status": 503}));
    let echo = ok_json(&post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "1")],
        &[],
    ));
    assert_eq!(echo["request"], "ask", "{echo}");
    assert_eq!(echo["sessionid"], sid.as_str());
    let asks = requests_named(&sim, "ask");
    assert!(on(&asks, &sim, 0) >= 1, "the owner was not tried: {asks:?}");
    assert_eq!(on(&asks, &sim, 1), 1, "{asks:?}");
}

#[test]
fn an_ors_service_belongs_to_its_gms_user() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let alice = [("gms_user", "alice")];
    let bob = [("gms_user", "bob")];
    let v = ok_json(&post_form(
        &gw.service_url(SVC),
        &[("color", "red")],
        &alice,
    ));
    let id = str_field(&v, "_id");
    for headers in [&[][..], &bob[..]] {
        assert_error(&post_empty(&request_url(&gw, id, "status"), headers), 404);
        assert_error(
            &post_form(&request_url(&gw, id, "ask"), &[("_q", "1")], headers),
            404,
        );
        assert_error(&delete(&gw.service_url(id), headers), 404);
    }
    assert!(
        requests_named(&sim, "ask").is_empty(),
        "a stranger reached ORS"
    );
    assert_eq!(kind_count(&sim, "status"), 0, "a stranger reached ORS");
    assert_eq!(
        kind_count(&sim, "terminate"),
        0,
        "a stranger ended the session"
    );
    assert_eq!(
        ok_json(&post_empty(&request_url(&gw, id, "status"), &alice)),
        waiting()
    );
    assert_eq!(
        ok_json(&post_form(
            &request_url(&gw, id, "ask"),
            &[("_q", "1")],
            &alice
        ))["request"],
        "ask"
    );
    assert_eq!(
        ok_json(&delete(&gw.service_url(id), &alice)),
        json!({"_id": id})
    );
}

#[test]
fn the_ors_json_reply_to_a_request_comes_back_as_it_is() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (v, id) = create(&gw, &[]);
    let sid = str_field(&v, "sessionid");
    let echo = ok_json(&post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "1")],
        &[],
    ));
    let asks = requests_named(&sim, "ask");
    assert_eq!(asks.len(), 1);
    assert_eq!(
        echo,
        json!({"request": "ask", "sessionid": sid, "params": asks[0]["params"]})
    );
}

#[test]
fn a_redirect_from_the_owner_is_followed() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (v, id) = create(&gw, &[]);
    let sid = str_field(&v, "sessionid").to_string();
    assert_eq!(instance_of(&start_of(&sim, &id)), sim.addr(0));
    sim.set(0, &json!({"mode": "redirect", "redirect_to": sim.url(1)}));
    let echo = ok_json(&post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "1")],
        &[],
    ));
    assert_eq!(echo["request"], "ask", "{echo}");
    assert_eq!(echo["sessionid"], sid.as_str());
    let asks = requests_named(&sim, "ask");
    assert_eq!(on(&asks, &sim, 0), 1, "{asks:?}");
    assert_eq!(on(&asks, &sim, 1), 1, "{asks:?}");
    let followed: Vec<&Value> = asks
        .iter()
        .filter(|e| instance_of(e) == sim.addr(1))
        .collect();
    assert_eq!(followed[0]["method"], "POST", "307 keeps the method");
    assert_eq!(followed[0]["params"]["_q"], "1", "307 keeps the body");
}

#[test]
fn a_redirect_loop_is_not_followed_forever() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (_, id) = create(&gw, &[]);
    sim.set(0, &json!({"mode": "redirect", "redirect_to": sim.url(1)}));
    sim.set(1, &json!({"mode": "redirect", "redirect_to": sim.url(0)}));
    let r = post_form(&request_url(&gw, &id, "ask"), &[("_q", "1")], &[]);
    // The owner's 307 is followed once; a second 307 is ORS answering badly.
    let e = assert_error(&r, 502);
    assert_eq!(e["exception"], "OrsServiceException", "{e}");
    let n = requests_named(&sim, "ask").len();
    assert!(
        (2..=6).contains(&n),
        "{n} ask requests for one redirect loop"
    );
}

#[test]
fn an_unreachable_owner_is_replaced_by_another_node() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (v, id) = create(&gw, &[]);
    let sid = str_field(&v, "sessionid").to_string();
    assert_eq!(instance_of(&start_of(&sim, &id)), sim.addr(0));
    sim.set(0, &json!({"mode": "refuse"}));
    let echo = ok_json(&post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "1")],
        &[],
    ));
    assert_eq!(echo["request"], "ask", "{echo}");
    assert_eq!(echo["sessionid"], sid.as_str());
    assert_eq!(on(&requests_named(&sim, "ask"), &sim, 1), 1);
}

#[test]
fn update_stays_in_the_gateway() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (_, id) = create(&gw, &[("color", "red")]);
    let data_id = data_id_of(&sim, &id);
    let r = post_form(
        &request_url(&gw, &id, "update"),
        &[("color", "green"), ("size", "M")],
        &[],
    );
    assert_eq!(ok_json(&r), json!({}));
    assert!(
        requests_named(&sim, "update").is_empty(),
        "update went to ORS"
    );
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &[])),
        json!({"color": "green", "size": "M"})
    );
}

#[test]
fn requests_on_an_ors_service_not_named_request_are_400() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).name("chat-poll").start();
    let v = gw.create_ok("chat-poll", &[]);
    let id = str_field(&v, "_id");
    for name in ["ask", "status", "update"] {
        assert_error(
            &post_form(&request_url(&gw, id, name), &[("_q", "1")], &[]),
            400,
        );
    }
    for name in ["ask", "status", "update"] {
        assert!(requests_named(&sim, name).is_empty(), "{name} reached ORS");
    }
}

#[test]
fn requests_on_an_unknown_id_are_404() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let unknown = uuid::Uuid::new_v4().to_string();
    for name in ["ask", "status", "update"] {
        assert_error(
            &post_form(&request_url(&gw, &unknown, name), &[("_q", "1")], &[]),
            404,
        );
    }
    assert_error(&delete(&gw.service_url(&unknown), &[]), 404);
    assert_eq!(log_entries(&sim).len(), 0, "ORS was asked");
}

// ---------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------

#[test]
fn delete_terminates_the_session_and_forgets_the_service() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim)).health().start();
    let (v, id) = create(&gw, &[("color", "red")]);
    let sid = str_field(&v, "sessionid").to_string();
    let data_id = data_id_of(&sim, &id);
    let owner = instance_of(&start_of(&sim, &id)).to_string();
    assert_eq!(
        ok_json(&delete(&gw.service_url(&id), &[])),
        json!({"_id": id})
    );
    let term: Vec<Value> = log_entries(&sim)
        .into_iter()
        .filter(|e| path_of(e) == format!("/scxml/session/{sid}/terminate"))
        .collect();
    assert_eq!(term.len(), 1, "terminate requests: {term:?}");
    assert_eq!(term[0]["method"], "POST");
    assert_eq!(
        instance_of(&term[0]),
        owner,
        "terminate not sent to the owner"
    );
    assert!(!sessions(&sim).contains_key(&sid), "session still alive");

    assert_error(
        &post_form(&request_url(&gw, &id, "ask"), &[("_q", "1")], &[]),
        404,
    );
    assert_error(&status(&gw, &id), 404);
    assert_error(&delete(&gw.service_url(&id), &[]), 404);
    assert_error(&get(&gw.storage_url(&data_id), &[]), 404);
    assert!(requests_named(&sim, "ask").is_empty());
}

// ---------------------------------------------------------------------------
// The status cache
// ---------------------------------------------------------------------------

#[test]
fn status_comes_from_the_ors_session() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (v, id) = create(&gw, &[]);
    let sid = str_field(&v, "sessionid");
    assert_eq!(status_ok(&gw, &id), waiting());
    let st = requests_named(&sim, "status");
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0]["method"], "POST");
    assert_eq!(
        path_of(&st[0]),
        format!("/scxml/session/{sid}/request/status")
    );
}

#[test]
fn a_huge_status_ttl_keeps_the_status_cached_without_overflowing() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_status_ttl_ms", "18446744073709551615")
        .start();
    let (_, id) = create(&gw, &[]);
    for _ in 0..3 {
        assert_eq!(status_ok(&gw, &id), waiting());
    }
    assert_eq!(requests_named(&sim, "status").len(), 1);
}

#[test]
fn status_is_served_on_the_servlet_root_too() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (_, id) = create(&gw, &[]);
    let r = post_empty(&gw.url(&format!("/GMS-web/gms/1/service/{id}/status")), &[]);
    assert_eq!(ok_json(&r), waiting());
}

#[test]
fn concurrent_status_calls_make_at_most_one_or_two_ors_requests() {
    let sim = OrsSim::start(1);
    let body = json!({"status": "waiting-for-agent", "dialog": "/waitingforagent.html"});
    sim.set(0, &json!({"status_script": fixed_status(&body)}));
    let gw = cfg(nodes(&sim)).opt("_status_ttl_ms", "60000").start();
    let (_, id) = create(&gw, &[]);
    let url = request_url(&gw, &id, "status");
    let next = AtomicUsize::new(0);
    let replies: Mutex<Vec<(u16, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < 100 {
                    let r = post_empty(&url, &[]);
                    replies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((r.status, r.text()));
                }
            });
        }
    });
    let replies = replies.into_inner().unwrap_or_else(|p| p.into_inner());
    assert_eq!(replies.len(), 100);
    for (code, text) in &replies {
        assert_eq!(*code, 200, "{text}");
        let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(v, body);
    }
    let n = kind_count(&sim, "status");
    assert!((1..=2).contains(&n), "ORS saw {n} status requests");
}

#[test]
fn status_is_fetched_again_once_the_cache_ttl_has_passed() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"status_script": fixed_status(&waiting())}));
    let gw = cfg(nodes(&sim)).opt("_status_ttl_ms", "300").start();
    let (_, id) = create(&gw, &[]);
    for i in 0..3 {
        if i > 0 {
            sleep_ms(1000);
        }
        assert_eq!(status_ok(&gw, &id), waiting());
    }
    let n = kind_count(&sim, "status");
    assert!(
        (2..=4).contains(&n),
        "ORS saw {n} status requests for 3 polls"
    );
}

#[test]
fn a_status_change_in_ors_shows_after_the_ttl() {
    let sim = OrsSim::start(1);
    let before = json!({"status": "waiting-for-agent"});
    let after = json!({"status": "connected", "agent": "Ann"});
    let script = json!([{"after_ms": 0, "body": before}, {"after_ms": 1500, "body": after}]);
    sim.set(0, &json!({"status_script": script}));
    let gw = cfg(nodes(&sim)).opt("_status_ttl_ms", "300").start();
    let (_, id) = create(&gw, &[]);
    assert_eq!(status_ok(&gw, &id), before);
    sleep_ms(1600);
    let seen = poll(Duration::from_secs(5), Duration::from_millis(200), || {
        let v = status_ok(&gw, &id);
        (v == after).then_some(v)
    });
    assert!(seen.is_some(), "the new status never showed");
}

#[test]
fn a_stale_status_is_served_with_age_when_ors_answers_5xx() {
    let sim = OrsSim::start(1);
    let body = json!({"status": "waiting-for-agent", "n": 1});
    sim.set(0, &json!({"status_script": fixed_status(&body)}));
    let gw = cfg(nodes(&sim)).opt("_status_ttl_ms", "300").start();
    let (_, id) = create(&gw, &[]);
    assert_eq!(status_ok(&gw, &id), body);
    sim.set(0, &json!({"mode": "error", "error_status": 503}));
    sleep_ms(1500);
    let r = status(&gw, &id);
    assert_eq!(ok_json(&r), body, "stale entry not served");
    let age = r
        .header("age")
        .unwrap_or_else(|| panic!("no Age header: {:?}", r.headers));
    let age: u64 = age
        .parse()
        .unwrap_or_else(|_| panic!("Age is not whole seconds: {age:?}"));
    assert!((1..=60).contains(&age), "Age {age}");
    assert!(
        kind_count(&sim, "status") >= 2,
        "ORS was not asked again after the TTL"
    );
}

#[test]
fn a_stale_status_is_served_when_ors_is_unreachable() {
    let sim = OrsSim::start(1);
    let body = json!({"status": "waiting-for-agent", "n": 2});
    sim.set(0, &json!({"status_script": fixed_status(&body)}));
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_status_ttl_ms", "300")
        .start();
    let (_, id) = create(&gw, &[]);
    assert_eq!(status_ok(&gw, &id), body);
    sim.set(0, &json!({"mode": "refuse"}));
    sleep_ms(1500);
    let r = status(&gw, &id);
    assert_eq!(ok_json(&r), body, "stale entry not served");
    let age = r.header("age").unwrap_or("");
    assert!(
        age.parse::<u64>().is_ok(),
        "Age missing or not whole seconds: {age:?}"
    );
}

#[test]
fn status_with_nothing_cached_and_ors_failing_is_502() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (_, id) = create(&gw, &[]);
    sim.set(0, &json!({"mode": "error", "error_status": 500}));
    let e = assert_error(&status(&gw, &id), 502);
    assert_eq!(e["exception"], "OrsServiceException", "{e}");
}

#[test]
fn status_with_nothing_cached_and_ors_too_slow_is_504() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .ors("max_ors_request_attempts: 3, connect_timeout_ms: 500, socket_timeout_ms: 300")
        .start();
    let (_, id) = create(&gw, &[]);
    sim.set(0, &json!({"latency_ms": 1500}));
    let e = assert_error(&status(&gw, &id), 504);
    assert_eq!(e["exception"], "OrsServiceException", "{e}");
}

// ---------------------------------------------------------------------------
// Status push
// ---------------------------------------------------------------------------

#[test]
fn a_pushed_status_is_served_without_asking_ors() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_status_ttl_ms", "300").start();
    let (_, id) = create(&gw, &[]);
    let pushed = json!({"status": "connected", "agent": "Bob"});
    let r = push_status(&gw, &id, &pushed, Some(&basic("admin", "secret")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_ok(&gw, &id), pushed);
    // Past _status_ttl_ms, but the push stays fresh for _status_push_ttl_ms.
    sleep_ms(600);
    assert_eq!(status_ok(&gw, &id), pushed);
    assert_eq!(kind_count(&sim, "status"), 0, "ORS was polled");
}

#[test]
fn a_push_replaces_a_polled_status() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"status_script": fixed_status(&waiting())}));
    let gw = cfg(nodes(&sim)).opt("_status_ttl_ms", "60000").start();
    let (_, id) = create(&gw, &[]);
    assert_eq!(status_ok(&gw, &id), waiting());
    let pushed = json!({"status": "connected", "agent": "Bob"});
    let r = push_status(&gw, &id, &pushed, Some(&basic("admin", "secret")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(status_ok(&gw, &id), pushed);
    assert_eq!(kind_count(&sim, "status"), 1);
}

#[test]
fn status_push_needs_the_admin_credentials() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({"status": "connected"});
    assert_error(&push_status(&gw, &id, &body, None), 401);
    assert_error(
        &push_status(&gw, &id, &body, Some(&basic("admin", "wrong"))),
        401,
    );
    assert_error(
        &push_status(&gw, &id, &body, Some(&basic("root", "secret"))),
        401,
    );
    assert_error(&push_status(&gw, &id, &body, Some("Basic !!!")), 401);
}

#[test]
fn a_rejected_status_push_changes_nothing() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_status_ttl_ms", "60000").start();
    let (_, id) = create(&gw, &[]);
    let good = json!({"status": "connected", "agent": "Bob"});
    let r = push_status(&gw, &id, &good, Some(&basic("admin", "secret")));
    assert_eq!(r.status, 200, "{}", r.text());
    let bad = json!({"status": "hijacked"});
    assert_error(
        &push_status(&gw, &id, &bad, Some(&basic("admin", "wrong"))),
        401,
    );
    assert_error(&push_status(&gw, &id, &bad, None), 401);
    assert_eq!(status_ok(&gw, &id), good);
}

#[test]
fn status_push_for_an_unknown_id_is_404() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let id = uuid::Uuid::new_v4().to_string();
    let r = push_status(
        &gw,
        &id,
        &json!({"status": "connected"}),
        Some(&basic("admin", "secret")),
    );
    assert_error(&r, 404);
}

// ---------------------------------------------------------------------------
// Async start
// ---------------------------------------------------------------------------

#[test]
fn async_create_replies_before_the_ors_session_exists() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"latency_ms": 1500}));
    let gw = cfg(nodes(&sim))
        .ors("max_ors_request_attempts: 3, connect_timeout_ms: 500, socket_timeout_ms: 5000")
        .opt("_ors_start", "async")
        .start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v, json!({"_id": id}));
    // ORS creates the session only after its 1.5 s latency: a synchronous start would
    // have waited for it.
    assert!(
        session_of(&sim, &id).is_none(),
        "the session existed before the create replied"
    );
    // It does start in the background, gms.start included.
    let started = poll(Duration::from_secs(10), Duration::from_millis(200), || {
        requests_named(&sim, "gms.start")
            .into_iter()
            .find(|e| carried_id(e) == Some(id.as_str()))
    });
    assert!(started.is_some(), "the session never started");
    assert!(session_of(&sim, &id).is_some());
}

#[test]
fn async_status_is_pending_until_the_session_has_started() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"latency_ms": 1500}));
    let gw = cfg(nodes(&sim))
        .ors("max_ors_request_attempts: 3, connect_timeout_ms: 500, socket_timeout_ms: 5000")
        .opt("_ors_start", "async")
        .opt("_status_ttl_ms", "300")
        .start();
    let (_, id) = create(&gw, &[]);
    assert_eq!(status_ok(&gw, &id), json!({"status": "pending"}));
    let real = json!({"status": "ready", "from": "ors"});
    sim.set(0, &json!({"status_script": fixed_status(&real)}));
    let mut seen = Vec::new();
    let got = poll(Duration::from_secs(10), Duration::from_millis(200), || {
        let v = status_ok(&gw, &id);
        seen.push(v.clone());
        (v == real).then_some(v)
    });
    assert!(got.is_some(), "never got the real status; saw {seen:?}");
    for v in &seen {
        assert!(
            *v == real || *v == json!({"status": "pending"}),
            "unexpected status {v}"
        );
    }
}

#[test]
fn async_start_with_a_huge_timeout_still_starts() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_ors_start", "async")
        .opt("_ors_start_timeout_s", "18446744073709551615")
        .start();
    let (_, id) = create(&gw, &[]);
    let got = poll(Duration::from_secs(10), Duration::from_millis(100), || {
        let v = status_ok(&gw, &id);
        (v == waiting()).then_some(v)
    });
    assert!(got.is_some(), "the session never started");
}

#[test]
fn async_start_that_never_succeeds_reports_failed() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"mode": "refuse"}));
    let gw = cfg(vec![dead_node(), sim.url(0)])
        .health()
        .opt("_ors_start", "async")
        .opt("_ors_start_timeout_s", "1")
        .start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v, json!({"_id": id}));
    let failed = poll(Duration::from_secs(10), Duration::from_millis(250), || {
        let v = status_ok(&gw, &id);
        match v["status"].as_str() {
            Some("failed") => Some(v),
            Some("pending") => None,
            _ => panic!("unexpected status {v}"),
        }
    });
    let v = failed.expect("status never became failed within 10 s");
    assert!(
        v["message"].is_string(),
        "failed status without message: {v}"
    );
}

// ---------------------------------------------------------------------------
// Record lifetime
// ---------------------------------------------------------------------------

#[test]
fn an_unused_service_expires_after_service_ttl() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_service_ttl", "2").start();
    let (_, id) = create(&gw, &[]);
    sleep_ms(3000);
    assert_error(
        &post_form(&request_url(&gw, &id, "ask"), &[("_q", "1")], &[]),
        404,
    );
    assert_error(&status(&gw, &id), 404);
    assert!(requests_named(&sim, "ask").is_empty());
}

#[test]
fn each_request_renews_the_service_record() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_service_ttl", "2").start();
    let (_, id) = create(&gw, &[]);
    // 4.5 s in all, more than twice the TTL, never 2 s without a request.
    for _ in 0..3 {
        sleep_ms(1500);
        let r = post_form(&request_url(&gw, &id, "ask"), &[("_q", "1")], &[]);
        assert_eq!(ok_json(&r)["request"], "ask");
    }
    assert_eq!(requests_named(&sim, "ask").len(), 3);
}

// ---------------------------------------------------------------------------
// Configuration check (`-t`)
// ---------------------------------------------------------------------------

/// `gms-gateway -t -c FILE` on a config; `(exit code, stderr)`.
fn check(gms_yaml: &str) -> (Option<i32>, String) {
    let dir = TempDir::new("orscheck");
    let path = dir.file("gateway.yaml");
    fs::write(
        &path,
        fill(&gateway_yaml(gms_yaml), free_port(), dir.path()),
    )
    .expect("write");
    let c = run_check(&path, &dir);
    (c.code, c.stderr)
}

#[test]
fn check_accepts_every_ors_option() {
    let gms = r#"admin: {user: admin, password: secret}
ors: {max_ors_request_attempts: 3, connect_timeout_ms: 2000, socket_timeout_ms: 2000, health_check_interval_ms: 1000}
server:
  _ors: "http://127.0.0.1:7210,http://127.0.0.1:7211"
services:
  request-inbound-poll:
    _type: ors
    _service: "http://scxml.example.com/poll.scxml"
    _ors: "http://127.0.0.1:7212,http://127.0.0.1:7213"
    _ors_lb_strategy: circular
    _status_ttl_ms: 1000
    _status_push_ttl_ms: 30000
    _ors_forward: params
    _ors_start: sync
    _ors_start_timeout_s: 30
    _start_request: gms.start
    _overwritable_options: "_foo"
    _service_ttl: 3600
    _foo: configured
  request-outbound-push:
    _type: ors
    _service: "http://scxml.example.com/push.scxml"
    _ors_lb_strategy: linear
    _ors_forward: headers
    _ors_start: async
    _start_request: ""
"#;
    let (code, stderr) = check(gms);
    assert_eq!(code, Some(0), "a valid ORS config failed -t:\n{stderr}");
}

#[test]
fn check_rejects_bad_ors_option_values_naming_each_key() {
    let gms = r#"ors: {socket_timeout_ms: 0}
services:
  request-inbound-poll:
    _type: ors
    _service: "http://scxml.example.com/poll.scxml"
    _ors: "http://127.0.0.1:7210"
    _ors_lb_strategy: roundrobin
    _ors_forward: body
    _ors_start: later
    _status_ttl_ms: soon
  request-inbound-nowhere:
    _type: ors
    _service: "http://scxml.example.com/poll.scxml"
"#;
    let (code, stderr) = check(gms);
    assert!(
        code.is_some_and(|c| c != 0),
        "bad ORS options passed -t:\n{stderr}"
    );
    for key in [
        "gms.ors.socket_timeout_ms",
        "gms.services.request-inbound-poll._ors_lb_strategy",
        "gms.services.request-inbound-poll._ors_forward",
        "gms.services.request-inbound-poll._ors_start",
        "gms.services.request-inbound-poll._status_ttl_ms",
        "gms.services.request-inbound-nowhere._ors",
    ] {
        assert!(
            stderr.contains(key),
            "stderr does not name {key}:\n{stderr}"
        );
    }
}
