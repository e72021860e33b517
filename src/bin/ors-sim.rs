//! `ors-sim`: a simulator of the Genesys Orchestration Server (ORS) HTTP interface, for
//! black-box tests and benchmarks of gms-gateway.
//!
//! It speaks a small hand-rolled HTTP/1.1 (keep-alive; request bodies by Content-Length or
//! chunked; replies always carry Content-Length) on one or more addresses. Each `--listen`
//! address is one ORS node ("instance") of a cluster whose sessions are shared. Tests script
//! the session status, inject failures per node and read back what the gateway sent.
//!
//! # CLI
//! ```text
//! ors-sim --listen 127.0.0.1:7210 [--listen 127.0.0.1:7211 ...] [--control 127.0.0.1:7299]
//!         [--status-script JSON|@FILE] [--log-max N] [--threads N] [--max-sessions N]
//!         [--tls-cert FILE --tls-key FILE]
//! ```
//! - `--listen ADDR` (repeatable, at least one): one instance, named ADDR exactly as given
//!   (with port 0, the address actually bound), base URL `http://ADDR`.
//! - `--control ADDR`: an extra listener serving only `/sim/...`, never affected by failure
//!   injection.
//! - `--status-script`: JSON array `[{"after_ms":0,"body":{...}},...]` (or `@path` of a file
//!   holding it); a session's status is the body of the last step whose `after_ms` <= the
//!   session's age (the first step while none is due yet). The default reports
//!   `waiting-for-agent` and, from 5 s on, `connected`.
//! - `--log-max N`: request log ring size (default 10000; 0 keeps none).
//! - `--threads N`: tokio worker threads (default 1).
//! - `--max-sessions N`: live sessions kept; the oldest are evicted beyond it (default 100000).
//! - `--tls-cert FILE --tls-key FILE` (PEM chain and key, both or neither): every instance
//!   listener speaks HTTPS (HTTP/1.1 inside TLS), base URL `https://ADDR`; the control
//!   listener stays plain HTTP.
//!
//! After binding, one line `ors-sim listening on ADDR` is printed per listener (instances in
//! order, then the control listener). Bad arguments exit 2, bind failures exit 1.
//!
//! # ORS endpoints (every instance)
//! - `POST /scxml/session/start`, form body with `src` (else 400 `{"error":"src is
//!   required"}`): `{"sessionid":"<id>"}`, or the bare id as text/plain with
//!   `"start_reply":"text"`.
//! - `POST /scxml/session/{sid}/request/status`: the scripted status body.
//! - `POST /scxml/session/{sid}/request/gms.start`:
//!   `{"message":"started","sessionid":..,"_id_seen":<_service_id param or null>}`.
//! - `POST /scxml/session/{sid}/request/fail-{code}`: status `code`,
//!   `{"error":"requested failure"}`.
//! - `POST /scxml/session/{sid}/request/{name}`: `{"request":..,"sessionid":..,"params":{..}}`.
//! - `POST /scxml/session/{sid}/event/{name}`: `{}`.
//! - `POST /scxml/session/{sid}/terminate`: `{}`, and the session is gone.
//! - An unknown session is 404 `{"error":"unknown session"}`, another `/scxml/...` path 404,
//!   a method other than POST 405.
//! - Any other path (neither `/scxml/...` nor `/sim/...`), any method: the request echoed as
//!   JSON `{"instance","method","path","query","headers","body","body_len"}`.
//!
//! ORS and echo replies carry `X-Sim-Instance`; ORS and echo requests go to the request log.
//! Parameters come from a body typed `application/x-www-form-urlencoded` (or untyped), decoded
//! strictly (a bad `%` escape or non-UTF-8 is a 400 on ORS paths); a repeated name gives an
//! array of its values. Sessions are shared by all instances; each remembers its owner.
//!
//! # Failure injection (per instance)
//! - `latency_ms`: every ORS or echo reply is delayed this long.
//! - `refuse`: the listening socket is closed (connects are refused) and open connections
//!   are dropped at their next request, `/sim/...` ones included; leaving the mode binds
//!   the address again. The PUT answers once the socket is really down or up.
//! - `error`: ORS and echo requests answer `error_status` `{"error":"injected failure"}`.
//! - `hang`: requests are read and logged but never answered (the connection is held until
//!   the client closes it, at most 120 s).
//! - `redirect`: ORS requests answer 307 `Location: {redirect_to}{path}?{query}`.
//! - `status_script` replaces the global script for status requests this instance answers;
//!   `start_reply: "text"` answers the new session id as text/plain.
//! - `idle_close_ms`: a kept-alive connection idle this long is closed (default 120 s), as
//!   a server that times out idle clients does.
//!
//! # Control endpoints (every listener; not logged)
//! - `GET /sim/instances`; `GET|PUT /sim/instances/{addr}`: an instance's failure-injection
//!   config `{"latency_ms":0,"mode":"ok|refuse|error|hang|redirect","error_status":503,
//!   "redirect_to":null,"status_script":null,"start_reply":"json|text","idle_close_ms":0}`.
//! - `GET /sim/log[?path_prefix=P&instance=ADDR]`, `DELETE /sim/log` (also resets the stats).
//! - `GET /sim/stats`: per instance `{"requests":n,"by_kind":{...}}`.
//! - `GET /sim/sessions`, `DELETE /sim/sessions`.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use percent_encoding::percent_decode;
use pingora::tls::{
    install_default_crypto_provider, load_certs_and_key_files, ServerConfig, TlsAcceptor,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 256;
const MAX_BODY: usize = 16 * 1024 * 1024;
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;
/// A pooled keep-alive connection may sit idle between requests much longer than a
/// request takes to arrive once started.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const HANG_LIMIT: Duration = Duration::from_secs(120);
/// After an error reply, reading a little longer lets the client see the reply instead of
/// a reset caused by closing on unread data.
const LINGER: Duration = Duration::from_secs(1);
/// A PUT that switches refuse mode answers only once the listener really is down (or up
/// again), so a test can act on the reply without sleeping.
const MODE_SWITCH_WAIT: Duration = Duration::from_secs(2);
const REBIND_RETRY: Duration = Duration::from_millis(200);
const DEFAULT_LOG_MAX: usize = 10_000;
const DEFAULT_MAX_SESSIONS: usize = 100_000;

const USAGE: &str = "usage: ors-sim --listen ADDR [--listen ADDR ...] [--control ADDR]\n       \
    [--status-script JSON|@FILE] [--log-max N] [--threads N] [--max-sessions N]\n       \
    [--tls-cert FILE --tls-key FILE]";

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

/// The parsed command line.
#[derive(Debug)]
struct Args {
    listen: Vec<String>,
    control: Option<String>,
    status_script: Vec<ScriptStep>,
    log_max: usize,
    threads: usize,
    max_sessions: usize,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    help: bool,
}

/// Parses argv (without the program name); `--flag value` and `--flag=value` both work.
fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<Args, String> {
    let mut args = Args {
        listen: Vec::new(),
        control: None,
        status_script: default_status_script(),
        log_max: DEFAULT_LOG_MAX,
        threads: 1,
        max_sessions: DEFAULT_MAX_SESSIONS,
        tls_cert: None,
        tls_key: None,
        help: false,
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => args.help = true,
            "--listen" => {
                let v = take_value(&flag, inline, &mut it)?;
                // Port 0 may repeat: each bind picks its own port.
                if !v.ends_with(":0") && args.listen.contains(&v) {
                    return Err(format!("--listen {v} given twice"));
                }
                args.listen.push(v);
            }
            "--control" => args.control = Some(take_value(&flag, inline, &mut it)?),
            "--status-script" => {
                let v = take_value(&flag, inline, &mut it)?;
                let text = match v.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| format!("--status-script: cannot read {path}: {e}"))?,
                    None => v,
                };
                args.status_script =
                    parse_status_script(&text).map_err(|e| format!("--status-script: {e}"))?;
            }
            "--log-max" => {
                args.log_max =
                    parse_num(&flag, &take_value(&flag, inline, &mut it)?, 0, 10_000_000)?
            }
            "--threads" => {
                args.threads = parse_num(&flag, &take_value(&flag, inline, &mut it)?, 1, 256)?
            }
            "--max-sessions" => {
                args.max_sessions =
                    parse_num(&flag, &take_value(&flag, inline, &mut it)?, 1, 100_000_000)?
            }
            "--tls-cert" => args.tls_cert = Some(take_value(&flag, inline, &mut it)?),
            "--tls-key" => args.tls_key = Some(take_value(&flag, inline, &mut it)?),
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    if !args.help && args.listen.is_empty() {
        return Err("at least one --listen ADDR is required".into());
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(args)
}

fn take_value(
    flag: &str,
    inline: Option<String>,
    it: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    match inline.or_else(|| it.next()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{flag} needs a value")),
    }
}

fn parse_num(flag: &str, v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{flag}: expected a number in {min}..={max}, got {v:?}"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Configuration and shared state
// ---------------------------------------------------------------------------------------

/// One step of a status script: from `after_ms` of session age on, status answers `body`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptStep {
    after_ms: u64,
    body: Value,
}

fn default_status_script() -> Vec<ScriptStep> {
    vec![
        ScriptStep {
            after_ms: 0,
            body: json!({"status": "waiting-for-agent", "dialog": "/waitingforagent.html"}),
        },
        ScriptStep {
            after_ms: 5000,
            body: json!({"status": "connected", "dialog": "/connected.html"}),
        },
    ]
}

fn parse_status_script(text: &str) -> Result<Vec<ScriptStep>, String> {
    let steps: Vec<ScriptStep> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if steps.is_empty() {
        return Err("the status script needs at least one step".into());
    }
    Ok(steps)
}

/// The body of the last step due at `elapsed_ms`; before any step is due, the first one,
/// so that a script not starting at 0 still answers something.
fn select_status(script: &[ScriptStep], elapsed_ms: u64) -> Option<&Value> {
    script
        .iter()
        .rev()
        .find(|s| s.after_ms <= elapsed_ms)
        .or_else(|| script.first())
        .map(|s| &s.body)
}

/// Failure-injection mode of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Ok,
    Refuse,
    Error,
    Hang,
    Redirect,
}

