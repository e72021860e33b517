//! `ors-sim`'s callback strategy mode, black-box: this test plays the gateway's part of the
//! ORS interface (session start, start request, queue position, cancel), and a second
//! `ors-sim`'s echo stands in for the gateway's Callback Services API, so that its request
//! log shows every state PUT the strategy sent.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const SVC: &str = "callback-for-mobile";
const AUTH: &str = "Basic YWRtaW46c2VjcmV0"; // admin:secret

/// A callback-mode simulator whose state PUTs go to `gms`'s echo, with `extra` fields in
/// its callback configuration.
fn callback_sim(n: usize, gms: &OrsSim, extra: Value) -> OrsSim {
    let sim = OrsSim::start(n);
    let mut cfg = json!({
        "gms_base": format!("{}/genesys/1", gms.url(0)),
        "gms_user": "admin",
        "gms_password": "secret",
    });
    for (k, v) in extra.as_object().expect("an object") {
        cfg[k] = v.clone();
    }
    put_callback_config(&sim, &cfg);
    sim
}

/// `PUT {control}/sim/callback`.
fn put_callback(sim: &OrsSim, cfg: &Value) -> Resp {
    let url = format!("{}/sim/callback", sim.control_url());
    request(
        "PUT",
        &url,
        &[],
        Some(("application/json", cfg.to_string().as_bytes())),
    )
}

fn put_callback_config(sim: &OrsSim, cfg: &Value) {
    let r = put_callback(sim, cfg);
    assert_eq!(r.status, 200, "PUT /sim/callback: {}", r.text());
}

/// Starts an ORS session as the gateway submits a callback; returns the session id.
fn submit(sim: &OrsSim, i: usize, id: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![
        ("src", "http://scxml.example.com/callback.scxml"),
        ("_service_id", id),
        ("_service_name", SVC),
        ("_customer_number", "5551234"),
        ("_desired_time", "2026-03-02T14:30:00.000Z"),
    ];
    fields.extend_from_slice(extra);
    let r = post_form(&format!("{}/scxml/session/start", sim.url(i)), &fields, &[]);
    assert_eq!(r.status, 200, "session start: {}", r.text());
    str_field(&r.json(), "sessionid").to_string()
}

/// Starts a session on instance 0 with `src` only (and `headers`); returns its id.
fn bare_session(sim: &OrsSim, headers: &[(&str, &str)]) -> String {
    let r = post_form(
        &format!("{}/scxml/session/start", sim.url(0)),
        &[("src", "http://s/cb.scxml")],
        headers,
    );
    assert_eq!(r.status, 200, "session start: {}", r.text());
    str_field(&r.json(), "sessionid").to_string()
}

/// `POST {instance i}/scxml/session/{sid}/request/{name}` with a form.
fn ors_request(sim: &OrsSim, i: usize, sid: &str, name: &str, fields: &[(&str, &str)]) -> Resp {
    post_form(
        &format!("{}/scxml/session/{sid}/request/{name}", sim.url(i)),
        fields,
        &[],
    )
}

/// The start request; asserts 200 and returns the dialog.
fn start(sim: &OrsSim, i: usize, sid: &str, fields: &[(&str, &str)]) -> Value {
    let r = ors_request(sim, i, sid, "start", fields);
    assert_eq!(r.status, 200, "start request: {}", r.text());
    r.json()
}

/// The state PUTs the stand-in gateway received for callback `id`.
fn reports(gms: &OrsSim, id: &str) -> Vec<Value> {
    let path = format!("/genesys/1/service/callback/{SVC}/{id}");
    gms.log()
        .as_array()
        .expect("/sim/log is an array")
        .iter()
        .filter(|e| e["path"] == path.as_str())
        .cloned()
        .collect()
}

