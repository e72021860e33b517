//! Callback create, black-box (`gms-callback.md` §3): the scheduled reply, immediate creates
//! relaying the strategy's dialog from `ors-sim`, every refusal of §3.2 in its order with
//! GMS's exception names and messages, `_redirect`, `$token$`s, user data, and ORS failures.

mod common;

use common::callback::*;
use common::*;
use jiff::SignedDuration;
use serde_json::{json, Value};

/// A lab with the plain callback service `CB` (its options `extra`) and `others`.
fn lab(extra: &str, others: &str) -> CallbackLab {
    CallbackLab::start(&format!("{}{others}", callback_service(CB, extra)))
}

fn assert_all_strings(v: &Value) {
    for (k, x) in v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
    {
        assert!(x.is_string(), "{k} is not a string in {v}");
    }
}

#[test]
fn a_scheduled_create_answers_a_confirmation_dialog_of_strings() {
    let lab = lab("_ttl: 3600\n_scheduled_text: \"See you later\"\n", "");
    let at = iso_in(3600);
    let v = lab.create_ok(
        CB,
        &[
            ("_customer_number", "5551001"),
            ("_desired_time", &at),
            ("first_name", "Ann"),
        ],
    );
    assert_all_strings(&v);
    assert!(is_uuid_v4(str_field(&v, "_id")), "{v}");
    assert_eq!(v["_action"], "ConfirmationDialog");
    assert_eq!(v["_text"], "See you later");
    assert_eq!(
        (&v["_ok_title"], &v["_dialog_id"]),
        (&json!("Ok"), &json!("0"))
    );
    assert_eq!(v["_callback_state"], "SCHEDULED");
    assert_eq!(v["_desired_time"], at.as_str());
    let expires = parse_iso(str_field(&v, "_expiration_time"));
    assert_eq!(expires, parse_iso(&at) + SignedDuration::from_secs(3600));
    // Nothing went to ORS: it is submitted when it comes due.
    assert!(lab.starts(str_field(&v, "_id")).is_empty());

    // Other spellings of the desired time; always emitted as .mmmZ.
    let local = (jiff::Timestamp::now() + SignedDuration::from_hours(2))
        .to_zoned_datetime(gms_gateway::callback::time::time_zone("Europe/Paris").unwrap())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let v = lab.create_ok(
        CB,
        &[("_customer_number", "5551002"), ("_desired_time", &local)],
    );
    let desired = str_field(&v, "_desired_time");
    assert!(desired.ends_with(".000Z") && desired.len() == 24, "{v}");
    assert_eq!(
        parse_iso(desired),
        local.parse::<jiff::Timestamp>().unwrap()
    );
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5551003"),
            ("_desired_time", "2030-01-01T10:00:00"),
        ],
    );
    let e = assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    assert!(str_field(&e, "message").contains("time zone"), "{e}");
}

#[test]
fn immediate_creates_relay_the_strategys_dialog() {
    let lab = lab("", "");
    let v = lab.create_ok(CB, &[("_customer_number", "5552001")]);
    let id = str_field(&v, "_id");
    assert_eq!(
        v,
        json!({"_id": id, "_action": "ConfirmationDialog", "_text": "You will receive the call shortly",
               "_ok_title": "Ok", "_dialog_id": "0"})
    );
    assert_eq!(lab.state(id), "QUEUED");
    let starts = lab.starts(id);
    assert_eq!(starts.len(), 1, "{starts:?}");
    let p = &starts[0]["params"];
    assert_eq!(p["src"], "http://scxml.example.com/callback.scxml");
    assert_eq!(
        (&p["_customer_number"], &p["_service_name"]),
        (&json!("5552001"), &json!(CB))
    );
    assert!(is_uuid_v4(p["_data_id"].as_str().unwrap()), "{p}");
    assert!(p.get("_type").is_none() && p.get("_ors").is_none(), "{p}");
    // The start request is `start`, carrying the callback's id.
    let started = sim_requests(&lab.sim, "/scxml/session/");
    assert!(started
        .iter()
        .any(|e| e["path"].as_str().unwrap().ends_with("/request/start")
            && e["params"]["_service_id"] == id));

    // The strategy's other dialogs come back as they are, `_id` set to the callback's.
    let v = lab.create_ok(
        CB,
        &[
            ("_customer_number", "5552002"),
            ("_sim_dialog", "DialNumber"),
        ],
    );
    assert_eq!(v["_action"], "DialNumber", "{v}");
    assert!(str_field(&v, "_tel_url").starts_with("tel:"), "{v}");
    let v = lab.create_ok(
        CB,
        &[
            ("_customer_number", "5552003"),
            ("_sim_dialog", "DisplayMenu"),
        ],
    );
    assert_eq!(v["_action"], "DisplayMenu", "{v}");
    let id = str_field(&v, "_id");
    let items = v["_content"][0]["_group_content"]
        .as_array()
        .expect("menu items");
    assert!(
        items.iter().any(|i| i["_user_action_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/service/{id}/cancel"))),
        "{v}"
    );
    // A desired time within the execution buffer is immediate too.
    let v = lab.create_ok(
        CB,
        &[
            ("_customer_number", "5552004"),
            ("_desired_time", &iso_in(30)),
        ],
    );
    assert_eq!(v["_action"], "ConfirmationDialog");
    assert_eq!(lab.state(str_field(&v, "_id")), "QUEUED");
}

