//! The status cache and status push.

use super::*;

// The status cache.

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

// Status push.

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