/// Polls until `gms` has received `n` reports for `id` (at most 15 s).
fn wait_reports(gms: &OrsSim, id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = reports(gms, id);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} reports for {id} within 15 s: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn states(reports: &[Value]) -> Vec<String> {
    reports
        .iter()
        .map(|e| {
            e["params"]["_callback_state"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

/// `GET /sim/callbacks/{id}` (asserts 200).
fn callback_view(sim: &OrsSim, id: &str) -> Value {
    let r = get(&format!("{}/sim/callbacks/{id}", sim.control_url()), &[]);
    assert_eq!(r.status, 200, "GET /sim/callbacks/{id}: {}", r.text());
    r.json()
}

/// `POST /sim/callbacks/{id}/state`, with an optional step.
fn drive(sim: &OrsSim, id: &str, step: Option<Value>) -> Resp {
    let url = format!("{}/sim/callbacks/{id}/state", sim.control_url());
    match step {
        Some(s) => post_json(&url, &s, &[]),
        None => post_empty(&url, &[]),
    }
}

fn position(sim: &OrsSim, sid: &str) -> Value {
    let r = ors_request(sim, 0, sid, "check-queue-position", &[]);
    assert_eq!(r.status, 200, "check-queue-position: {}", r.text());
    r.json()
}

#[test]
fn a_callback_runs_its_steps_and_reports_each_state_to_the_gateway() {
    let gms = OrsSim::start(1);
    let steps = json!([
        {"state": "QUEUED", "delay_ms": 10},
        {"state": "ROUTING", "delay_ms": 10},
        {"state": "PROCESSING", "delay_ms": 10},
        {"state": "COMPLETED", "reason": "AGENT_CONNECTED", "delay_ms": 10},
    ]);
    let sim = callback_sim(2, &gms, json!({ "steps": steps }));
    let id = "0f6e2c1a-8a4b-4c53-9d9e-2a1c7b5e4f10";
    let sid = submit(&sim, 1, id, &[]);
    let dialog = start(&sim, 1, &sid, &[("_service_id", id)]);
    assert_eq!(
        dialog,
        json!({"_action": "ConfirmationDialog", "_text": "You will receive the call shortly",
               "_ok_title": "Ok", "_dialog_id": "0"})
    );

    let got = wait_reports(&gms, id, 4);
    assert_eq!(
        states(&got),
        ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]
    );
    for e in &got {
        assert_eq!(e["method"], "PUT", "{e}");
        assert_eq!(e["headers"]["authorization"], AUTH, "{e}");
        assert_eq!(
            e["headers"]["content-type"], "application/x-www-form-urlencoded",
            "{e}"
        );
    }
    assert_eq!(got[3]["params"]["_callback_reason"], "AGENT_CONNECTED");
    assert!(
        got[0]["params"].get("_callback_reason").is_none(),
        "{}",
        got[0]
    );

    let view = callback_view(&sim, id);
    assert_eq!(
        (&view["state"], &view["reason"], &view["ended"]),
        (&json!("COMPLETED"), &json!("AGENT_CONNECTED"), &json!(true)),
        "{view}"
    );
    assert_eq!(
        (&view["session"], &view["owner"]),
        (&json!(sid), &json!(sim.addr(1)))
    );
    let statuses: Vec<&Value> = view["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [&json!(200); 4], "{view}");

    // The submit is one logged session start carrying the callback id, like any ORS start.
    let log = get(
        &format!(
            "{}/sim/log?path_prefix=/scxml/session/start",
            sim.control_url()
        ),
        &[],
    )
    .json();
    let starts: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["params"]["_service_id"] == id)
        .collect();
    assert_eq!(starts.len(), 1, "{log}");
    assert_eq!(starts[0]["params"]["_customer_number"], "5551234");
}

#[test]
fn steps_can_be_driven_by_hand_and_reported_as_json() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(1, &gms, json!({"auto": false, "report_body": "json"}));
    let id = "cb-by-hand";
    let sid = submit(&sim, 0, id, &[]);
    start(&sim, 0, &sid, &[]);
    assert_eq!(callback_view(&sim, id)["state"], "QUEUED");

    let r = drive(&sim, id, None);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (&v["report"]["state"], &v["report"]["status"]),
        (&json!("QUEUED"), &json!(200)),
        "{v}"
    );
    assert_eq!(v["callback"]["next_step"], 1, "{v}");

    // A state of the script taken by hand: the script goes on after it.
    let r = drive(&sim, id, Some(json!({"state": "PROCESSING"})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["callback"]["next_step"], 3);
    let r = drive(
        &sim,
        id,
        Some(json!({"state": "COMPLETED", "reason": "CANCELLED"})),
    );
    assert_eq!(r.json()["callback"]["ended"], true);
    let r = drive(&sim, id, None);
    assert_eq!(r.status, 409, "{}", r.text());

    let got = reports(&gms, id);
    assert_eq!(got.len(), 3, "{got:?}");
    for e in &got {
        assert_eq!(e["headers"]["content-type"], "application/json", "{e}");
        assert_eq!(e["headers"]["authorization"], AUTH, "{e}");
    }

    assert_eq!(drive(&sim, id, Some(json!({"state": "DONE"}))).status, 400);
    assert_eq!(drive(&sim, id, Some(json!({"stat": "QUEUED"}))).status, 400);
    assert_eq!(drive(&sim, "no-such-callback", None).status, 404);
    assert_eq!(
        get(&format!("{}/sim/callbacks/nope", sim.control_url()), &[]).status,
        404
    );
}

#[test]
fn a_report_the_gateway_cannot_take_is_recorded_with_its_reason() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(1, &gms, json!({"auto": false}));
    gms.set(0, &json!({"mode": "error", "error_status": 400}));
    let sid = submit(&sim, 0, "cb-refused", &[]);
    start(&sim, 0, &sid, &[]);
    let v = drive(&sim, "cb-refused", None).json();
    assert_eq!(v["report"]["status"], 400, "{v}");

    // No gateway configured: the step is taken but not sent.
    put_callback_config(&sim, &json!({"auto": false}));
    let v = drive(&sim, "cb-refused", None).json();
    assert_eq!(
        (&v["report"]["state"], &v["report"]["status"]),
        (&json!("ROUTING"), &Value::Null),
        "{v}"
    );
    assert!(str_field(&v["report"], "error").contains("gms_base"), "{v}");
}

#[test]
fn the_dialog_is_chosen_per_session_per_instance_or_globally() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(
        2,
        &gms,
        json!({"auto": false, "start_requests": ["start", "gms.start"]}),
    );
    sim.set(1, &json!({"callback_dialog": "DialNumber"}));

    let sid = submit(&sim, 0, "cb-global", &[]);
    assert_eq!(start(&sim, 0, &sid, &[])["_action"], "ConfirmationDialog");

    let sid = submit(&sim, 1, "cb-instance", &[]);
    let dial = start(&sim, 1, &sid, &[]);
    assert_eq!(dial["_action"], "DialNumber", "{dial}");
    assert!(str_field(&dial, "_tel_url").starts_with("tel:"), "{dial}");

    // A session's own _sim_dialog (a service option the gateway passes on) wins.
    let sid = submit(&sim, 1, "cb-session", &[("_sim_dialog", "DisplayMenu")]);
    let menu = start(&sim, 1, &sid, &[]);
    assert_eq!(menu["_action"], "DisplayMenu", "{menu}");
    let items = menu["_content"][0]["_group_content"]
        .as_array()
        .expect("menu items");
    let cancel_url = format!("{}/genesys/1/service/cb-session/cancel", gms.url(0));
    assert!(
        items
            .iter()
            .any(|i| i["_user_action_url"] == cancel_url.as_str()),
        "{menu}"
    );
    assert!(items.iter().all(|i| i["_label"].is_string()), "{menu}");

    // Another configured start request name starts a callback too.
    let sid = submit(&sim, 0, "cb-gms-start", &[]);
    let r = ors_request(&sim, 0, &sid, "gms.start", &[]);
    assert_eq!(r.json()["_action"], "ConfirmationDialog", "{}", r.text());
    assert_eq!(callback_view(&sim, "cb-gms-start")["state"], "QUEUED");

    // A dialog given as an object is answered as it is.
    put_callback_config(
        &sim,
        &json!({"dialog": {"_action": "StartChat", "_start_chat_url": "x"}}),
    );
    let sid = submit(&sim, 0, "cb-custom", &[]);
    assert_eq!(
        start(&sim, 0, &sid, &[]),
        json!({"_action": "StartChat", "_start_chat_url": "x"})
    );

    let sid = submit(&sim, 0, "cb-bad", &[("_sim_dialog", "Menu")]);
    assert_eq!(ors_request(&sim, 0, &sid, "start", &[]).status, 400);

    // Callback mode off: gms.start answers as for any ORS service, start is a plain request.
    let r = delete(&format!("{}/sim/callback", sim.control_url()), &[]);
    assert_eq!(r.status, 200);
    let sid = submit(&sim, 0, "cb-off", &[]);
    assert_eq!(
        ors_request(&sim, 0, &sid, "gms.start", &[]).json()["message"],
        "started"
    );
    assert_eq!(
        ors_request(&sim, 0, &sid, "start", &[]).json()["request"],
        "start"
    );
    assert_eq!(
        get(&format!("{}/sim/callback", sim.control_url()), &[]).json(),
        Value::Null
    );
}