/// How `/scxml/session/start` answers the new session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StartReply {
    #[default]
    Json,
    Text,
}

/// Per-instance behaviour, replaced whole by `PUT /sim/instances/{addr}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct InstanceConfig {
    latency_ms: u64,
    mode: Mode,
    error_status: u16,
    redirect_to: Option<String>,
    status_script: Option<Vec<ScriptStep>>,
    start_reply: StartReply,
    /// Closes a kept-alive connection idle this long (0: the default two minutes).
    idle_close_ms: u64,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig {
            latency_ms: 0,
            mode: Mode::Ok,
            error_status: 503,
            redirect_to: None,
            status_script: None,
            start_reply: StartReply::Json,
            idle_close_ms: 0,
        }
    }
}

impl InstanceConfig {
    fn validate(&self) -> Result<(), String> {
        if !valid_reply_status(self.error_status) {
            return Err("error_status must be in 200..=599 (not 204 or 304)".into());
        }
        if self.latency_ms > 600_000 {
            return Err("latency_ms must be at most 600000".into());
        }
        if self.idle_close_ms > 600_000 {
            return Err("idle_close_ms must be at most 600000".into());
        }
        if let Some(to) = &self.redirect_to {
            if !(to.starts_with("http://") || to.starts_with("https://"))
                || to.bytes().any(|b| b.is_ascii_control() || b == b' ')
            {
                return Err("redirect_to must be an http(s) URL without spaces".into());
            }
        } else if self.mode == Mode::Redirect {
            return Err("mode redirect needs redirect_to".into());
        }
        if matches!(&self.status_script, Some(s) if s.is_empty()) {
            return Err("status_script needs at least one step".into());
        }
        Ok(())
    }
}

/// Statuses that can carry a JSON body, which is what every injected reply has.
fn valid_reply_status(s: u16) -> bool {
    (200..=599).contains(&s) && s != 204 && s != 304
}

/// What a request was, for `/sim/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Start,
    Status,
    Request,
    Terminate,
    Event,
    Echo,
    Other,
}

const ALL_KINDS: [Kind; 7] = [
    Kind::Start,
    Kind::Status,
    Kind::Request,
    Kind::Terminate,
    Kind::Event,
    Kind::Echo,
    Kind::Other,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Status => "status",
            Kind::Request => "request",
            Kind::Terminate => "terminate",
            Kind::Event => "event",
            Kind::Echo => "echo",
            Kind::Other => "other",
        }
    }
}

/// Request counters of one instance; atomics so the hot path takes no lock for them.
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    by_kind: [AtomicU64; 7],
}

/// One ORS node.
struct Instance {
    name: String,
    /// The address actually bound, so that leaving refuse mode binds the same port.
    addr: SocketAddr,
    config: RwLock<Arc<InstanceConfig>>,
    /// Tells the acceptor whether to drop (true) or hold the listening socket.
    refuse: watch::Sender<bool>,
    /// Set by the acceptor to whether the socket is currently bound.
    listening: watch::Sender<bool>,
    stats: Stats,
}

impl Instance {
    fn config(&self) -> Arc<InstanceConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Session {
    owner: String,
    params: Map<String, Value>,
    started: Instant,
}

/// Live sessions, bounded: beyond `max` the oldest go, since a benchmark may start
/// sessions and never terminate them.
struct Sessions {
    map: HashMap<String, Session>,
    /// Creation order; may hold ids already terminated, compacted when it grows too long.
    order: VecDeque<String>,
    max: usize,
}

impl Sessions {
    fn new(max: usize) -> Self {
        Sessions {
            map: HashMap::new(),
            order: VecDeque::new(),
            max,
        }
    }

