//! The state every listener shares: instances, sessions, callbacks, the request log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use pingora::tls::TlsAcceptor;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::callback::Callbacks;
use crate::config::{InstanceConfig, ScriptStep};
use crate::http::Request;
use crate::record::{Kind, LogEntry, RequestLog, Stats};
use crate::sessions::Sessions;

/// One ORS node.
pub struct Instance {
    pub name: Arc<str>,
    /// `name` as the `X-Sim-Instance` value, built once.
    pub header: HeaderValue,
    /// The address actually bound, so that leaving refuse mode binds the same port.
    pub addr: SocketAddr,
    config: RwLock<Arc<InstanceConfig>>,
    /// Tells the acceptor whether to drop (true) or hold the listening socket.
    pub refuse: watch::Sender<bool>,
    /// Set by the acceptor to whether the socket is currently bound.
    pub listening: watch::Sender<bool>,
    pub stats: Stats,
}

impl Instance {
    /// A new instance with the default config, its socket bound at `addr`.
    pub fn new(name: String, addr: SocketAddr) -> Result<Instance, String> {
        let header =
            HeaderValue::from_str(&name).map_err(|_| format!("bad instance name {name:?}"))?;
        Ok(Instance {
            name: name.into(),
            header,
            addr,
            config: RwLock::new(Arc::new(InstanceConfig::default())),
            refuse: watch::Sender::new(false),
            listening: watch::Sender::new(true),
            stats: Stats::default(),
        })
    }

    /// The current failure-injection config.
    pub fn config(&self) -> Arc<InstanceConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the config (the refuse switch is the caller's).
    pub fn set_config(&self, cfg: InstanceConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(cfg);
    }
}

/// Everything the listeners share.
pub struct Sim {
    pub instances: Vec<Arc<Instance>>,
    /// With `--tls-cert`: instance connections start with this TLS handshake.
    pub tls: Option<TlsAcceptor>,
    pub status_script: Vec<ScriptStep>,
    pub sessions: Mutex<Sessions>,
    pub log: Mutex<RequestLog>,
    pub callbacks: Arc<Callbacks>,
}

/// Locks `m`, also after a panic elsewhere (the data stays usable for a simulator).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wall-clock milliseconds since the epoch, for log and report timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Sim {
    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> Option<&Arc<Instance>> {
        self.instances.iter().find(|i| &*i.name == name)
    }

    /// Counts a request and logs it.
    pub fn record(&self, inst: &Instance, kind: Kind, req: &Request, params: &Map<String, Value>) {
        inst.stats.count(kind);
        if !lock(&self.log).keeps() {
            return;
        }
        let entry = LogEntry {
            seq: 0,
            instance: inst.name.clone(),
            method: req.method.clone(),
            path: req.path().to_string(),
            query: req.query().to_string(),
            headers: req.headers.clone(),
            params: params.clone(),
            body_len: req.body.len(),
            at_ms: now_ms(),
        };
        lock(&self.log).push(entry);
    }
}
