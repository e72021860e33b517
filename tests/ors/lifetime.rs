//! Async start and the service record's lifetime.

use super::*;

// Async start.

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

// Record lifetime.

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