    fn insert(&mut self, id: String, s: Session) {
        self.order.push_back(id.clone());
        self.map.insert(id, s);
        while self.map.len() > self.max {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|id| map.contains_key(id));
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

/// One request as recorded in the log.
#[derive(Serialize)]
struct LogEntry {
    seq: u64,
    instance: String,
    method: String,
    path: String,
    query: String,
    #[serde(serialize_with = "ser_headers")]
    headers: Vec<(String, String)>,
    params: Map<String, Value>,
    body_len: usize,
    at_ms: u64,
}

fn ser_headers<S: serde::Serializer>(h: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    headers_json(h).serialize(s)
}

/// Ring buffer of the last `max` requests; `seq` keeps counting across clears so that
/// entries stay comparable.
struct RequestLog {
    entries: VecDeque<LogEntry>,
    max: usize,
    next_seq: u64,
}

impl RequestLog {
    fn push(&mut self, mut e: LogEntry) {
        self.next_seq += 1;
        e.seq = self.next_seq;
        if self.max == 0 {
            return;
        }
        while self.entries.len() >= self.max {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }
}

/// Everything the listeners share.
struct Sim {
    instances: Vec<Arc<Instance>>,
    /// With `--tls-cert`: instance connections start with this TLS handshake.
    tls: Option<TlsAcceptor>,
    status_script: Vec<ScriptStep>,
    sessions: Mutex<Sessions>,
    log: Mutex<RequestLog>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Sim {
    fn instance(&self, name: &str) -> Option<&Arc<Instance>> {
        self.instances.iter().find(|i| i.name == name)
    }

    fn record(
        &self,
        inst: &Instance,
        kind: Kind,
        head: &Head,
        params: &Map<String, Value>,
        body_len: usize,
    ) {
        inst.stats.requests.fetch_add(1, Ordering::Relaxed);
        inst.stats.by_kind[kind as usize].fetch_add(1, Ordering::Relaxed);
        let entry = LogEntry {
            seq: 0,
            instance: inst.name.clone(),
            method: head.method.clone(),
            path: head.path.clone(),
            query: head.query.clone(),
            headers: head.headers.clone(),
            params: params.clone(),
            body_len,
            at_ms: now_ms(),
        };
        lock(&self.log).push(entry);
    }
}

// ---------------------------------------------------------------------------------------
// HTTP parsing
// ---------------------------------------------------------------------------------------

/// A protocol error: answered with `status` and `{"error": msg}`, then the connection closes.
#[derive(Debug, PartialEq, Eq)]
struct HttpError {
    status: u16,
    msg: &'static str,
}

fn bad(msg: &'static str) -> HttpError {
    HttpError { status: 400, msg }
}

const TOO_LARGE: HttpError = HttpError {
    status: 413,
    msg: "request body larger than 16 MiB",
};

enum ConnError {
    /// The peer went away or timed out: nothing to answer.
    Closed,
    Http(HttpError),
}

impl From<HttpError> for ConnError {
    fn from(e: HttpError) -> Self {
        ConnError::Http(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    None,
    Length(usize),
    Chunked,
}

/// Request line and headers.
#[derive(Debug)]
struct Head {
    method: String,
    /// Raw (still percent-encoded) path, without the query.
    path: String,
    query: String,
    /// Lowercased names, in arrival order.
    headers: Vec<(String, String)>,
    keep_alive: bool,
    body: BodyKind,
    expect_continue: bool,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Request {
    head: Head,
    body: Bytes,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Finds the end of the head (just past its blank line), resuming the scan at `*from` so
/// that a head arriving in many small reads is not rescanned from the start each time.
fn find_head_end(buf: &[u8], from: &mut usize) -> Option<usize> {
    let mut i = (*from).min(buf.len());
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') => match buf.get(nl + 2) {
                Some(b'\n') => return Some(nl + 3),
                Some(_) => {}
                None => {
                    *from = nl;
                    return None;
                }
            },
            Some(_) => {}
            None => {
                *from = nl;
                return None;
            }
        }
        i = nl + 1;
    }
    *from = buf.len();
    None
}

/// Reduces an absolute-form target (as sent to proxies) to its path and query.
fn origin_form(target: &str) -> Result<&str, HttpError> {
    if target.starts_with('/') || target == "*" {
        return Ok(target);
    }
    for scheme in ["http://", "https://"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            return Ok(rest.find('/').map_or("/", |i| &rest[i..]));
        }
    }
    Err(bad("malformed request target"))
}

/// Parses a complete head (request line, header lines, blank line).
fn parse_head(raw: &[u8]) -> Result<Head, HttpError> {
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines
        .by_ref()
        .find(|l| !l.is_empty())
        .ok_or(bad("empty request"))?;
    let request_line =
        std::str::from_utf8(request_line).map_err(|_| bad("request line is not UTF-8"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(bad("malformed method"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => {
            return Err(HttpError {
                status: 505,
                msg: "HTTP version not supported",
            })
        }
        _ => return Err(bad("malformed HTTP version")),
    };
    let target = origin_form(target)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));

    let mut headers: Vec<(String, String)> = Vec::with_capacity(16);
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(bad("obsolete header line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(bad("header line without colon"))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad("malformed header name"));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(HttpError {
                status: 431,
                msg: "too many header fields",
            });
        }
        let value = trim_ows(&line[colon + 1..]);
        headers.push((
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }

    let mut close = false;
    let mut keep = false;
    let mut te: Vec<String> = Vec::new();
    let mut length: Option<usize> = None;
    let mut expect_continue = false;
    for (n, v) in &headers {
        match n.as_str() {
            "connection" => {
                for t in v.split(',').map(str::trim) {
                    if t.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case("keep-alive") {
                        keep = true;
                    }
                }
            }
            "transfer-encoding" => te.extend(
                v.split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty()),
            ),
            "content-length" => {
                for p in v.split(',').map(str::trim) {
                    if p.is_empty() || p.len() > 15 || !p.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad("malformed content-length"));
                    }
                    let n: usize = p.parse().map_err(|_| bad("malformed content-length"))?;
                    if length.is_some_and(|prev| prev != n) {
                        return Err(bad("conflicting content-length"));
                    }
                    length = Some(n);
                }
            }
            "expect" => expect_continue = http11 && v.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    // Transfer-Encoding wins over Content-Length (RFC 9112 6.3); only plain chunked is
    // decoded, as nothing here inflates compressed bodies.
    let body = if !te.is_empty() {
        if te != ["chunked"] {
            return Err(HttpError {
                status: 501,
                msg: "unsupported transfer-encoding",
            });
        }
        BodyKind::Chunked
    } else {
        match length {
            Some(n) if n > MAX_BODY => return Err(TOO_LARGE),
            Some(0) | None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        }
    };
    Ok(Head {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        keep_alive: !close && (http11 || keep),
        body,
        expect_continue,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
    Done,
}

/// Incremental chunked decoder: fed whatever has arrived, it consumes what it can, so a
/// large body arriving in many reads is parsed once rather than re-parsed per read.
struct ChunkedDecoder {
    state: ChunkState,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            trailer_bytes: 0,
        }
    }

    /// Moves decoded data from `buf` to `out`; true once the last chunk and the trailers
    /// are consumed (bytes after them stay in `buf`).
    fn feed(
        &mut self,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<bool, HttpError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE)? else {
                        return Ok(false);
                    };
                    let size = parse_chunk_size(&line)?;
                    if size == 0 {
                        self.state = ChunkState::Trailer;
                    } else {
                        if out.len().saturating_add(size) > max {
                            return Err(TOO_LARGE);
                        }
                        out.reserve(size);
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(false);
                    }
                    let n = left.min(buf.len());
                    out.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    if buf.starts_with(b"\r\n") {
                        buf.advance(2);
                    } else if buf.starts_with(b"\n") {
                        buf.advance(1);
                    } else if buf.is_empty() || &buf[..] == b"\r" {
                        return Ok(false);
                    } else {
                        return Err(bad("missing CRLF after chunk data"));
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = take_line(buf, MAX_TRAILERS)? else {
                        return Ok(false);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        return Ok(true);
                    }
                    self.trailer_bytes += line.len();
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(bad("chunked trailers too large"));
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

/// Takes one line (without its CRLF or LF) off `buf`, or None while it is incomplete.
fn take_line(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, HttpError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > max => Err(bad("chunk line too long")),
        Some(i) => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > max => Err(bad("chunk line too long")),
        None => Ok(None),
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let digits = trim_ows(line.split(|&b| b == b';').next().unwrap_or_default());
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad("malformed chunk size"));
    }
    let s = std::str::from_utf8(digits).map_err(|_| bad("malformed chunk size"))?;
    let n = u64::from_str_radix(s, 16).map_err(|_| bad("malformed chunk size"))?;
    usize::try_from(n).map_err(|_| TOO_LARGE)
}

// ---------------------------------------------------------------------------------------
// Form and query decoding
// ---------------------------------------------------------------------------------------

/// Strict `application/x-www-form-urlencoded` decoding: `+` is a space, a `%` must start a
/// valid escape and the result must be UTF-8, so that a gateway encoding bug shows as a
/// 400 rather than as silently mangled data. A repeated name collects its values in an
/// array.
fn decode_form(body: &[u8]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        insert_param(&mut map, decode_component(k)?, decode_component(v)?);
    }
    Ok(map)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_component(s: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = s.get(i + 1).copied().and_then(hex_val);
                let lo = s.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(format!("bad percent escape at byte {i}")),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after percent-decoding".to_string())
}

fn insert_param(map: &mut Map<String, Value>, k: String, v: String) {
    match map.get_mut(&k) {
        Some(Value::Array(a)) => a.push(Value::String(v)),
        Some(old) => {
            let first = old.take();
            *old = Value::Array(vec![first, Value::String(v)]);
        }
        None => {
            map.insert(k, Value::String(v));
        }
    }
}

/// Lenient decoding of a path segment (where `+` is literal), as a bad escape in a session
/// id or name should just fail to match rather than be an error of its own.
fn decode_segment(s: &str) -> String {
    percent_decode(s.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

/// Lenient query decoding for the simulator's own filters.
fn query_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (
            decode_segment(&k.replace('+', " ")),
            decode_segment(&v.replace('+', " ")),
        )
    })
}

/// The request's form parameters: only a form (or untyped) body is parsed, since other
/// bodies are not ORS parameters.
fn form_params(head: &Head, body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match head.header("content-type") {
        Some(ct)
            if !ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded") =>
        {
            Ok(Map::new())
        }
        _ => decode_form(body),
    }
}

/// Headers as a JSON object; repeated names are joined with ", " as HTTP allows.
fn headers_json(h: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (n, v) in h {
        match m.get_mut(n) {
            Some(Value::String(s)) => {
                s.push_str(", ");
                s.push_str(v);
            }
            _ => {
                m.insert(n.clone(), Value::String(v.clone()));
            }
        }
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

struct Response {
    status: u16,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Close the connection after this reply whatever the client asked.
    close: bool,
}

impl Response {
    fn json(status: u16, v: &Value) -> Self {
        Response::json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
    }

    fn json_bytes(status: u16, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type: Some("application/json"),
            headers: Vec::new(),
            body,
            close: false,
        }
    }

    fn error(status: u16, msg: &str) -> Self {
        Response::json(status, &json!({ "error": msg }))
    }

    fn text(status: u16, s: String) -> Self {
        Response {
            status,
            content_type: Some("text/plain"),
            headers: Vec::new(),
            body: s.into_bytes(),
            close: false,
        }
    }

    fn empty(status: u16) -> Self {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

fn method_not_allowed(allow: &str) -> Response {
    Response::error(405, "method not allowed").with_header("Allow", allow.to_string())
}

fn not_found() -> Response {
    Response::error(404, "not found")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn encode_response(out: &mut Vec<u8>, resp: &Response, keep_alive: bool, head_only: bool) {
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    if let Some(ct) = resp.content_type {
        let _ = write!(out, "Content-Type: {ct}\r\n");
    }
    for (n, v) in &resp.headers {
        let _ = write!(out, "{n}: {v}\r\n");
    }
    // 204 and 304 must carry neither a body nor a Content-Length.
    let bodiless = resp.status == 204 || resp.status == 304;
    if !bodiless {
        let _ = write!(out, "Content-Length: {}\r\n", resp.body.len());
    }
    let conn = if keep_alive && !resp.close {
        "keep-alive"
    } else {
        "close"
    };
    let _ = write!(out, "Connection: {conn}\r\n\r\n");
    if !head_only && !bodiless {
        out.extend_from_slice(&resp.body);
    }
}

// ---------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------

/// A connection's byte stream: TCP, or TLS over TCP.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// Reads into `buf`, growing it only when nearly full so that steady keep-alive traffic
/// reuses one allocation.
async fn fill(
    stream: &mut impl Conn,
    buf: &mut BytesMut,
    limit: Duration,
) -> Result<usize, ConnError> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    match tokio::time::timeout(limit, stream.read_buf(buf)).await {
        Ok(Ok(n)) => Ok(n),
        _ => Err(ConnError::Closed),
    }
}

/// Reads the next head; None on a clean close between requests.
async fn read_head(
    stream: &mut impl Conn,
    buf: &mut BytesMut,
    idle: Duration,
) -> Result<Option<Head>, ConnError> {
    let mut scan_from = 0;
    loop {
        if scan_from == 0 {
            // RFC 9112 2.2: blank lines before a request line are ignored.
            let mut skip = 0;
            loop {
                if buf[skip..].starts_with(b"\r\n") {
                    skip += 2;
                } else if buf[skip..].starts_with(b"\n") {
                    skip += 1;
                } else {
                    break;
                }
            }
            buf.advance(skip);
        }
        if let Some(end) = find_head_end(buf, &mut scan_from) {
            if end > MAX_HEAD {
                return Err(too_big_head().into());
            }
            let raw = buf.split_to(end);
            return Ok(Some(parse_head(&raw)?));
        }
        if buf.len() > MAX_HEAD {
            return Err(too_big_head().into());
        }
        let limit = if buf.is_empty() { idle } else { READ_TIMEOUT };
        if fill(stream, buf, limit).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ConnError::Closed)
            };
        }
    }
}

fn too_big_head() -> HttpError {
    HttpError {
        status: 431,
        msg: "request head larger than 64 KiB",
    }
}

async fn send_continue(stream: &mut impl Conn) -> Result<(), ConnError> {
    stream
        .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        .await
        .map_err(|_| ConnError::Closed)
}

async fn read_body(
    stream: &mut impl Conn,
    buf: &mut BytesMut,
    head: &Head,
) -> Result<Bytes, ConnError> {
    match head.body {
        BodyKind::None => Ok(Bytes::new()),
        BodyKind::Length(n) => {
            if buf.len() < n {
                if head.expect_continue {
                    send_continue(stream).await?;
                }
                buf.reserve(n - buf.len());
                while buf.len() < n {
                    if fill(stream, buf, READ_TIMEOUT).await? == 0 {
                        return Err(ConnError::Closed);
                    }
                }
            }
            Ok(buf.split_to(n).freeze())
        }
        BodyKind::Chunked => {
            let mut dec = ChunkedDecoder::new();
            let mut out = Vec::new();
            let mut continued = !head.expect_continue;
            loop {
                if dec.feed(buf, &mut out, MAX_BODY)? {
                    return Ok(Bytes::from(out));
                }
                if !continued {
                    send_continue(stream).await?;
                    continued = true;
                }
                if fill(stream, buf, READ_TIMEOUT).await? == 0 {
                    return Err(ConnError::Closed);
                }
            }
        }
    }
}

/// Reads and discards until the peer closes, at most `limit` long and `budget` bytes.
async fn drain(stream: &mut impl Conn, limit: Duration, mut budget: usize) {
    let mut sink = [0u8; 8192];
    let _ = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) if n >= budget => break,
                Ok(n) => budget -= n,
            }
        }
    })
    .await;
}