#[test]
fn each_check_refuses_in_the_contracts_order() {
    let services = format!(
        "{}{}",
        callback_service(
            CB,
            "_disallow_impossible_phone_numbers: true\n_mandatory_customer_lookup_keys: \"_customer_number,CB_ID\"\n_customer_lookup_keys: CB_ID\n_max_request_by_time_bucket: 1\n_reject_future_desired_time: 2d\n_enable_in_queue_checking: \"false\"\n_throttle_request_parameters_limit: 100\n",
        ),
        callback_service(
            "limited",
            "_max_queued_callbacks_per_service: 1\n_enable_in_queue_checking: \"false\"\n",
        ),
    );
    let lab = CallbackLab::start(&services);

    // 2. Mandatory lookup keys, before the number's syntax.
    let r = lab.create(CB, &[("_customer_number", "12ab")]);
    let e = assert_callback_error(&r, 400, "CallbackExceptionMissingParameter");
    assert_eq!(e["message"], "Mandatory lookup key CB_ID is missing");
    let r = lab.create(CB, &[("CB_ID", "x")]);
    let e = assert_callback_error(&r, 400, "CallbackExceptionMissingParameter");
    assert_eq!(
        e["message"],
        "Mandatory lookup key _customer_number is missing"
    );
    // 3. The number, before the desired time.
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "12ab"),
            ("CB_ID", "x"),
            ("_desired_time", "2000-01-01T00:00:00Z"),
        ],
    );
    let e = assert_callback_error(&r, 400, "CallbackExceptionNumber");
    assert_eq!(
        e["message"],
        "Customer Number [12ab] is disallowed, because it is invalid. Check option _disallow_impossible_phone_numbers"
    );
    // 4. Past and too far ahead, with proposals from now.
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5553001"),
            ("CB_ID", "x"),
            ("_desired_time", &iso_in(-3600)),
        ],
    );
    let e = assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    assert!(str_field(&e, "message").contains("is in the past"), "{e}");
    assert_eq!(e["availability"].as_object().unwrap().len(), 5, "{e}");
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5553001"),
            ("CB_ID", "x"),
            ("_desired_time", &iso_in(3 * 86400)),
        ],
    );
    let e = assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    assert!(
        str_field(&e, "message").contains("more than 2d ahead"),
        "{e}"
    );
    // Bucket full: the second callback in one bucket; the first proposal is a later bucket.
    let at = iso(parse_iso(&iso_in(7200))
        .round(jiff::TimestampRound::new().smallest(jiff::Unit::Hour))
        .unwrap());
    lab.create_ok(
        CB,
        &[
            ("_customer_number", "5553002"),
            ("CB_ID", "x"),
            ("_desired_time", &at),
        ],
    );
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5553003"),
            ("CB_ID", "y"),
            ("_desired_time", &at),
        ],
    );
    let e = assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    assert!(str_field(&e, "message").contains("is full"), "{e}");
    let proposed: Vec<&String> = e["availability"].as_object().unwrap().keys().collect();
    assert_eq!(proposed.len(), 5, "{e}");
    assert!(parse_iso(proposed[0]) > parse_iso(&at), "{e}");
    assert!(
        e["availability"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n == 1),
        "{e}"
    );

    // 5. The queue limit (immediate callbacks only): 503 with Retry-After.
    lab.now("limited", "5553004");
    let r = lab.create("limited", &[("_customer_number", "5553005")]);
    let e = assert_callback_error(&r, 503, "CallbackExceptionServiceUnavailable");
    assert_eq!(
        e["message"],
        "Limit of queued callbacks for limited is reached."
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    // A scheduled one is not held back by it.
    lab.schedule("limited", "5553005", 3600);
}

