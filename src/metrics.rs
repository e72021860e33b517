//! Prometheus metrics (issue 7), served by `pingora-prometheus` on `gms.metrics_listen`:
//! requests by route and status, latency by route, status-cache outcomes, ORS requests by node
//! and outcome, ORS node health, store operations by outcome and their latency, requests
//! refused by the per-client limits, match-interaction outcomes, and gauges of live services,
//! reservations per resource group and stored bytes, refreshed by [`run_usage_gauges`]; and
//! the Callback Services API's callbacks: created, refused by check, submitted, failed
//! submissions and state changes.
//! Names follow Prometheus conventions.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use log::{info, warn};
use pingora_prometheus::prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
    HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

use crate::callback::record::State;
use crate::config::{ApiConfig, BuiltinKind, ServiceKind, DEFAULT_CODE_LEN, DEFAULT_GROUP};
use crate::store::{NumberUse, Store, Usage};

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

/// `gms_rate_limited_total{limit}`: requests refused with 429 by a per-client-IP limit:
/// `writes` (`gms.limits.create_rate_per_ip`), `upload_bytes`
/// (`gms.limits.upload_bytes_per_ip_per_s`), `failed_matches`
/// (`gms.limits.failed_matches_per_ip`).
pub static RATE_LIMITED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_rate_limited_total",
        "Requests refused by a per-client-IP limit",
        &["limit"]
    )
    .expect("metric names are static and registered once")
});

/// Which per-client-IP limit refused a request (the `limit` label of [`RATE_LIMITED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// `gms.limits.create_rate_per_ip`.
    Writes,
    /// `gms.limits.upload_bytes_per_ip_per_s`.
    UploadBytes,
    /// `gms.limits.failed_matches_per_ip`.
    FailedMatches,
}

impl RateLimit {
    /// Its `limit` label.
    pub fn label(self) -> &'static str {
        match self {
            RateLimit::Writes => "writes",
            RateLimit::UploadBytes => "upload_bytes",
            RateLimit::FailedMatches => "failed_matches",
        }
    }
}

/// `gms_callbacks_created_total{service, timing}`: callbacks created, `scheduled` or
/// `immediate` (an immediate one once ORS took it).
pub static CALLBACKS_CREATED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_callbacks_created_total",
        "Callbacks created, by service and timing",
        &["service", "timing"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_callbacks_refused_total{service, reason}`: creates refused by a check of
/// `gms-callback.md` §3.2: `missing_key`, `number`, `past`, `too_far_ahead`, `office_hours`,
/// `bucket_full`, `queue_full`, `throttle`, `parameter_limit`, `duplicate`.
pub static CALLBACKS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_callbacks_refused_total",
        "Callback creates refused, by service and check",
        &["service", "reason"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_callbacks_submitted_total{service}`: callbacks whose ORS session started.
pub static CALLBACKS_SUBMITTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_callbacks_submitted_total",
        "Callbacks submitted to ORS, by service",
        &["service"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_callback_submit_failures_total{service, outcome}`: failed submissions, `retry` (another
/// attempt follows) or `gave_up` (`SUBMIT_FAILED`).
pub static CALLBACK_SUBMIT_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_callback_submit_failures_total",
        "Failed callback submissions to ORS, by service and outcome",
        &["service", "outcome"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_callback_state_changes_total{service, state}`: callbacks that entered a state (by a
/// submission, an ORS report, a cancel or a give-up).
pub static CALLBACK_STATE_CHANGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_callback_state_changes_total",
        "Callback state changes, by service and new state",
        &["service", "state"]
    )
    .expect("metric names are static and registered once")
});

/// Counts a created callback.
pub fn callback_created(service: &str, immediate: bool) {
    let timing = if immediate { "immediate" } else { "scheduled" };
    CALLBACKS_CREATED
        .with_label_values(&[service, timing])
        .inc();
}

