//! The gateway and ORS for callbacks, black-box (`gms-callback.md` §7, §8): the scheduler
//! submitting a due callback once (counted at `ors-sim`), retries and `SUBMIT_FAILED` when ORS
//! fails or refuses, nothing lost across a restart on Redis; requests on a callback id relayed
//! to its session by GET and POST.

mod common;

use std::time::Duration;

use common::callback::*;
use common::*;
use serde_json::json;

/// A service whose callbacks come due a second before their desired time.
fn quick(extra: &str) -> String {
    callback_service(
        CB,
        &format!(
            "_request_execution_time_buffer: 1\n_enable_in_queue_checking: \"false\"\n{extra}"
        ),
    )
}

/// Waits until `lab`'s simulator saw `n` session starts for `id`.
fn wait_starts(lab: &CallbackLab, id: &str, n: usize) {
    wait_for(
        Duration::from_secs(15),
        &format!("{n} starts of {id}"),
        || (lab.starts(id).len() >= n).then_some(()),
    );
}

#[test]
fn a_due_callback_is_submitted_once() {
    let lab = CallbackLab::start(&quick(""));
    let id = lab.schedule(CB, "5581001", 3);
    let r = lab.wait_state(&id, "QUEUED", Duration::from_secs(15));
    assert!(!str_field(&r, "_ors_session_id").is_empty(), "{r}");
    // Many passes later, still one session start.
    std::thread::sleep(Duration::from_millis(1500));
    let starts = lab.starts(&id);
    assert_eq!(starts.len(), 1, "{starts:?}");
    let p = &starts[0]["params"];
    assert_eq!(p["_customer_number"], "5581001");
    assert_eq!(p["_desired_time"], r["_desired_time"]);
    // The start request's dialog of a scheduled callback goes nowhere; the record is QUEUED.
    assert_eq!(lab.state(&id), "QUEUED");
}

#[test]
fn failed_attempts_are_retried_then_given_up() {
    let services = format!(
        "{}{}",
        quick("_max_ors_submit_attempts: 3\n"),
        callback_service(
            "patient",
            "_request_execution_time_buffer: 1\n_max_ors_submit_attempts: 50\n"
        )
    );
    let lab = CallbackLab::start(&services);
    // ORS refuses the session start (a 4xx): one start per attempt, three attempts.
    lab.sim
        .set(0, &json!({"mode": "error", "error_status": 400}));
    let id = lab.schedule(CB, "5582001", 3);
    let r = lab.wait_state(&id, "COMPLETED", Duration::from_secs(20));
    assert_eq!(r["_callback_reason"], "SUBMIT_FAILED");
    assert_eq!(lab.starts(&id).len(), 3);
    // A SUBMIT_FAILED callback gives its slot back and takes no request.
    let r = get(
        &lab.gw
            .url(&format!("/genesys/1/service/{id}/check-queue-position")),
        &[],
    );
    assert_callback_error(&r, 404, "CallbackExceptionNotFound");

    // Failing at first (each attempt makes max_ors_request_attempts = 2 starts), then back:
    // queued by a later attempt.
    lab.sim
        .set(0, &json!({"mode": "error", "error_status": 503}));
    let id = lab.schedule("patient", "5582002", 3);
    wait_starts(&lab, &id, 2);
    lab.sim.set(0, &json!({"mode": "ok"}));
    lab.wait_state(&id, "QUEUED", Duration::from_secs(15));
    let n = lab.starts(&id).len();
    assert!(
        n >= 3 && n % 2 == 1,
        "{n} starts: two per failed attempt, one that worked"
    );
}