#[test]
fn throttles_and_in_queue_duplicates() {
    let services = format!(
        "{}{}{}",
        callback_service(CB, "_throttle_callbacks_per_service_1: 2\n_throttle_ttl_1: 60\n_enable_in_queue_checking: \"false\"\n"),
        callback_service("per-number", "_throttle_request_parameters_limit: 2\n_enable_in_queue_checking: \"false\"\n"),
        callback_service("strict", "_enable_in_queue_checking: strict\n"),
    );
    let lab = CallbackLab::start(&services);
    lab.schedule(CB, "5554001", 3600);
    lab.schedule(CB, "5554002", 3600);
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5554003"),
            ("_desired_time", &iso_in(3600)),
        ],
    );
    let e = assert_callback_error(&r, 503, "CallbackExceptionServiceUnavailable");
    assert_eq!(
        e["message"],
        format!("Limit of queued callbacks for {CB} is reached for interval 60s.")
    );
    assert_eq!(r.header("retry-after"), Some("1"));

    lab.schedule("per-number", "5554010", 3600);
    lab.schedule("per-number", "5554010", 7200);
    let r = lab.create(
        "per-number",
        &[
            ("_customer_number", "5554010"),
            ("_desired_time", &iso_in(3600)),
        ],
    );
    let e = assert_callback_error(&r, 503, "CallbackExceptionServiceUnavailable");
    assert_eq!(
        e["message"],
        "Callback for _customer_number=5554010 rejected because previous callbacks for this parameter were requested for more than 2 times today."
    );
    lab.schedule("per-number", "5554011", 3600);

    // strict: one callback per number in the queue; a cancelled one frees the place.
    let first = lab.schedule("strict", "5554020", 3600);
    let r = lab.create("strict", &[("_customer_number", "5554020")]);
    assert_callback_error(&r, 400, "CallbackExceptionDuplicate");
    assert_eq!(lab.cancel("strict", &first, "").status, 200);
    lab.now("strict", "5554020");
}

#[test]
fn office_hours_refuse_scheduled_times_with_the_free_slots_around() {
    let office = "closed-office:\n  _type: builtin\n  _service: office-hours\n  _timezone: America/New_York\n  _bh_regular1: \"Mon-Fri 09:00-17:00\"\n";
    let lab = lab(
        "_business_hours_service: closed-office\n_request_time_bucket: 15\n",
        office,
    );
    // Next Sunday 12:00 in New York: always closed.
    let zone = gms_gateway::callback::time::time_zone("America/New_York").unwrap();
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(zone.clone())
        .date();
    let days = (7 - today.weekday().to_monday_zero_offset() + 6) % 7;
    let sunday = today + jiff::Span::new().days(if days == 0 { 7 } else { days });
    let noon = zone.to_timestamp(sunday.at(12, 0, 0, 0)).unwrap();
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5555001"),
            ("_desired_time", &iso(noon)),
        ],
    );
    let e = assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    assert_eq!(
        e["message"],
        format!(
            "Desired time {} is outside office hours of closed-office",
            iso(noon)
        )
    );
    // The proposals: Monday from 09:00 New York time, every 15 minutes.
    let monday = zone
        .to_timestamp((sunday + jiff::Span::new().days(1)).at(9, 0, 0, 0))
        .unwrap();
    let slots: Vec<String> = e["availability"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let want: Vec<String> = (0..5)
        .map(|i| iso(monday + SignedDuration::from_mins(15 * i)))
        .collect();
    assert_eq!(slots, want, "{e}");
    // An immediate callback is not checked against office hours unless asked to.
    lab.now(CB, "5555002");

    // An office that never opens again, asked to refuse immediate callbacks: nothing to propose.
    let never = "never-open:\n  _type: builtin\n  _service: office-hours\n  _timezone: UTC\n  _bh_regular1: \"Mon-Sun 00:00-24:00\"\n  _effective_dates1: \"2000-01-01\"\n";
    let lab = CallbackLab::start(&format!(
        "{never}{}",
        callback_service(
            CB,
            "_business_hours_service: never-open\n_enable_reject_out_of_office_hours: true\n"
        )
    ));
    let r = lab.create(CB, &[("_customer_number", "5555003")]);
    let e = assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    assert_eq!(e["availability"], json!({}), "{e}");
}