async fn reply_error_and_close(stream: &mut impl Conn, out: &mut Vec<u8>, err: HttpError) {
    let mut resp = Response::error(err.status, err.msg);
    resp.close = true;
    out.clear();
    encode_response(out, &resp, false, false);
    if stream.write_all(out).await.is_ok() {
        let _ = stream.shutdown().await;
        drain(stream, LINGER, MAX_BODY + MAX_HEAD).await;
    }
}

/// What to do with a request once handled.
enum Outcome {
    Reply(Response),
    /// Drop the connection without a word (refuse mode).
    Close,
    /// Hold the connection unanswered (hang mode).
    Hang,
}

fn is_sim_path(path: &str) -> bool {
    path == "/sim" || path.starts_with("/sim/")
}

/// Serves one connection; `inst` is None on the control listener.
async fn serve_conn(sim: Arc<Sim>, inst: Option<Arc<Instance>>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let tls = if inst.is_some() {
        sim.tls.clone()
    } else {
        None
    };
    match tls {
        Some(acceptor) => {
            // A client that fails the handshake (e.g. rejects the certificate) just goes away.
            if let Ok(Ok(s)) = tokio::time::timeout(READ_TIMEOUT, acceptor.accept(stream)).await {
                serve_http(sim, inst, s).await;
            }
        }
        None => serve_http(sim, inst, stream).await,
    }
}