/// Counts a refused create (`reason`: see [`CALLBACKS_REFUSED`]).
pub fn callback_refused(service: &str, reason: &str) {
    CALLBACKS_REFUSED
        .with_label_values(&[service, reason])
        .inc();
}

/// Counts a submitted callback.
pub fn callback_submitted(service: &str) {
    CALLBACKS_SUBMITTED.with_label_values(&[service]).inc();
}

/// Counts a failed submission; `gave_up`: it was the last attempt.
pub fn callback_submit_failed(service: &str, gave_up: bool) {
    let outcome = if gave_up { "gave_up" } else { "retry" };
    CALLBACK_SUBMIT_FAILURES
        .with_label_values(&[service, outcome])
        .inc();
}

/// Counts a callback entering `state` (its wire name).
pub fn callback_state(service: &str, state: State) {
    CALLBACK_STATE_CHANGES
        .with_label_values(&[service, state.name()])
        .inc();
}

/// `gms_match_interactions_total{outcome}`: match-interaction calls by outcome: `matched`,
/// `failed` (no reservation matched: counted against the number and the client),
/// `number_locked` (429: the number had `gms.limits.max_failed_matches` failures in its
/// window), `client_limited` (429: the client's failed matches), `unauthorized` (401/403).
pub static MATCH_INTERACTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_match_interactions_total",
        "match-interaction calls by outcome",
        &["outcome"]
    )
    .expect("metric names are static and registered once")
});

/// One counter per match outcome (see [`MATCH_INTERACTIONS`]).
pub struct MatchOutcomes {
    /// A reservation matched.
    pub matched: IntCounter,
    /// None matched.
    pub failed: IntCounter,
    /// Refused: the number is locked after too many failures.
    pub number_locked: IntCounter,
    /// Refused: the client made too many failed matches.
    pub client_limited: IntCounter,
    /// Refused: no internal credentials, or not from an internal network.
    pub unauthorized: IntCounter,
}

/// The match outcome counters, resolved once.
pub static MATCHES: LazyLock<MatchOutcomes> = LazyLock::new(|| {
    let c = |o: &str| MATCH_INTERACTIONS.with_label_values(&[o]);
    MatchOutcomes {
        matched: c("matched"),
        failed: c("failed"),
        number_locked: c("number_locked"),
        client_limited: c("client_limited"),
        unauthorized: c("unauthorized"),
    }
});

