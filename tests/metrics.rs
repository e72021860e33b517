//! Prometheus metrics on `gms.metrics_listen` (issue 7, first part).

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

/// Scrapes until `series` reaches `at_least` (the request is counted after its reply is
/// written), at most 5 s.
fn wait_for(metrics: &str, series: &str, at_least: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = get(metrics, &[]).text();
        if sample(&scrape, series).unwrap_or(0.0) >= at_least {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {at_least}:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

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
}