/// The HTTP/1.1 exchange of one connection.
async fn serve_http(sim: Arc<Sim>, inst: Option<Arc<Instance>>, mut stream: impl Conn) {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(4 * 1024);
    loop {
        let idle = match inst.as_ref().map(|i| i.config().idle_close_ms) {
            Some(ms) if ms > 0 => Duration::from_millis(ms),
            _ => IDLE_TIMEOUT,
        };
        let head = match read_head(&mut stream, &mut buf, idle).await {
            Ok(Some(h)) => h,
            Ok(None) | Err(ConnError::Closed) => return,
            Err(ConnError::Http(e)) => {
                return reply_error_and_close(&mut stream, &mut out, e).await
            }
        };
        // A refusing node is down for everything, control requests included, so that
        // pooled connections to it fail like they would against a dead ORS.
        if let Some(i) = &inst {
            if i.config().mode == Mode::Refuse {
                return;
            }
        }
        let body = match read_body(&mut stream, &mut buf, &head).await {
            Ok(b) => b,
            Err(ConnError::Closed) => return,
            Err(ConnError::Http(e)) => {
                return reply_error_and_close(&mut stream, &mut out, e).await
            }
        };
        let req = Request { head, body };
        let outcome = if is_sim_path(&req.head.path) {
            Outcome::Reply(handle_control(&sim, &req).await)
        } else if let Some(i) = &inst {
            handle_instance(&sim, i, &req).await
        } else {
            Outcome::Reply(Response::error(
                404,
                "the control listener serves only /sim/...",
            ))
        };
        let resp = match outcome {
            Outcome::Reply(r) => r,
            Outcome::Close => return,
            Outcome::Hang => return drain(&mut stream, HANG_LIMIT, usize::MAX).await,
        };
        let keep = req.head.keep_alive && !resp.close;
        out.clear();
        encode_response(&mut out, &resp, keep, req.head.method == "HEAD");
        if stream.write_all(&out).await.is_err() {
            return;
        }
        if !keep {
            let _ = stream.shutdown().await;
            return;
        }
        // Give back the memory of one big request instead of keeping it per connection.
        if buf.is_empty() && buf.capacity() > 256 * 1024 {
            buf = BytesMut::with_capacity(8 * 1024);
        }
        if out.capacity() > 256 * 1024 {
            out = Vec::with_capacity(4 * 1024);
        }
    }
}

// ---------------------------------------------------------------------------------------
// ORS and echo
// ---------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Start,
    Request { sid: String, name: String },
    Event { sid: String },
    Terminate { sid: String },
    OrsUnknown,
    Echo,
}

impl Route {
    fn parse(path: &str) -> Route {
        if !(path == "/scxml" || path.starts_with("/scxml/")) {
            return Route::Echo;
        }
        let Some(rest) = path.strip_prefix("/scxml/session/") else {
            return Route::OrsUnknown;
        };
        if rest == "start" {
            return Route::Start;
        }
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [sid, "request", name] if !sid.is_empty() && !name.is_empty() => Route::Request {
                sid: decode_segment(sid),
                name: decode_segment(name),
            },
            [sid, "event", name] if !sid.is_empty() && !name.is_empty() => Route::Event {
                sid: decode_segment(sid),
            },
            [sid, "terminate"] if !sid.is_empty() => Route::Terminate {
                sid: decode_segment(sid),
            },
            _ => Route::OrsUnknown,
        }
    }

    fn kind(&self) -> Kind {
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

async fn handle_instance(sim: &Sim, inst: &Instance, req: &Request) -> Outcome {
    let cfg = inst.config();
    if cfg.mode == Mode::Refuse {
        return Outcome::Close;
    }
    let head = &req.head;
    let route = Route::parse(&head.path);
    let ors = route != Route::Echo;
    let (params, form_error) = match form_params(head, &req.body) {
        Ok(p) => (p, None),
        Err(e) => (Map::new(), Some(e)),
    };
    sim.record(inst, route.kind(), head, &params, req.body.len());
    if cfg.mode == Mode::Hang {
        return Outcome::Hang;
    }
    if cfg.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.latency_ms)).await;
    }
    let resp = match (cfg.mode, &cfg.redirect_to) {
        (Mode::Error, _) => Response::error(cfg.error_status, "injected failure"),
        (Mode::Redirect, Some(to)) if ors => {
            let mut loc = format!("{}{}", to.trim_end_matches('/'), head.path);
            if !head.query.is_empty() {
                loc.push('?');
                loc.push_str(&head.query);
            }
            Response::empty(307).with_header("Location", loc)
        }
        _ if !ors => echo(inst, req),
        _ if route != Route::OrsUnknown && head.method != "POST" => method_not_allowed("POST"),
        _ => match form_error {
            Some(e) => Response::error(400, &format!("malformed form body: {e}")),
            None => handle_ors(sim, inst, &cfg, route, params),
        },
    };
    Outcome::Reply(resp.with_header("X-Sim-Instance", inst.name.clone()))
}