#[test]
fn a_redirect_runs_the_other_services_create() {
    let others = "request-interaction: {_type: builtin, _service: request-interaction}\nhello: {_type: ors, _service: \"http://scxml.example.com/hello.scxml\", _ors: \"{ORS}\"}\n";
    let services = format!(
        "{}{}{}{others}",
        callback_service(CB, "_overwritable_options: _redirect\n"),
        callback_service("to-ri", "_redirect: request-interaction\n"),
        callback_service("fixed", ""),
    );
    let lab = CallbackLab::start(&services);
    let v = lab.create_ok(
        "to-ri",
        &[
            ("_customer_number", "5556001"),
            ("_phone_number", "5556001"),
        ],
    );
    assert!(v["_access_number"].is_string(), "{v}");
    assert!(is_uuid_v4(str_field(&v, "_id")));
    assert!(
        v.get("_callback_state").is_none(),
        "no callback record: {v}"
    );
    assert_eq!(lab.query("?_customer_number=5556001").json(), json!([]));

    let v = lab.create_ok(
        CB,
        &[("_customer_number", "5556002"), ("_redirect", "hello")],
    );
    assert!(
        v.get("_action").is_none(),
        "hello's reply, not a callback's: {v}"
    );
    assert_eq!(ok_json(&lab.query("?_customer_number=5556002")), json!([]));
    // Another callback service's create; an empty value means none.
    let v = lab.create_ok(
        CB,
        &[
            ("_customer_number", "5556003"),
            ("_redirect", "fixed"),
            ("_desired_time", &iso_in(3600)),
        ],
    );
    assert_eq!(lab.record(str_field(&v, "_id"))["_service_name"], "fixed");
    let v = lab.create_ok(CB, &[("_customer_number", "5556004"), ("_redirect", "")]);
    assert_eq!(lab.record(str_field(&v, "_id"))["_service_name"], CB);
    let r = lab.create(
        CB,
        &[("_customer_number", "5556005"), ("_redirect", "nowhere")],
    );
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    // Not overwritable: the request's _redirect is ignored.
    let v = lab.create_ok(
        "fixed",
        &[("_customer_number", "5556006"), ("_redirect", "hello")],
    );
    assert_eq!(v["_action"], "ConfirmationDialog", "{v}");
}

#[test]
fn tokens_options_and_user_data_go_to_ors() {
    let lab = lab(
        "_urs_vq_name: \"$vq$\"\n_target: \"Customer_Service@Stat_Server.GA\"\n_overwritable_options: _target\n_ttl: 7200\n",
        "",
    );
    let v = lab.create_ok(
        CB,
        &[
            ("_customer_number", "5557001"),
            ("vq", "SIP_VQ_1"),
            ("_target", "Sales@Stat_Server.GA"),
            ("_media_type", "chat"),
            ("_request_time_bucket", "60"),
            ("_ors", "http://127.0.0.1:1"),
            ("first_name", "Ann"),
        ],
    );
    let id = str_field(&v, "_id");
    let starts = lab.starts(id);
    let p = &starts[0]["params"];
    assert_eq!(p["_urs_vq_name"], "SIP_VQ_1", "{p}");
    assert_eq!(p["_target"], "Sales@Stat_Server.GA", "{p}");
    assert_eq!(p["_media_type"], "chat", "{p}");
    assert!(
        p.get("_request_time_bucket").is_none(),
        "the gateway's own option: {p}"
    );
    assert!(p.get("_ors").is_none(), "{p}");
    // The user data (token values too) is under _data_id, for the strategy to read.
    let data = ok_json(&get(
        &lab.gw.storage_url(p["_data_id"].as_str().unwrap()),
        &[],
    ));
    assert_eq!(data, json!({"vq": "SIP_VQ_1", "first_name": "Ann"}));

    // Files are not callback data.
    let mp = Multipart::new().text("_customer_number", "5557002").file(
        "pic",
        "a.jpg",
        "image/jpeg",
        &fake_jpeg(100),
    );
    let r = post_multipart(&lab.url(&format!("/{CB}")), &mp, &[]);
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
}

#[test]
fn when_ors_cannot_be_reached_nothing_is_kept() {
    let lab = lab("", "");
    lab.sim.set(0, &json!({"mode": "refuse"}));
    let r = lab.create(CB, &[("_customer_number", "5558001")]);
    let e = assert_error(&r, 502);
    assert_eq!(e["exception"], "OrsServiceException");
    assert_eq!(
        (&e["code"], &e["phrase"]),
        (&json!(502), &json!("Bad Gateway"))
    );
    assert_eq!(ok_json(&lab.query("?_customer_number=5558001")), json!([]));
    lab.sim.set(0, &json!({"mode": "ok"}));
    // Nothing kept: the in-queue check does not see a ghost.
    lab.now(CB, "5558001");
    lab.now(CB, "5558001");
}

