//! Callbacks after their create, black-box (`gms-callback.md` §4, §5, §6.1, §7.2): cancel from
//! SCHEDULED and from QUEUED (ORS told), `discard_ors_failure`; reschedule (buckets move, an
//! immediate time submits at once); key edits; ORS's state reports and invalid transitions;
//! queries by properties on one service and across services.

mod common;

use common::callback::*;
use common::*;
use serde_json::{json, Value};

const ALICE: (&str, &str) = ("gms_user", "alice");

fn one_service(extra: &str) -> CallbackLab {
    CallbackLab::start(&callback_service(CB, extra))
}

/// The ORS requests `lab`'s simulator got on a session, by request name (`cancel`,
/// `terminate`, `check-queue-position`...).
fn session_calls(lab: &CallbackLab, session: &str) -> Vec<String> {
    sim_requests(&lab.sim, &format!("/scxml/session/{session}/"))
        .iter()
        .map(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn a_scheduled_callback_is_cancelled_without_ors() {
    let lab = one_service("");
    let id = lab.schedule(CB, "5561001", 3600);
    let r = lab.cancel(CB, &id, "");
    let v = ok_json(&r);
    assert_eq!(
        (&v["_id"], &v["_callback_state"]),
        (&json!(id), &json!("COMPLETED"))
    );
    assert_eq!(v["_callback_reason"], "CANCELLED");
    assert!(lab.starts(&id).is_empty());
    // It stays until its expiration; a second cancel is refused.
    assert_eq!(lab.record(&id)["_callback_reason"], "CANCELLED");
    let e = assert_callback_error(
        &lab.cancel(CB, &id, ""),
        400,
        "CallbackExceptionInvalidState",
    );
    assert_eq!(e["message"], format!("Callback {id} is already COMPLETED"));
    // Unknown ids, and ids of another service, are 404.
    let other = CallbackLab::start(&format!(
        "{}{}",
        callback_service(CB, ""),
        callback_service("other", "")
    ));
    let id = other.schedule("other", "5561002", 3600);
    assert_callback_error(&other.cancel(CB, &id, ""), 404, "CallbackExceptionNotFound");
    assert_callback_error(
        &other.cancel(CB, "0f6e2c1a-8a4b-4c53-9d9e-2a1c7b5e4f10", ""),
        404,
        "CallbackExceptionNotFound",
    );
    assert_callback_error(
        &other.cancel(CB, "not-an-id", ""),
        404,
        "CallbackExceptionNotFound",
    );
    assert_callback_error(
        &other.cancel("nope", &id, ""),
        404,
        "CallbackExceptionNotFound",
    );
}

#[test]
fn a_queued_callback_is_cancelled_on_ors_first() {
    let lab = one_service("");
    let id = lab.now(CB, "5562001");
    let session = str_field(&lab.record(&id), "_ors_session_id").to_string();
    assert!(!session.is_empty());
    let v = ok_json(&lab.cancel(CB, &id, ""));
    assert_eq!(
        (&v["_callback_state"], &v["_callback_reason"]),
        (&json!("COMPLETED"), &json!("CANCELLED"))
    );
    assert_eq!(session_calls(&lab, &session), ["start", "cancel"]);
    let sim = ok_json(&get(
        &format!("{}/sim/callbacks/{id}", lab.sim.control_url()),
        &[],
    ));
    assert_eq!(sim["ended"], true, "{sim}");

    // ORS unreachable: 502, nothing changes; with discard_ors_failure the cancel is marked.
    let id = lab.now(CB, "5562002");
    lab.sim.set(0, &json!({"mode": "refuse"}));
    let r = lab.cancel(CB, &id, "");
    let e = assert_error(&r, 502);
    assert_eq!(e["code"], 502);
    lab.sim.set(0, &json!({"mode": "ok"}));
    assert_eq!(lab.state(&id), "QUEUED");
    lab.sim.set(0, &json!({"mode": "refuse"}));
    let v = ok_json(&lab.cancel(CB, &id, "?discard_ors_failure=true"));
    assert_eq!(v["_callback_state"], "COMPLETED");
    lab.sim.set(0, &json!({"mode": "ok"}));
    assert_callback_error(
        &lab.cancel(CB, &id, "?discard_ors_failure=maybe"),
        400,
        "CallbackExceptionInvalidParameter",
    );

    // A session ORS no longer knows: `terminate` after the 404 of `cancel`.
    let id = lab.now(CB, "5562003");
    let session = str_field(&lab.record(&id), "_ors_session_id").to_string();
    let r = post_empty(
        &format!("{}/scxml/session/{session}/terminate", lab.sim.url(0)),
        &[],
    );
    assert_eq!(r.status, 200);
    ok_json(&lab.cancel(CB, &id, ""));
    assert_eq!(
        session_calls(&lab, &session),
        ["start", "terminate", "cancel", "terminate"]
    );
}

#[test]
fn a_reschedule_moves_the_booking_and_an_immediate_time_submits() {
    let lab = CallbackLab::start_with(
        &callback_service(CB, "_max_request_by_time_bucket: 1\n_ttl: 600\n_enable_in_queue_checking: \"false\"\n"),
        "returned-keys: \"_desired_time,_callback_state,_callback_reason,_ors_session_id,first_name\"\n",
    );
    let hour = |h: i64| {
        let t = parse_iso(&iso_in(h * 3600))
            .round(jiff::TimestampRound::new().smallest(jiff::Unit::Hour));
        iso(t.unwrap())
    };
    let (two, three) = (hour(2), hour(3));
    let v = lab.create_ok(
        CB,
        &[
            ("_customer_number", "5563001"),
            ("_desired_time", &two),
            ("first_name", "Ann"),
        ],
    );
    let id = str_field(&v, "_id").to_string();
    assert_eq!(lab.record(&id)["first_name"], "Ann");
    let v = ok_json(&lab.put(
        CB,
        &id,
        &[("_new_desired_time", &three), ("first_name", "")],
        &[],
    ));
    assert_eq!(v["_desired_time"], three.as_str());
    assert_eq!(
        parse_iso(str_field(&v, "_expiration_time")),
        parse_iso(&three) + jiff::SignedDuration::from_secs(600)
    );
    assert!(
        v.get("first_name").is_none(),
        "an empty value removes the key: {v}"
    );
    assert_eq!(v["_callback_state"], "SCHEDULED");
    // The old bucket is free again, the new one full.
    lab.create_ok(
        CB,
        &[("_customer_number", "5563002"), ("_desired_time", &two)],
    );
    let r = lab.create(
        CB,
        &[("_customer_number", "5563003"), ("_desired_time", &three)],
    );
    assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    // Into a full bucket: refused with proposals, nothing moves.
    let other = lab.schedule(CB, "5563004", 4 * 3600);
    let r = lab.put(CB, &other, &[("_new_desired_time", &three)], &[]);
    let e = assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    assert!(!e["availability"].as_object().unwrap().is_empty(), "{e}");
    // Within the execution buffer: submitted now, QUEUED in the reply.
    let v = ok_json(&lab.put(CB, &other, &[("_new_desired_time", &iso_in(10))], &[]));
    assert_eq!(v["_callback_state"], "QUEUED", "{v}");
    assert_eq!(lab.starts(&other).len(), 1);
    // Only in SCHEDULED.
    let r = lab.put(CB, &other, &[("_new_desired_time", &three)], &[]);
    assert_callback_error(&r, 400, "CallbackExceptionInvalidState");
    let r = lab.put(CB, &id, &[("_new_desired_time", "tomorrow")], &[]);
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
}

#[test]
fn user_keys_are_edited_and_lookup_keys_found_again() {
    let lab = one_service("_customer_lookup_keys: CB_ID\n");
    let id = lab.schedule(CB, "5564001", 3600);
    // GMS clients resend the create body: its underscore keys are ignored.
    let v = ok_json(&lab.put(
        CB,
        &id,
        &[
            ("_customer_number", "999"),
            ("_desired_time", &iso_in(60)),
            ("CB_ID", "sub-1"),
        ],
        &[],
    ));
    assert_eq!(
        (&v["_customer_number"], &v["CB_ID"]),
        (&json!("5564001"), &json!("sub-1"))
    );
    let found = ok_json(&lab.query(&format!("/{CB}?CB_ID=sub-1")));
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    ok_json(&lab.put(CB, &id, &[("CB_ID", "")], &[]));
    assert_eq!(
        ok_json(&lab.query(&format!("/{CB}?CB_ID=sub-1"))),
        json!([])
    );
    // The state is ORS's: 401 without admin credentials, and nothing changes.
    let r = lab.put(CB, &id, &[("_callback_state", "COMPLETED")], &[]);
    let e = assert_error(&r, 401);
    assert_eq!(e["code"], 401);
    assert_eq!(lab.state(&id), "SCHEDULED");
}

#[test]
fn ors_reports_states_by_the_rules() {
    let lab = one_service("");
    let id = lab.now(CB, "5565001");
    for state in ["ROUTING", "PROCESSING"] {
        let v = ok_json(&lab.report(CB, &id, state, None));
        assert_eq!(v["_callback_state"], state);
    }
    let e = assert_callback_error(
        &lab.report(CB, &id, "QUEUED", None),
        400,
        "CallbackExceptionInvalidState",
    );
    assert!(str_field(&e, "message").contains("PROCESSING"), "{e}");
    assert_callback_error(
        &lab.report(CB, &id, "DONE", None),
        400,
        "CallbackExceptionInvalidParameter",
    );
    let r = lab.put(CB, &id, &[("_callback_reason", "X")], &[ADMIN]);
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    let v = ok_json(&lab.report(CB, &id, "COMPLETED", Some("AGENT_CONNECTED")));
    assert_eq!(v["_callback_reason"], "AGENT_CONNECTED");
    assert_callback_error(
        &lab.report(CB, &id, "COMPLETED", None),
        400,
        "CallbackExceptionInvalidState",
    );
    // A scheduled callback is the gateway's until it is submitted.
    let id = lab.schedule(CB, "5565002", 3600);
    assert_callback_error(
        &lab.report(CB, &id, "ROUTING", None),
        400,
        "CallbackExceptionInvalidState",
    );
    // Wrong credentials are none.
    let r = lab.put(
        CB,
        &id,
        &[("_callback_state", "QUEUED")],
        &[("Authorization", "Basic YWRtaW46bm9wZQ==")],
    );
    assert_error(&r, 401);
}

#[test]
fn the_strategy_reports_every_state_back() {
    let lab = one_service("");
    let steps = json!([
        {"state": "QUEUED", "delay_ms": 10}, {"state": "ROUTING", "delay_ms": 10},
        {"state": "PROCESSING", "delay_ms": 10},
        {"state": "COMPLETED", "reason": "AGENT_CONNECTED", "delay_ms": 10}
    ]);
    lab.sim_config(json!({"auto": true, "steps": steps}));
    let id = lab.now(CB, "5566001");
    let r = lab.wait_state(&id, "COMPLETED", std::time::Duration::from_secs(15));
    assert_eq!(r["_callback_reason"], "AGENT_CONNECTED");
    // The simulator notes the last answer just after the gateway gave it.
    let sim = wait_for(
        std::time::Duration::from_secs(5),
        "4 reports answered",
        || {
            let v = ok_json(&get(
                &format!("{}/sim/callbacks/{id}", lab.sim.control_url()),
                &[],
            ));
            (v["reports"].as_array().unwrap().len() == 4).then_some(v)
        },
    );
    let statuses: Vec<&Value> = sim["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [&json!(200); 4], "{sim}");
}

#[test]
fn queries_by_properties_on_one_service_and_across() {
    let services = format!(
        "{}{}",
        callback_service(
            CB,
            "_customer_lookup_keys: CB_ID\n_enable_in_queue_checking: \"false\"\n"
        ),
        callback_service("other", "_enable_in_queue_checking: \"false\"\n"),
    );
    let lab = CallbackLab::start(&services);
    let late = lab.schedule(CB, "5567001", 7200);
    let early = lab.schedule(CB, "5567001", 3600);
    let queued = lab.now(CB, "5567001");
    let elsewhere = lab.schedule("other", "5567001", 5400);
    let tagged = ok_json(&lab.create(
        CB,
        &[
            ("_customer_number", "5567002"),
            ("CB_ID", "t"),
            ("_desired_time", &iso_in(600)),
        ],
    ));
    let tagged = str_field(&tagged, "_id").to_string();
    ok_json(&lab.cancel(CB, &early, ""));

    let ids = |rest: &str| -> Vec<String> {
        let v = ok_json(&lab.query(rest));
        v.as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|r| str_field(r, "_id").to_string())
            .collect()
    };
    // By desired time: the immediate one (now), then 1 h (cancelled), then 2 h.
    assert_eq!(
        ids(&format!("/{CB}?_customer_number=5567001")),
        [queued.clone(), early.clone(), late.clone()]
    );
    assert_eq!(
        ids(&format!(
            "/{CB}?_customer_number=5567001&_callback_state=!COMPLETED"
        )),
        [queued.clone(), late.clone()]
    );
    assert_eq!(
        ids(&format!(
            "/{CB}?_customer_number=5567001&_callback_state=SCHEDULED"
        )),
        [late.as_str()]
    );
    assert_eq!(
        ids(&format!(
            "/{CB}?_callback_reason=CANCELLED&CB_ID=t&operand=OR"
        )),
        [tagged.clone(), early.clone()]
    );
    // Across services: every callback service; `_id` finds one, an unknown one none.
    assert_eq!(
        ids("?_customer_number=5567001&_callback_state=SCHEDULED"),
        [elsewhere.clone(), late.clone()]
    );
    assert_eq!(ids(&format!("?_id={elsewhere}")), [elsewhere.as_str()]);
    assert_eq!(
        ids("?_id=0f6e2c1a-8a4b-4c53-9d9e-2a1c7b5e4f10"),
        Vec::<String>::new()
    );

    // Each record: strings only, the keys GMS returns, `_url` and the twins `url` and
    // `desiredTime`.
    let r = lab.record(&queued);
    for k in [
        "_id",
        "_service_name",
        "_callback_state",
        "_desired_time",
        "_expiration_time",
        "_customer_number",
        "_ors_session_id",
        "_url",
        "url",
        "desiredTime",
    ] {
        assert!(r[k].is_string(), "{k} in {r}");
    }
    assert!(r.as_object().unwrap().values().all(Value::is_string), "{r}");
    assert_eq!(
        r["_url"],
        format!("{}/genesys/1/service/callback/{CB}/{queued}", lab.gw.base())
    );
    assert_eq!(r["url"], r["_url"]);
    assert_eq!(r["desiredTime"], r["_desired_time"]);
    assert!(r.get("_callback_reason").is_none(), "{r}");

    // Bad queries.
    assert_callback_error(
        &lab.query(&format!("/{CB}?first_name=x")),
        400,
        "CallbackExceptionInvalidParameter",
    );
    assert_callback_error(
        &lab.query(&format!("/{CB}")),
        400,
        "CallbackExceptionInvalidParameter",
    );
    assert_callback_error(
        &lab.query(&format!("/{CB}?_id=x&operand=XOR")),
        400,
        "CallbackExceptionInvalidParameter",
    );
    assert_callback_error(&lab.query("/nope?_id=x"), 404, "CallbackExceptionNotFound");
}

#[test]
fn a_users_callbacks_are_theirs() {
    let lab = one_service("");
    let v = ok_json(&post_form(
        &lab.url(&format!("/{CB}")),
        &[
            ("_customer_number", "5568001"),
            ("_desired_time", &iso_in(3600)),
        ],
        &[ALICE],
    ));
    let id = str_field(&v, "_id").to_string();
    let q = lab.url("?_customer_number=5568001");
    assert_eq!(ok_json(&get(&q, &[])), json!([]));
    assert_eq!(ok_json(&get(&q, &[ALICE])).as_array().unwrap().len(), 1);
    assert_eq!(ok_json(&get(&q, &[ADMIN])).as_array().unwrap().len(), 1);
    assert_callback_error(&lab.cancel(CB, &id, ""), 404, "CallbackExceptionNotFound");
    let r = request("DELETE", &lab.url(&format!("/{CB}/{id}")), &[ALICE], None);
    assert_eq!(ok_json(&r)["_callback_state"], "COMPLETED");
}