fn unknown_session() -> Response {
    Response::error(404, "unknown session")
}

fn handle_ors(
    sim: &Sim,
    inst: &Instance,
    cfg: &InstanceConfig,
    route: Route,
    params: Map<String, Value>,
) -> Response {
    match route {
        Route::Start => {
            if !matches!(params.get("src"), Some(Value::String(s)) if !s.is_empty()) {
                return Response::error(400, "src is required");
            }
            let sid = uuid::Uuid::new_v4().simple().to_string();
            let session = Session {
                owner: inst.name.clone(),
                params,
                started: Instant::now(),
            };
            lock(&sim.sessions).insert(sid.clone(), session);
            match cfg.start_reply {
                StartReply::Json => Response::json(200, &json!({ "sessionid": sid })),
                StartReply::Text => Response::text(200, sid),
            }
        }
        Route::Request { sid, name } => {
            let started = lock(&sim.sessions).map.get(&sid).map(|s| s.started);
            let Some(started) = started else {
                return unknown_session();
            };
            if name == "status" {
                let script = cfg.status_script.as_deref().unwrap_or(&sim.status_script);
                let elapsed = started.elapsed().as_millis() as u64;
                let empty = json!({});
                return Response::json(200, select_status(script, elapsed).unwrap_or(&empty));
            }
            if name == "gms.start" {
                let seen = params.get("_service_id").cloned().unwrap_or(Value::Null);
                return Response::json(
                    200,
                    &json!({"message": "started", "sessionid": sid, "_id_seen": seen}),
                );
            }
            if let Some(code) = name
                .strip_prefix("fail-")
                .and_then(|c| c.parse::<u16>().ok())
            {
                if valid_reply_status(code) {
                    return Response::error(code, "requested failure");
                }
            }
            Response::json(
                200,
                &json!({"request": name, "sessionid": sid, "params": params}),
            )
        }
        Route::Event { sid } => {
            if lock(&sim.sessions).map.contains_key(&sid) {
                Response::json(200, &json!({}))
            } else {
                unknown_session()
            }
        }
        Route::Terminate { sid } => {
            if lock(&sim.sessions).map.remove(&sid).is_some() {
                Response::json(200, &json!({}))
            } else {
                unknown_session()
            }
        }
        Route::OrsUnknown | Route::Echo => not_found(),
    }
}

fn echo(inst: &Instance, req: &Request) -> Response {
    let h = &req.head;
    Response::json(
        200,
        &json!({
            "instance": inst.name,
            "method": h.method,
            "path": h.path,
            "query": h.query,
            "headers": headers_json(&h.headers),
            "body": String::from_utf8_lossy(&req.body),
            "body_len": req.body.len(),
        }),
    )
}

// ---------------------------------------------------------------------------------------
// Control endpoints
// ---------------------------------------------------------------------------------------

async fn handle_control(sim: &Sim, req: &Request) -> Response {
    let head = &req.head;
    let m = head.method.as_str();
    match head.path.as_str() {
        "/sim/instances" => match m {
            "GET" => {
                let mut all = Map::new();
                for i in &sim.instances {
                    all.insert(i.name.clone(), config_json(&i.config()));
                }
                Response::json(200, &Value::Object(all))
            }
            _ => method_not_allowed("GET"),
        },
        "/sim/log" => match m {
            "GET" => log_reply(sim, &head.query),
            "DELETE" => {
                let cleared = {
                    let mut log = lock(&sim.log);
                    let n = log.entries.len();
                    log.entries.clear();
                    n
                };
                for i in &sim.instances {
                    i.stats.requests.store(0, Ordering::Relaxed);
                    for k in &i.stats.by_kind {
                        k.store(0, Ordering::Relaxed);
                    }
                }
                Response::json(200, &json!({ "cleared": cleared }))
            }
            _ => method_not_allowed("GET, DELETE"),
        },
        "/sim/stats" => match m {
            "GET" => stats_reply(sim),
            _ => method_not_allowed("GET"),
        },
        "/sim/sessions" => match m {
            "GET" => sessions_reply(sim),
            "DELETE" => {
                lock(&sim.sessions).clear();
                Response::json(200, &json!({}))
            }
            _ => method_not_allowed("GET, DELETE"),
        },
        p => match p.strip_prefix("/sim/instances/") {
            Some(name) => {
                let name = decode_segment(name);
                let Some(inst) = sim.instance(&name) else {
                    return Response::error(404, "unknown instance");
                };
                match m {
                    "GET" => Response::json(200, &config_json(&inst.config())),
                    "PUT" => put_config(inst, &req.body).await,
                    _ => method_not_allowed("GET, PUT"),
                }
            }
            None => not_found(),
        },
    }
}

fn config_json(cfg: &InstanceConfig) -> Value {
    serde_json::to_value(cfg).unwrap_or(Value::Null)
}

async fn put_config(inst: &Instance, body: &[u8]) -> Response {
    let cfg: InstanceConfig = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return Response::error(400, &format!("bad config: {e}")),
    };
    if let Err(e) = cfg.validate() {
        return Response::error(400, &format!("bad config: {e}"));
    }
    let refuse = cfg.mode == Mode::Refuse;
    let reply = config_json(&cfg);
    *inst.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(cfg);
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
        Response::json(200, &reply)
    } else {
        Response::json(
            503,
            &json!({"error": "config stored, but the listener could not be rebound yet; still retrying", "config": reply}),
        )
    }
}

fn log_reply(sim: &Sim, query: &str) -> Response {
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
        .filter(|e| instance.as_deref().is_none_or(|i| e.instance == i))
        .collect();
    let body = serde_json::to_vec(&picked).unwrap_or_default();
    drop(log);
    Response::json_bytes(200, body)
}

fn stats_reply(sim: &Sim) -> Response {
    let mut all = Map::new();
    for i in &sim.instances {
        let mut by = Map::new();
        for k in ALL_KINDS {
            by.insert(
                k.name().to_string(),
                json!(i.stats.by_kind[k as usize].load(Ordering::Relaxed)),
            );
        }
        all.insert(
            i.name.clone(),
            json!({"requests": i.stats.requests.load(Ordering::Relaxed), "by_kind": by}),
        );
    }
    Response::json(200, &Value::Object(all))
}

