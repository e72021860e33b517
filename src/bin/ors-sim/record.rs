//! What the instances saw: the request log ring and the per-instance counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::{HeaderMap, Method};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::http::HeadersJson;

/// What a request was, for `/sim/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Start,
    Status,
    Request,
    Terminate,
    Event,
    Echo,
    Other,
}

/// Every kind, in the order of `Stats::by_kind`.
pub const ALL_KINDS: [Kind; 7] = [
    Kind::Start,
    Kind::Status,
    Kind::Request,
    Kind::Terminate,
    Kind::Event,
    Kind::Echo,
    Kind::Other,
];

impl Kind {
    /// The kind's key in `/sim/stats`.
    pub fn name(self) -> &'static str {
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
pub struct Stats {
    pub requests: AtomicU64,
    pub by_kind: [AtomicU64; 7],
}

impl Stats {
    /// Counts one request.
    pub fn count(&self, kind: Kind) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.by_kind[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Back to zero.
    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        for k in &self.by_kind {
            k.store(0, Ordering::Relaxed);
        }
    }

    /// `{"requests":n,"by_kind":{...}}`.
    pub fn json(&self) -> Value {
        let mut by = Map::new();
        for k in ALL_KINDS {
            let n = self.by_kind[k as usize].load(Ordering::Relaxed);
            by.insert(k.name().to_string(), Value::from(n));
        }
        let mut m = Map::new();
        m.insert(
            "requests".into(),
            Value::from(self.requests.load(Ordering::Relaxed)),
        );
        m.insert("by_kind".into(), Value::Object(by));
        Value::Object(m)
    }
}

/// One request as recorded in the log.
#[derive(Serialize)]
pub struct LogEntry {
    pub seq: u64,
    #[serde(serialize_with = "ser_str")]
    pub instance: Arc<str>,
    #[serde(serialize_with = "ser_method")]
    pub method: Method,
    pub path: String,
    pub query: String,
    #[serde(serialize_with = "ser_headers")]
    pub headers: HeaderMap,
    pub params: Map<String, Value>,
    pub body_len: usize,
    pub at_ms: u64,
}

fn ser_str<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn ser_method<S: Serializer>(m: &Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

fn ser_headers<S: Serializer>(h: &HeaderMap, s: S) -> Result<S::Ok, S::Error> {
    HeadersJson(h).serialize(s)
}

/// Ring buffer of the last `max` requests; `seq` keeps counting across clears so that
/// entries stay comparable.
pub struct RequestLog {
    pub entries: VecDeque<LogEntry>,
    max: usize,
    next_seq: u64,
}

impl RequestLog {
    /// An empty log keeping the last `max` entries.
    pub fn new(max: usize) -> Self {
        RequestLog {
            entries: VecDeque::new(),
            max,
            next_seq: 0,
        }
    }

    /// Whether entries are kept at all (`--log-max 0` keeps none), so that callers can skip
    /// building them.
    pub fn keeps(&self) -> bool {
        self.max > 0
    }

    /// Appends `e`, numbering it, and drops the oldest beyond `max`.
    pub fn push(&mut self, mut e: LogEntry) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn log_is_a_ring() {
        let mut log = RequestLog::new(2);
        let mut headers = HeaderMap::new();
        headers.append("a", HeaderValue::from_static("1"));
        headers.append("a", HeaderValue::from_static("2"));
        for _ in 0..5 {
            log.push(LogEntry {
                seq: 0,
                instance: "i".into(),
                method: Method::GET,
                path: "/".into(),
                query: String::new(),
                headers: headers.clone(),
                params: Map::new(),
                body_len: 0,
                at_ms: 0,
            });
        }
        let seqs: Vec<u64> = log.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [4, 5]);
        let v = serde_json::to_value(&log.entries[0]).unwrap();
        assert_eq!(v["headers"]["a"], "1, 2");
        assert_eq!(v["method"], "GET");
    }

    #[test]
    fn stats_count_by_kind() {
        let s = Stats::default();
        s.count(Kind::Start);
        s.count(Kind::Echo);
        s.count(Kind::Echo);
        let v = s.json();
        assert_eq!(v["requests"], 3);
        assert_eq!(v["by_kind"]["echo"], 2);
        assert_eq!(v["by_kind"]["status"], 0);
        s.reset();
        assert_eq!(s.json()["requests"], 0);
    }
}