#[test]
fn nothing_is_lost_across_a_restart_on_redis() {
    let dir = TempDir::new("cb-restart");
    let redis = RedisServer::start_in(&dir.path().join("redis"), true);
    let sim = OrsSim::start_args(1, &["--callback", r#"{"auto":false}"#]);
    let storage = format!(
        "storage: {{backend: redis, url: \"{}\", prefix: \"cb:\"}}\n",
        redis.url()
    );
    // The first gateway's scheduler passes once, at start-up, then not for an hour.
    let first = Gateway::start(&format!(
        "{storage}{}",
        callback_gms(&sim, &quick(""), "queue-polling-rate: 3600")
    ));
    let at = iso_in(3);
    let v = ok_json(&post_form(
        &first.url(&format!("/genesys/1/service/callback/{CB}")),
        &[("_customer_number", "5583001"), ("_desired_time", &at)],
        &[],
    ));
    let id = str_field(&v, "_id").to_string();
    drop(first);
    std::thread::sleep(Duration::from_millis(3000));
    // It came due while no gateway ran: the next one submits it at start-up.
    let gw = Gateway::start(&format!("{storage}{}", callback_gms(&sim, &quick(""), "")));
    let lab = CallbackLab { sim, gw };
    let r = lab.wait_state(&id, "QUEUED", Duration::from_secs(15));
    assert_eq!(r["_desired_time"], at.as_str());
    assert_eq!(lab.starts(&id).len(), 1);
    drop(redis);
}

#[test]
fn requests_on_a_callback_go_to_its_session() {
    let lab = CallbackLab::start(&callback_service(
        CB,
        "_enable_in_queue_checking: \"false\"\n",
    ));
    let id = lab.now(CB, "5584001");
    let session = str_field(&lab.record(&id), "_ors_session_id").to_string();
    let url = lab
        .gw
        .url(&format!("/genesys/1/service/{id}/check-queue-position"));
    let v = ok_json(&get(&url, &[]));
    assert_eq!(
        v,
        json!({"_position": "1", "_eta": "60", "_total_waiting": "1"})
    );
    let v = ok_json(&post_form(&url, &[("_eta_unit", "s")], &[]));
    assert_eq!(v["_position"], "1");
    let calls = sim_requests(
        &lab.sim,
        &format!("/scxml/session/{session}/request/check-queue-position"),
    );
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls
        .iter()
        .all(|c| c["method"] == "POST" && c["params"]["_service_id"] == id.as_str()));
    assert_eq!(calls[1]["params"]["_eta_unit"], "s");
    // A dialog follow-up: user keys go into the callback's data, the rest to ORS as it is.
    let r = post_form(
        &lab.gw
            .url(&format!("/GMS-web/gms/1/service/{id}/menu-agent")),
        &[("note", "hi")],
        &[],
    );
    let v = ok_json(&r);
    assert_eq!(v["request"], "menu-agent", "{v}");
    let start = &lab.starts(&id)[0]["params"];
    let data = ok_json(&get(
        &lab.gw.storage_url(start["_data_id"].as_str().unwrap()),
        &[],
    ));
    assert_eq!(data["note"], "hi", "{data}");
    // ORS's own 404 comes back as it is.
    post_empty(
        &format!("{}/scxml/session/{session}/terminate", lab.sim.url(0)),
        &[],
    );
    let r = get(&url, &[]);
    assert_eq!(r.status, 404, "{}", r.text());

    // Not submitted yet: 400; completed: 404; unknown: 404.
    let id = lab.schedule(CB, "5584002", 3600);
    let url = lab
        .gw
        .url(&format!("/genesys/1/service/{id}/check-queue-position"));
    let e = assert_callback_error(&get(&url, &[]), 400, "CallbackExceptionInvalidState");
    assert_eq!(e["message"], format!("Callback {id} is not submitted yet"));
    ok_json(&lab.cancel(CB, &id, ""));
    assert_callback_error(&get(&url, &[]), 404, "CallbackExceptionNotFound");
    let r = get(
        &lab.gw
            .url("/genesys/1/service/0f6e2c1a-8a4b-4c53-9d9e-2a1c7b5e4f10/check-queue-position"),
        &[],
    );
    assert_error(&r, 404);
}

#[test]
fn callbacks_are_counted_in_the_metrics() {
    let sim = OrsSim::start_args(1, &["--callback", r#"{"auto":false}"#]);
    let port = free_port();
    let gw = Gateway::start(&format!(
        "metrics_listen: \"127.0.0.1:{port}\"\n{}",
        callback_gms(&sim, &quick(""), "")
    ));
    let lab = CallbackLab { sim, gw };
    lab.sim_config(json!({"auto": false}));
    lab.now(CB, "5585001");
    let id = lab.schedule(CB, "5585002", 3);
    assert_callback_error(
        &lab.create(CB, &[]),
        400,
        "CallbackExceptionMissingParameter",
    );
    lab.wait_state(&id, "QUEUED", Duration::from_secs(15));
    let scrape = get(&format!("http://127.0.0.1:{port}/metrics"), &[]).text();
    let value = |name: &str, labels: &[&str]| -> Option<f64> {
        scrape
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| labels.iter().all(|x| l.contains(x)))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let svc = format!("service=\"{CB}\"");
    assert_eq!(
        value(
            "gms_callbacks_created_total",
            &[&svc, "timing=\"immediate\""]
        ),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        value(
            "gms_callbacks_created_total",
            &[&svc, "timing=\"scheduled\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "gms_callbacks_refused_total",
            &[&svc, "reason=\"missing_key\""]
        ),
        Some(1.0)
    );
    assert_eq!(value("gms_callbacks_submitted_total", &[&svc]), Some(2.0));
    assert_eq!(
        value(
            "gms_callback_state_changes_total",
            &[&svc, "state=\"QUEUED\""]
        ),
        Some(2.0)
    );
}