/// A session as listed by `GET /sim/sessions`, borrowed so that listing a full table does
/// not copy every session's parameters first.
#[derive(Serialize)]
struct SessionView<'a> {
    owner: &'a str,
    params: &'a Map<String, Value>,
    age_ms: u64,
}

fn sessions_reply(sim: &Sim) -> Response {
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
    Response::json_bytes(200, body)
}

// ---------------------------------------------------------------------------------------
// Listeners and main
// ---------------------------------------------------------------------------------------

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Leaving refuse mode rebinds the port while old connections on it may linger.
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

async fn resolve(spec: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = spec.parse() {
        return Ok(a);
    }
    match tokio::net::lookup_host(spec).await {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{spec}: resolves to no address")),
        Err(e) => Err(format!("bad address {spec:?}: {e}")),
    }
}

/// Accepts while the instance is not refusing; drops the socket while it is, so that
/// connects get "connection refused" as from a stopped node.
async fn run_instance(sim: Arc<Sim>, inst: Arc<Instance>, first: TcpListener) {
    let mut rx = inst.refuse.subscribe();
    let mut listener = Some(first);
    loop {
        if *rx.borrow_and_update() {
            listener = None;
            inst.listening.send_replace(false);
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match bind(inst.addr) {
                Ok(l) => l,
                Err(e) => {
                    log::warn!("{}: cannot listen again: {e}; retrying", inst.name);
                    tokio::select! {
                        _ = tokio::time::sleep(REBIND_RETRY) => {}
                        r = rx.changed() => if r.is_err() { return },
                    }
                    continue;
                }
            },
        };
        inst.listening.send_replace(true);
        loop {
            tokio::select! {
                r = l.accept() => match r {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_conn(sim.clone(), Some(inst.clone()), stream));
                    }
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        log::warn!("{}: accept failed: {e}", inst.name);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                r = rx.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if *rx.borrow() {
                        break;
                    }
                }
            }
        }
    }
}