#[test]
fn a_start_request_without_a_callback_id_is_a_400() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(1, &gms, json!({"auto": false}));
    let sid = bare_session(&sim, &[]);
    let r = ors_request(&sim, 0, &sid, "start", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(str_field(&r.json(), "error").contains("_service_id"));
}

#[test]
fn parameters_sent_as_headers_name_the_callback_too() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(1, &gms, json!({"auto": false}));
    let sid = bare_session(
        &sim,
        &[
            ("X-GMS-service_id", "cb-headers"),
            ("X-GMS-service_name", SVC),
        ],
    );
    start(&sim, 0, &sid, &[]);
    assert_eq!(
        drive(&sim, "cb-headers", None).json()["report"]["status"],
        200
    );
    assert_eq!(states(&reports(&gms, "cb-headers")), ["QUEUED"]);
}

#[test]
fn submissions_are_counted_per_callback_until_reset() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(2, &gms, json!({"auto": false}));
    let starts = || {
        let r = get(&format!("{}/sim/starts", sim.control_url()), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    // Twice for one callback (on either instance), once with its start request only pending.
    let first = submit(&sim, 0, "cb-twice", &[]);
    start(&sim, 0, &first, &[]);
    let second = submit(&sim, 1, "cb-twice", &[]);
    start(&sim, 1, &second, &[]);
    submit(&sim, 0, "cb-pending", &[]);
    bare_session(&sim, &[]);
    assert_eq!(
        starts(),
        json!({
            "cb-twice": {"sessions": 2, "requests": 2},
            "cb-pending": {"sessions": 1, "requests": 0},
        })
    );
    let r = delete(&format!("{}/sim/starts", sim.control_url()), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(starts(), json!({}));
}

#[test]
fn the_queue_position_counts_callbacks_still_queued() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(1, &gms, json!({"auto": false, "eta_per_position_s": 30}));
    let sids: Vec<String> = (0..3)
        .map(|i| {
            let id = format!("cb-queue-{i}");
            let sid = submit(&sim, 0, &id, &[]);
            start(&sim, 0, &sid, &[]);
            sid
        })
        .collect();
    assert_eq!(
        position(&sim, &sids[2]),
        json!({"_position": "3", "_eta": "90", "_total_waiting": "3"})
    );
    // A GET, with its parameters in the query, answers the same.
    let r = get(
        &format!(
            "{}/scxml/session/{}/request/check-queue-position?_service_id=cb-queue-2",
            sim.url(0),
            sids[2]
        ),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["_position"], "3");

    drive(&sim, "cb-queue-0", Some(json!({"state": "ROUTING"})));
    assert_eq!(position(&sim, &sids[0])["_position"], "0");
    assert_eq!(position(&sim, &sids[2])["_position"], "2");

    let r = ors_request(&sim, 0, &sids[1], "cancel", &[]);
    assert_eq!((r.status, r.json()), (200, json!({})), "{}", r.text());
    assert_eq!(
        position(&sim, &sids[2]),
        json!({"_position": "1", "_eta": "30", "_total_waiting": "1"})
    );

    // A cancelled callback's session is gone and its strategy has no step left.
    assert_eq!(
        ors_request(&sim, 0, &sids[1], "check-queue-position", &[]).status,
        404
    );
    assert_eq!(ors_request(&sim, 0, &sids[1], "status", &[]).status, 404);
    assert_eq!(callback_view(&sim, "cb-queue-1")["ended"], true);
    assert_eq!(drive(&sim, "cb-queue-1", None).status, 409);

    // terminate ends a callback as well.
    let r = post_empty(
        &format!("{}/scxml/session/{}/terminate", sim.url(0), sids[2]),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(callback_view(&sim, "cb-queue-2")["ended"], true);
    assert_eq!(reports(&gms, "cb-queue-1").len(), 0);
}

#[test]
fn a_cancel_stops_the_timer() {
    let gms = OrsSim::start(1);
    let steps =
        json!([{"state": "QUEUED", "delay_ms": 0}, {"state": "ROUTING", "delay_ms": 60000}]);
    let sim = callback_sim(1, &gms, json!({ "steps": steps }));
    let sid = submit(&sim, 0, "cb-timer", &[]);
    start(&sim, 0, &sid, &[]);
    assert_eq!(states(&wait_reports(&gms, "cb-timer", 1)), ["QUEUED"]);
    assert_eq!(ors_request(&sim, 0, &sid, "cancel", &[]).status, 200);
    let view = callback_view(&sim, "cb-timer");
    assert_eq!(
        (&view["ended"], &view["next_step"]),
        (&json!(true), &json!(1)),
        "{view}"
    );
    // The timer's next step would be this one: none is left.
    assert_eq!(drive(&sim, "cb-timer", None).status, 409);
}

#[test]
fn callback_mode_from_the_command_line() {
    let gms = OrsSim::start(1);
    let base = format!("{}/genesys/1", gms.url(0));
    let sim = OrsSim::start_args(
        1,
        &[
            "--callback",
            r#"{"auto":false}"#,
            "--gms-base",
            &base,
            "--gms-auth",
            "admin:secret",
        ],
    );
    let cfg = get(&format!("{}/sim/callback", sim.control_url()), &[]).json();
    assert_eq!(cfg["gms_base"], base.as_str(), "{cfg}");
    assert_eq!(cfg["auto"], false, "{cfg}");
    assert_eq!(cfg["start_requests"], json!(["start"]), "{cfg}");
    let sid = submit(&sim, 0, "cb-cli", &[]);
    start(&sim, 0, &sid, &[]);
    drive(&sim, "cb-cli", None);
    assert_eq!(reports(&gms, "cb-cli")[0]["headers"]["authorization"], AUTH);

    let dir = TempDir::new("sim-args");
    for bad in [
        &["--gms-base", "https://127.0.0.1:1"][..],
        &["--callback", r#"{"dialog":"Nope"}"#],
        &["--gms-auth", "no-colon"],
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ors-sim"));
        cmd.args(["--listen", "127.0.0.1:0"]).args(bad);
        let done = run_logged(&mut cmd, &dir.file("bad"), Duration::from_secs(10));
        assert_eq!(done.code, Some(2), "{bad:?}: {}", done.stderr);
    }
}

#[test]
fn bad_callback_configs_are_refused_and_the_old_one_kept() {
    let gms = OrsSim::start(1);
    let sim = callback_sim(1, &gms, json!({"auto": false}));
    for bad in [
        json!({"steps": [{"state": "WAITING"}]}),
        json!({"gms_base": "ftp://x"}),
        json!({"gms_user": "a"}),
        json!({"start_requests": []}),
        json!({"unknown": 1}),
    ] {
        let r = put_callback(&sim, &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let url = format!("{}/sim/callback", sim.control_url());
    assert_eq!(get(&url, &[]).json()["auto"], false);
}