/// `gms_ors_node_up{node}`: 1 while the gateway believes an ORS node reachable, else 0 (set
/// by the health checks and by failed connects).
pub static ORS_NODE_UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "gms_ors_node_up",
        "Whether an ORS node is reachable (1) or not (0)",
        &["node"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_store_operations_total{op, outcome}`: each [`Store`] call, `op` the trait method's name,
/// `outcome` `ok`, `error` (store unavailable, too slow or damaged) or, for the ops that
/// reserve, `exhausted` (no access number free: the pool is full, the store is fine) and
/// `phone_limit` (the phone already holds `gms.limits.reservations_per_phone` reservations),
/// and for the ops that write user data `full` (no room in the store's byte budget: a 507).
pub static STORE_OPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "gms_store_operations_total",
        "Store operations by operation and outcome",
        &["op", "outcome"]
    )
    .expect("metric names are static and registered once")
});

/// `gms_store_operation_duration_seconds{op}`: time each store call took, failures included.
pub static STORE_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "gms_store_operation_duration_seconds",
        "Store operation latency by operation",
        &["op"],
        vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]
    )
    .expect("metric names are static and registered once")
});

/// `gms_live_services`: live service records (memory store only: Redis has no cheap exact
/// count, see [`Store::usage`]).
pub static LIVE_SERVICES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("gms_live_services", "Live service records")
        .expect("metric names are static and registered once")
});

/// `gms_store_data_bytes`: bytes of user data the memory store holds (values, files, keys,
/// owners), against `gms.limits.max_store_bytes` (memory store only).
pub static STORE_DATA_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "gms_store_data_bytes",
        "Bytes of user data held by the memory store"
    )
    .expect("metric names are static and registered once")
});

/// `gms_store_data_bytes_limit`: `gms.limits.max_store_bytes` in effect (memory store only).
pub static STORE_DATA_BYTES_LIMIT: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "gms_store_data_bytes_limit",
        "The memory store's byte budget for user data (gms.limits.max_store_bytes)"
    )
    .expect("metric names are static and registered once")
});

/// `gms_reservations{group, state}`: live reservations (`in_use`) and room for more (`free`)
/// per resource group; see [`free_capacity`] for how `free` is counted.
pub static RESERVATIONS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "gms_reservations",
        "Access-number reservations per resource group: in_use, free",
        &["group", "state"]
    )
    .expect("metric names are static and registered once")
});

/// How often the usage gauges are recounted: a few seconds is fresher than a usual scrape
/// interval (15 s or more), and counting costs the store O(numbers + live holds) each time.
pub const USAGE_INTERVAL: Duration = Duration::from_secs(5);

/// Live reservations on a group's numbers.
pub fn in_use(numbers: &[NumberUse]) -> u64 {
    numbers
        .iter()
        .map(|n| u64::from(n.exclusive) + n.coded)
        .fold(0, u64::saturating_add)
}

/// Reservations a group can still take, counted the way its configured services reserve
/// (`codes` from [`group_code_lengths`] and [`ApiConfig::code_space`]): `None`, exclusive
/// numbers: the numbers that hold nothing; `Some(codes)`: the codes a number offers
/// (`10^len`, fewer under `gms.server.access_code_prefix`) less the codes it holds, on every
/// number not held exclusively. With all reservations of the configured kind, `in_use + free`
/// is the group's capacity (numbers, or numbers x codes).
pub fn free_capacity(numbers: &[NumberUse], codes: Option<u64>) -> u64 {
    match codes {
        None => numbers
            .iter()
            .filter(|n| !n.exclusive && n.coded == 0)
            .count() as u64,
        Some(per_number) => numbers
            .iter()
            .filter(|n| !n.exclusive)
            .map(|n| per_number.saturating_sub(n.coded))
            .fold(0, u64::saturating_add),
    }
}

/// Each configured group's code length for [`free_capacity`]: a request decides whether its
/// reservation carries a code (`_provide_code` may be overwritable), so a group's kind is what
/// the configured `request-interaction` / `request-access` services reserve in it: coded if
/// any of them provides codes (the shortest of their code lengths: the smallest capacity),
/// else exclusive (also for a group no service names).
pub fn group_code_lengths(config: &ApiConfig) -> HashMap<String, Option<u8>> {
    let mut out: HashMap<String, Option<u8>> =
        config.resources.keys().map(|g| (g.clone(), None)).collect();
    for svc in config.services.values() {
        if !matches!(
            svc.kind,
            ServiceKind::Builtin(BuiltinKind::RequestInteraction | BuiltinKind::RequestAccess)
        ) {
            continue;
        }
        let provides = svc
            .option("_provide_code")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !provides {
            continue;
        }
        let group = svc
            .option("_resource_group")
            .filter(|g| !g.is_empty())
            .unwrap_or(DEFAULT_GROUP);
        let len = svc
            .option("_access_code_length")
            .and_then(|v| v.parse::<u8>().ok())
            .unwrap_or(DEFAULT_CODE_LEN as u8);
        if let Some(kind) = out.get_mut(group) {
            *kind = Some(kind.map_or(len, |l| l.min(len)));
        }
    }
    out
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sets `gms_live_services` (when the store counts it) and `gms_reservations` from a count
/// (`codes`: each group's codes per number, see [`free_capacity`]).
pub fn set_usage_gauges(usage: &Usage, codes: &HashMap<String, Option<u64>>) {
    if let Some(n) = usage.live_services {
        LIVE_SERVICES.set(gauge(n));
    }
    if let Some((used, max)) = usage.data_bytes {
        STORE_DATA_BYTES.set(gauge(used));
        STORE_DATA_BYTES_LIMIT.set(gauge(max));
    }
    for (group, numbers) in &usage.groups {
        let per_number = codes.get(group).copied().flatten();
        RESERVATIONS
            .with_label_values(&[group.as_str(), "free"])
            .set(gauge(free_capacity(numbers, per_number)));
        RESERVATIONS
            .with_label_values(&[group.as_str(), "in_use"])
            .set(gauge(in_use(numbers)));
    }
}

/// Recounts the store's usage every [`USAGE_INTERVAL`] and sets the gauges, for ever (run only
/// with metrics on). A failed count keeps the last values; the failure is counted as
/// `gms_store_operations_total{op="usage",outcome="error"}` and logged when it starts and ends.
pub async fn run_usage_gauges(store: Arc<dyn Store>, config: Arc<ApiConfig>) {
    let codes: HashMap<String, Option<u64>> = group_code_lengths(&config)
        .into_iter()
        .map(|(group, len)| {
            let per_number = len.map(|l| config.code_space(l).map_or(0, |s| s.count));
            (group, per_number)
        })
        .collect();
    let mut tick = tokio::time::interval(USAGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match store.usage(&config.resources).await {
            Ok(usage) => {
                if failing {
                    info!("the store's usage can be counted again");
                    failing = false;
                }
                set_usage_gauges(&usage, &codes);
            }
            Err(e) => {
                if !failing {
                    warn!("cannot count the store's usage for the metrics gauges: {e:?}");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(list: &[(bool, u64)]) -> Vec<NumberUse> {
        list.iter()
            .map(|&(exclusive, coded)| NumberUse { exclusive, coded })
            .collect()
    }

    #[test]
    fn exclusive_groups_count_idle_numbers_as_free() {
        let n = uses(&[(true, 0), (false, 0), (false, 0)]);
        assert_eq!((in_use(&n), free_capacity(&n, None)), (1, 2));
        // A number carrying codes cannot be held exclusively either.
        let n = uses(&[(false, 3), (false, 0)]);
        assert_eq!((in_use(&n), free_capacity(&n, None)), (3, 1));
    }

    #[test]
    fn coded_groups_count_free_codes() {
        let n = uses(&[(false, 3), (false, 0)]);
        assert_eq!((in_use(&n), free_capacity(&n, Some(100))), (3, 197));
        // An exclusive hold takes the whole number; longer codes cannot go below zero.
        let n = uses(&[(true, 0), (false, 150)]);
        assert_eq!((in_use(&n), free_capacity(&n, Some(100))), (151, 0));
        assert_eq!(
            free_capacity(&uses(&[(false, 0)]), Some(1_000_000_000_000)),
            1_000_000_000_000
        );
        assert_eq!(free_capacity(&[], Some(10_000)), 0);
    }

    #[test]
    fn group_kinds_follow_the_configured_services() {
        let yaml = r#"
gms:
  listen: ["127.0.0.1:1"]
  resources: {DNIS: ["1"], CODED: ["2"], MIXED: ["3"], IDLE: ["4"]}
  services:
    a: {_type: builtin, _service: request-interaction}
    b: {_type: builtin, _service: request-interaction, _resource_group: CODED, _provide_code: "TRUE", _access_code_length: 6}
    c: {_type: builtin, _service: request-access, _resource_group: MIXED, _provide_code: "true"}
    d: {_type: builtin, _service: request-interaction, _resource_group: MIXED, _provide_code: "true", _access_code_length: 3}
    e: {_type: builtin, _service: request-interaction, _resource_group: MIXED}
    f: {_type: builtin, _service: match-interaction, _resource_group: IDLE, _provide_code: "true"}
"#;
        let config = ApiConfig::from_yaml(yaml).unwrap();
        let kinds = group_code_lengths(&config);
        assert_eq!(kinds["DNIS"], None);
        assert_eq!(kinds["CODED"], Some(6));
        assert_eq!(kinds["MIXED"], Some(3));
        assert_eq!(kinds["IDLE"], None);
    }
}