async fn run_control(sim: Arc<Sim>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_conn(sim.clone(), None, stream));
            }
            Err(e) => {
                log::warn!("control: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Name for a listener: as given, unless port 0 was asked, where only the bound address
/// is of use to a client.
fn listener_name(spec: &str, asked: SocketAddr, bound: SocketAddr) -> String {
    if asked.port() == 0 {
        bound.to_string()
    } else {
        spec.to_string()
    }
}

/// The TLS side of `--tls-cert` / `--tls-key`: HTTP/1.1 only (ALPN `http/1.1`).
fn tls_acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, String> {
    let (certs, key_der) = match load_certs_and_key_files(cert, key) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Err(format!("no certificate in {cert} or no key in {key}")),
        Err(e) => return Err(format!("cannot load {cert} / {key}: {e}")),
    };
    install_default_crypto_provider();
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("{cert} / {key}: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn run(args: Args) -> Result<(), String> {
    let mut instances = Vec::new();
    let mut listeners = Vec::new();
    for spec in &args.listen {
        let asked = resolve(spec).await?;
        let l = bind(asked).map_err(|e| format!("cannot listen on {spec}: {e}"))?;
        let bound = l.local_addr().map_err(|e| format!("{spec}: {e}"))?;
        let name = listener_name(spec, asked, bound);
        if instances.iter().any(|i: &Arc<Instance>| i.name == name) {
            return Err(format!("instance {name} given twice"));
        }
        instances.push(Arc::new(Instance {
            name,
            addr: bound,
            config: RwLock::new(Arc::new(InstanceConfig::default())),
            refuse: watch::Sender::new(false),
            listening: watch::Sender::new(true),
            stats: Stats::default(),
        }));
        listeners.push(l);
    }
    let control = match &args.control {
        Some(spec) => {
            let asked = resolve(spec).await?;
            let l = bind(asked).map_err(|e| format!("cannot listen on {spec}: {e}"))?;
            let bound = l.local_addr().map_err(|e| format!("{spec}: {e}"))?;
            Some((listener_name(spec, asked, bound), l))
        }
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let sim = Arc::new(Sim {
        instances: instances.clone(),
        tls,
        status_script: args.status_script,
        sessions: Mutex::new(Sessions::new(args.max_sessions)),
        log: Mutex::new(RequestLog {
            entries: VecDeque::new(),
            max: args.log_max,
            next_seq: 0,
        }),
    });
    {
        let mut out = std::io::stdout().lock();
        for i in &instances {
            let _ = writeln!(out, "ors-sim listening on {}", i.name);
        }
        if let Some((name, _)) = &control {
            let _ = writeln!(out, "ors-sim listening on {name}");
        }
        let _ = out.flush();
    }
    for (inst, l) in instances.into_iter().zip(listeners) {
        tokio::spawn(run_instance(sim.clone(), inst, l));
    }
    if let Some((_, l)) = control {
        tokio::spawn(run_control(sim.clone(), l));
    }
    std::future::pending::<()>().await;
    Ok(())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ors-sim: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if args.help {
        println!("{USAGE}");
        return;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ors-sim: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("ors-sim: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn form_decoding() {
        let m = decode_form(b"src=http%3A%2F%2Fh%2Fa.scxml&a+b=c+d%2B&e=&f&&x=1&x=2&x=3").unwrap();
        assert_eq!(m["src"], "http://h/a.scxml");
        assert_eq!(m["a b"], "c d+");
        assert_eq!(m["e"], "");
        assert_eq!(m["f"], "");
        assert_eq!(m["x"], json!(["1", "2", "3"]));
        assert_eq!(decode_form(b"k=%C3%A9").unwrap()["k"], "é");
        assert!(decode_form(b"k=%zz").is_err());
        assert!(decode_form(b"k=%4").is_err());
        assert!(decode_form(b"k=%").is_err());
        assert!(decode_form(b"k=%ff").is_err());
        assert!(decode_form(b"").unwrap().is_empty());
    }

    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), HttpError> {
        let mut dec = ChunkedDecoder::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            fed += piece.len();
            if dec.feed(&mut buf, &mut out, 1024)? {
                // Whatever follows the body belongs to the next request.
                let mut rest = buf.to_vec();
                rest.extend_from_slice(&input[fed..]);
                return Ok((out, rest));
            }
        }
        Err(bad("incomplete"))
    }

    #[test]
    fn chunked_decoding() {
        let input = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nA \r\n0123456789\r\n0\r\nX-T: y\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, input.len()] {
            let (body, rest) = decode_all(input, step).unwrap();
            assert_eq!(body, b"Wikipedia0123456789", "step {step}");
            assert_eq!(rest, b"NEXT", "step {step}");
        }
        assert_eq!(decode_all(b"3\nabc\n0\n\n", 1).unwrap().0, b"abc");
        assert_eq!(decode_all(b"zz\r\n", 4).unwrap_err().status, 400);
        assert_eq!(decode_all(b"3\r\nabcX", 8).unwrap_err().status, 400);
        assert_eq!(decode_all(b"401\r\n", 8).unwrap_err().status, 413);
        assert_eq!(
            decode_all(b"ffffffffffffffffff\r\n", 64)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            decode_all(b"3\r\nabc\r\n0\r\n", 64).unwrap_err().msg,
            "incomplete"
        );
    }

    #[test]
    fn status_script_selection() {
        let s = default_status_script();
        assert_eq!(select_status(&s, 0).unwrap()["status"], "waiting-for-agent");
        assert_eq!(
            select_status(&s, 4999).unwrap()["status"],
            "waiting-for-agent"
        );
        assert_eq!(select_status(&s, 5000).unwrap()["status"], "connected");
        assert_eq!(select_status(&s, 99_999).unwrap()["status"], "connected");
        let late = parse_status_script(
            r#"[{"after_ms":100,"body":{"n":1}},{"after_ms":200,"body":{"n":2}}]"#,
        )
        .unwrap();
        assert_eq!(select_status(&late, 50).unwrap()["n"], 1);
        assert_eq!(select_status(&late, 150).unwrap()["n"], 1);
        assert_eq!(select_status(&late, 200).unwrap()["n"], 2);
        assert!(select_status(&[], 0).is_none());
        assert!(parse_status_script("[]").is_err());
        assert!(parse_status_script(r#"[{"after_ms":0}]"#).is_err());
        assert!(parse_status_script(r#"[{"after_ms":0,"body":1,"x":2}]"#).is_err());
    }

    #[test]
    fn argv_parsing() {
        let a = parse_args(argv(&[
            "--listen",
            "127.0.0.1:7210",
            "--listen=127.0.0.1:7211",
            "--control",
            "127.0.0.1:7299",
            "--log-max",
            "5",
            "--threads=2",
            "--status-script",
            r#"[{"after_ms":0,"body":{"s":1}}]"#,
        ]))
        .unwrap();
        assert_eq!(a.listen, ["127.0.0.1:7210", "127.0.0.1:7211"]);
        assert_eq!(a.control.as_deref(), Some("127.0.0.1:7299"));
        assert_eq!(
            (a.log_max, a.threads, a.max_sessions),
            (5, 2, DEFAULT_MAX_SESSIONS)
        );
        assert_eq!(a.status_script.len(), 1);

        let d = parse_args(argv(&["--listen", "127.0.0.1:1"])).unwrap();
        assert_eq!(
            (d.log_max, d.threads, d.control),
            (DEFAULT_LOG_MAX, 1, None)
        );
        assert_eq!(d.status_script, default_status_script());

        assert!(parse_args(argv(&[])).is_err());
        assert!(parse_args(argv(&["--listen"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--bogus"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--threads", "0"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--log-max", "x"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--listen", "a:1"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--status-script", "{"])).is_err());
        assert!(parse_args(argv(&["--listen", "a:1", "--tls-cert", "c.pem"])).is_err());
        let t = parse_args(argv(&[
            "--listen",
            "a:1",
            "--tls-cert",
            "c.pem",
            "--tls-key=k.pem",
        ]))
        .unwrap();
        assert_eq!(
            (t.tls_cert.as_deref(), t.tls_key.as_deref()),
            (Some("c.pem"), Some("k.pem"))
        );
        assert!(parse_args(argv(&["--help"])).unwrap().help);
    }

    #[test]
    fn head_parsing() {
        let h = parse_head(b"\r\nPOST /scxml/session/start?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-A:  v v \r\n\r\n").unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.query.as_str()),
            ("POST", "/scxml/session/start", "x=1")
        );
        assert_eq!(h.body, BodyKind::Length(5));
        assert!(h.keep_alive);
        assert_eq!(h.header("x-a"), Some("v v"));

        let h =
            parse_head(b"GET http://h:1/a/b?q HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert_eq!(
            (h.path.as_str(), h.query.as_str(), h.keep_alive),
            ("/a/b", "q", true)
        );
        assert!(!parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            !parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );

        let h = parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert_eq!(h.body, BodyKind::Chunked);
        assert!(h.expect_continue);

        let status = |raw: &[u8]| parse_head(raw).unwrap_err().status;
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            413
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nA b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status(b"GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET nope HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"\r\n"), 400);
    }

    #[test]
    fn head_end_scanning() {
        let mut from = 0;
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nBODY", &mut from),
            Some(24)
        );
        let full = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        let mut from = 0;
        for end in 1..full.len() {
            assert_eq!(find_head_end(&full[..end], &mut from), None);
        }
        assert_eq!(find_head_end(full, &mut from), Some(full.len()));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\n", &mut 0), Some(21));
    }

    #[test]
    fn routes_and_configs() {
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
        assert_eq!(
            query_pairs("path_prefix=%2Fscxml+x&instance=1").collect::<Vec<_>>(),
            [
                ("path_prefix".to_string(), "/scxml x".to_string()),
                ("instance".to_string(), "1".to_string())
            ]
        );
        assert_eq!(Route::parse("/scxml/session//terminate"), Route::OrsUnknown);
        assert_eq!(Route::parse("/scxml"), Route::OrsUnknown);
        assert_eq!(Route::parse("/scxmlx"), Route::Echo);
        assert_eq!(Route::parse("/health"), Route::Echo);

        let c: InstanceConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, InstanceConfig::default());
        assert_eq!(c.error_status, 503);
        let c: InstanceConfig = serde_json::from_str(
            r#"{"mode":"redirect","redirect_to":"http://127.0.0.1:1","start_reply":"text"}"#,
        )
        .unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.start_reply, StartReply::Text);
        assert!(serde_json::from_str::<InstanceConfig>(r#"{"mode":"down"}"#).is_err());
        assert!(serde_json::from_str::<InstanceConfig>(r#"{"latency":1}"#).is_err());
        let c: InstanceConfig = serde_json::from_str(r#"{"mode":"redirect"}"#).unwrap();
        assert!(c.validate().is_err());
        let c: InstanceConfig = serde_json::from_str(r#"{"error_status":204}"#).unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn sessions_are_bounded() {
        let mut s = Sessions::new(3);
        for i in 0..10 {
            s.insert(
                format!("s{i}"),
                Session {
                    owner: "o".into(),
                    params: Map::new(),
                    started: Instant::now(),
                },
            );
        }
        assert_eq!(s.map.len(), 3);
        assert!(s.map.contains_key("s9") && !s.map.contains_key("s6"));
        // Created and terminated at once: the order queue must not grow without bound.
        for i in 0..10_000 {
            let id = format!("t{i}");
            s.insert(
                id.clone(),
                Session {
                    owner: "o".into(),
                    params: Map::new(),
                    started: Instant::now(),
                },
            );
            s.map.remove(&id);
        }
        assert!(s.order.len() <= 2 * s.map.len() + 1025);
    }

    #[test]
    fn log_is_a_ring() {
        let mut log = RequestLog {
            entries: VecDeque::new(),
            max: 2,
            next_seq: 0,
        };
        for _ in 0..5 {
            log.push(LogEntry {
                seq: 0,
                instance: "i".into(),
                method: "GET".into(),
                path: "/".into(),
                query: String::new(),
                headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                params: Map::new(),
                body_len: 0,
                at_ms: 0,
            });
        }
        let seqs: Vec<u64> = log.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [4, 5]);
        let v = serde_json::to_value(&log.entries[0]).unwrap();
        assert_eq!(v["headers"]["a"], "1, 2");
    }
}
