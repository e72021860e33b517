//! Prometheus metrics on `gms.metrics_listen` (issue 7).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The value of one sample line (`name{labels} value`) in a scrape, if present.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l[series.len()..].trim().parse().ok())
}

/// Scrapes until `done` holds, at most `within`; returns that scrape.
fn wait_until(metrics: &str, within: Duration, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let scrape = get(metrics, &[]).text();
        if done(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {what} within {within:?}:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scrapes until `series` reaches `at_least` (the request is counted after its reply is
/// written), at most 5 s.
fn wait_for(metrics: &str, series: &str, at_least: f64) -> String {
    wait_until(
        metrics,
        Duration::from_secs(5),
        &format!("{series} at {at_least} or more"),
        |scrape| sample(scrape, series).unwrap_or(0.0) >= at_least,
    )
}

/// The usage gauges are recounted every 5 s (`metrics::USAGE_INTERVAL`): wait up to three
/// rounds.
const USAGE_WAIT: Duration = Duration::from_secs(15);

fn gateway_with_metrics(extra: &str) -> (Gateway, String) {
    let port = free_port();
    let gw = Gateway::start(&format!("metrics_listen: \"127.0.0.1:{port}\"\n{extra}"));
    (gw, format!("http://127.0.0.1:{port}/metrics"))
}

#[test]
fn requests_are_counted_by_route_and_status_with_latency() {
    let (gw, metrics) = gateway_with_metrics(STD_GMS);
    for _ in 0..3 {
        gw.create_ok("request-interaction", &[("_phone_number", "1")]);
    }
    assert_error(&gw.create("no-such-service", &[]), 404);
    // A request is counted in Pingora's logging phase, just after its reply went out: wait
    // for each series rather than reading one scrape.
    wait_for(
        &metrics,
        r#"gms_http_requests_total{route="service_create",status="404"}"#,
        1.0,
    );
    wait_for(
        &metrics,
        r#"gms_http_requests_total{route="service_create",status="200"}"#,
        3.0,
    );
    let scrape = wait_for(
        &metrics,
        r#"gms_http_request_duration_seconds_count{route="service_create"}"#,
        4.0,
    );
    assert_eq!(
        sample(
            &scrape,
            r#"gms_http_requests_total{route="service_create",status="200"}"#
        ),
        Some(3.0),
        "{scrape}"
    );
}

#[test]
fn status_cache_outcomes_and_ors_attempts_are_counted() {
    let sim = OrsSim::start(1);
    let node = sim.url(0);
    let (gw, metrics) = gateway_with_metrics(&format!(
        "services:\n  request-inbound-poll: {{_type: ors, _service: \"http://x/p.scxml\", _ors: \"{node}\", _status_ttl_ms: 60000}}\n"
    ));
    let v = gw.create_ok("request-inbound-poll", &[]);
    let id = str_field(&v, "_id").to_string();
    for _ in 0..3 {
        ok_json(&post_form(
            &gw.url(&format!("/genesys/1/service/{id}/status")),
            &[],
            &[],
        ));
    }
    wait_for(&metrics, r#"gms_status_cache_total{outcome="hit"}"#, 2.0);
    let attempts = format!(r#"gms_ors_requests_total{{node="{node}",outcome="answered"}}"#);
    let scrape = wait_for(&metrics, &attempts, 3.0);
    assert_eq!(
        sample(&scrape, r#"gms_status_cache_total{outcome="fetch"}"#),
        Some(1.0),
        "{scrape}"
    );
    // start, gms.start and one status reached the node.
    assert_eq!(sample(&scrape, &attempts), Some(3.0), "{scrape}");
    // Each poll read its record and cached status in one store call (one Redis round trip).
    for (op, calls) in [("get_service_and_status", 3.0), ("get_status", 0.0)] {
        let series = format!(r#"gms_store_operations_total{{op="{op}",outcome="ok"}}"#);
        assert_eq!(sample(&scrape, &series), Some(calls), "{series}:\n{scrape}");
    }
}

#[test]
fn reservations_live_services_and_store_operations_are_measured() {
    // BIG has more numbers than one Redis usage call counts (64).
    let big: Vec<String> = (3000..3130).map(|n| format!("\"{n}\"")).collect();
    let (gw, metrics) = gateway_with_metrics(&format!(
        r#"resources:
  DNIS: ["1001", "1002", "1003"]
  CODED: ["2001", "2002"]
  BIG: [{}]
services:
  request-interaction: {{_type: builtin, _service: request-interaction}}
  request-coded: {{_type: builtin, _service: request-interaction, _resource_group: CODED, _provide_code: "true", _access_code_length: 2}}
"#,
        big.join(", ")
    ));
    let create = |params: &[(&str, &str)]| {
        gw.create_ok("request-interaction", params);
    };
    // One reservation expires before the gauges are recounted: it must not count.
    create(&[("_phone_number", "1"), ("_ttl", "1")]);
    for _ in 0..2 {
        create(&[("_phone_number", "1")]);
    }
    for _ in 0..4 {
        create(&[("_phone_number", "1"), ("_resource_group", "BIG")]);
    }
    for _ in 0..3 {
        gw.create_ok("request-coded", &[("_phone_number", "1")]);
    }
    // DNIS is exclusive: 3 numbers, 2 held. CODED has 2-digit codes: 2 x 100 codes, 3 held.
    let expected = [
        ("DNIS", "in_use", 2.0),
        ("DNIS", "free", 1.0),
        ("CODED", "in_use", 3.0),
        ("CODED", "free", 197.0),
        ("BIG", "in_use", 4.0),
        ("BIG", "free", 126.0),
    ];
    let scrape = wait_until(&metrics, USAGE_WAIT, "the reservation gauges", |scrape| {
        expected.iter().all(|(group, state, v)| {
            let series = format!(r#"gms_reservations{{group="{group}",state="{state}"}}"#);
            sample(scrape, &series) == Some(*v)
        })
    });
    let live = sample(&scrape, "gms_live_services");
    match test_store() {
        TestStore::Memory => assert!(live.unwrap_or(0.0) >= 9.0, "{scrape}"),
        // Redis has no cheap exact count of live services: the gauge is left out.
        TestStore::Redis | TestStore::Cluster => assert_eq!(live, None, "{scrape}"),
    }
    for (series, at_least) in [
        (
            r#"gms_store_operations_total{op="create_service",outcome="ok"}"#,
            10.0,
        ),
        (
            r#"gms_store_operation_duration_seconds_count{op="create_service"}"#,
            10.0,
        ),
        (
            r#"gms_store_operations_total{op="usage",outcome="ok"}"#,
            1.0,
        ),
    ] {
        assert!(
            sample(&scrape, series).unwrap_or(0.0) >= at_least,
            "{series}:\n{scrape}"
        );
    }
    assert_eq!(
        sample(
            &scrape,
            r#"gms_store_operations_total{op="create_service",outcome="error"}"#
        ),
        Some(0.0),
        "{scrape}"
    );
    // Counters grow: every health check is a store ping.
    let pings = r#"gms_store_operations_total{op="ping",outcome="ok"}"#;
    let before = sample(&scrape, pings).unwrap_or(0.0);
    for _ in 0..2 {
        ok_json(&get(&gw.url("/genesys/1/admin/node/health"), &[]));
    }
    wait_for(&metrics, pings, before + 2.0);
}

#[test]
fn ors_node_health_is_a_gauge() {
    let sim = OrsSim::start(1);
    let up = sim.url(0);
    let down = format!("http://127.0.0.1:{}", free_port());
    let (_gw, metrics) = gateway_with_metrics(&format!(
        "ors: {{health_check_interval_ms: 100}}\nservices:\n  request-x: {{_type: ors, _service: \"http://x/p.scxml\", _ors: \"{up},{down}\"}}\n"
    ));
    let up_series = format!(r#"gms_ors_node_up{{node="{up}"}}"#);
    let down_series = format!(r#"gms_ors_node_up{{node="{down}"}}"#);
    wait_until(
        &metrics,
        Duration::from_secs(5),
        "the node down",
        |scrape| {
            sample(scrape, &down_series) == Some(0.0) && sample(scrape, &up_series) == Some(1.0)
        },
    );
}