#[test]
fn unknown_services_and_the_plain_service_paths() {
    let lab = lab("", OFFICE_24X7);
    let r = lab.create("nope", &[("_customer_number", "5559001")]);
    assert_callback_error(&r, 404, "CallbackExceptionNotFound");
    let r = lab.create("business-hours", &[("_customer_number", "5559001")]);
    assert_callback_error(&r, 404, "CallbackExceptionNotFound");
    // A callback service is not created as a plain service, nor office hours.
    let r = lab.gw.create(CB, &[("_customer_number", "5559001")]);
    assert_error(&r, 400);
    let r = lab.gw.create("business-hours", &[]);
    assert_error(&r, 400);
}

#[test]
fn without_callback_services_every_callback_path_is_a_404() {
    let gw = Gateway::start("services:\n  ri: {_type: builtin, _service: request-interaction}\n");
    for (method, path) in [
        ("POST", "/genesys/1/service/callback/ri"),
        ("GET", "/genesys/1/service/callback/ri?_id=x"),
        ("GET", "/genesys/1/service/callback/ri/availability"),
        ("GET", "/genesys/2/service/callback/ri/availability"),
        (
            "DELETE",
            "/GMS-web/gms/1/service/callback/ri/0f6e2c1a-8a4b-4c53-9d9e-2a1c7b5e4f10",
        ),
    ] {
        let r = request(method, &gw.url(path), &[], None);
        assert_callback_error(&r, 404, "CallbackExceptionNotFound");
    }
    // Across services, with none configured: nothing found.
    let r = get(
        &gw.url("/genesys/1/service/callback?_id=0f6e2c1a-8a4b-4c53-9d9e-2a1c7b5e4f10"),
        &[],
    );
    assert_eq!(ok_json(&r), json!([]));
}

#[test]
fn check_reports_every_bad_callback_option_with_its_key_path() {
    let dir = TempDir::new("cb-check");
    let path = dir.file("gateway.yaml");
    let services = "callback: {_type: builtin, _service: request-interaction}\n\
        cb:\n  _type: ors\n  _service_type: callback\n  _service: callback\n  _ors: \"http://127.0.0.1:7210\"\n  _request_time_bucket: 7\n  _reject_future_desired_time: 1q\n  _business_hours_service: nope\n  _overwritable_options: \"_max_queued_callbacks_per_service\"\n  _disallow_premium_phone_numbers: true\n\
        bh: {_type: builtin, _service: office-hours, _timezone: Europe/Paris, _bh_regular1: \"Mon-Fri 9-5\"}\n\
        cap: {_type: builtin, _service: capacity, _timezone: UTC, _capacity_3: \"{\\\"3\\\":{\\\"0900\\\":5000}}\"}\n";
    let yaml = gateway_yaml(&format!(
        "callback: {{queue-polling-rate: 0.01}}\nservices:\n{}",
        indent(services, 2)
    ));
    std::fs::write(&path, fill(&yaml, 0, dir.path())).expect("write config");
    let c = run_check(&path, &dir);
    assert_ne!(c.code, Some(0), "{}", c.stderr);
    for key in [
        "gms.callback.queue-polling-rate",
        "gms.services.callback:",
        "gms.services.cb._service:",
        "gms.services.cb._request_time_bucket",
        "gms.services.cb._reject_future_desired_time",
        "gms.services.cb._business_hours_service",
        "gms.services.cb._overwritable_options",
        "gms.services.bh._bh_regular1",
        "gms.services.cap._capacity_3",
    ] {
        assert!(c.stderr.contains(key), "{key} not reported:\n{}", c.stderr);
    }
    // The premium check is accepted with a warning once the rest is right.
    let good = "cb:\n  _type: ors\n  _service_type: callback\n  _service: \"http://scxml.example.com/cb.scxml\"\n  _ors: \"http://127.0.0.1:7210\"\n  _disallow_premium_phone_numbers: true\n";
    let yaml = gateway_yaml(&format!("services:\n{}", indent(good, 2)));
    std::fs::write(&path, fill(&yaml, 0, dir.path())).expect("write config");
    let c = run_check(&path, &dir);
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    assert!(
        c.stderr
            .contains("gms.services.cb._disallow_premium_phone_numbers"),
        "{}",
        c.stderr
    );
}
