//! Prometheus metrics (issue 7, first part), served by `pingora-prometheus` on
//! `gms.metrics_listen`: requests by route and status, latency by route, status-cache
//! outcomes, ORS requests by node and outcome. Names follow Prometheus conventions.

use std::sync::LazyLock;

use pingora_prometheus::prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, HistogramVec,
    IntCounter, IntCounterVec,
};

/// `gms_http_requests_total{route, status}`: every request the gateway answered or proxied.
pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_http_requests_total",
        "HTTP requests by route and response status",
        &["route", "status"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_http_request_duration_seconds{route}`: time from routing to the last byte written.
pub static LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "gms_http_request_duration_seconds",
        "HTTP request latency by route",
        &["route"],
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
    )
    .expect("metric names are static and registered once")
});

/// `gms_status_cache_total{outcome}`: `hit`, `fetch` (one ORS request), `coalesced` (waited
/// for another request's fetch), `stale` (ORS failed, stale entry served).
pub static STATUS_CACHE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_status_cache_total",
        "Status requests by cache outcome",
        &["outcome"]
    )
    .expect("metric names are static and registered once")
});

/// The status-cache outcomes, as counters resolved once: a cache hit is the hottest path
/// there is, and a label lookup per hit would hash the label every time.
pub static STATUS_OUTCOMES: LazyLock<StatusOutcomes> = LazyLock::new(|| StatusOutcomes {
    hit: STATUS_CACHE.with_label_values(&["hit"]),
    fetch: STATUS_CACHE.with_label_values(&["fetch"]),
    coalesced: STATUS_CACHE.with_label_values(&["coalesced"]),
    stale: STATUS_CACHE.with_label_values(&["stale"]),
});

/// One counter per status-cache outcome (see [`STATUS_CACHE`]).
pub struct StatusOutcomes {
    /// Answered from a fresh entry.
    pub hit: IntCounter,
    /// Started the one ORS request for its service.
    pub fetch: IntCounter,
    /// Waited for another request's fetch.
    pub coalesced: IntCounter,
    /// ORS failed; a stale entry was served.
    pub stale: IntCounter,
}

/// `gms_ors_requests_total{node, outcome}`: each attempt at an ORS node.
pub static ORS_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_ors_requests_total",
        "ORS request attempts by node and outcome",
        &["node", "outcome"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_rate_limited_total`: creates refused with 429 by `gms.limits.create_rate_per_ip`.
pub static RATE_LIMITED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "gms_rate_limited_total",
        "Creates refused by the per-client-IP rate limit"
    )
    .expect("metric names are static and registered once")
});
