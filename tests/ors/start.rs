//! Session start (create) and `_ors_forward: headers`.

use super::*;

// Start (create).

#[test]
fn create_starts_a_session_then_sends_gms_start_and_returns_its_reply() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v["message"], "started", "not the gms.start reply: {v}");
    assert_eq!(
        v["_id_seen"],
        id.as_str(),
        "ORS saw another _service_id: {v}"
    );
    let sid = str_field(&v, "sessionid").to_string();

    let st = start_of(&sim, &id);
    assert_eq!(st["method"], "POST");
    let ct = st["headers"]["content-type"].as_str().unwrap_or("");
    assert!(
        ct.starts_with("application/x-www-form-urlencoded"),
        "start is not form-urlencoded: {st}"
    );
    assert_eq!(st["params"]["src"], SRC);
    assert_eq!(st["params"]["_service_id"], id.as_str());
    assert_eq!(st["params"]["_service_name"], SVC);
    assert!(
        st["params"]["_data_id"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "start lacks _data_id: {st}"
    );
    assert_eq!(starts(&sim).len(), 1, "one create, one start");
    assert!(sessions(&sim).contains_key(&sid), "no ORS session {sid}");

    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1, "exactly one gms.start: {gs:?}");
    assert_eq!(gs[0]["method"], "POST");
    assert_eq!(
        path_of(&gs[0]),
        format!("/scxml/session/{sid}/request/gms.start")
    );
    assert_eq!(instance_of(&gs[0]), instance_of(&st), "gms.start elsewhere");
}

#[test]
fn gms_start_carries_the_same_parameters_as_the_start() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_foo", "configured").start();
    let (_, id) = create(&gw, &[("_bar", "from client"), ("color", "red")]);
    let mut st = start_of(&sim, &id)["params"].clone();
    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1, "{gs:?}");
    let mut gp = gs[0]["params"].clone();
    // Whether `src` is repeated on gms.start is left open; compare the rest.
    st.as_object_mut().map(|o| o.remove("src"));
    gp.as_object_mut().map(|o| o.remove("src"));
    assert_eq!(gp, st, "gms.start and start parameters differ");
    assert_eq!(gp["_foo"], "configured");
    assert_eq!(gp["_bar"], "from client");
}

#[test]
fn start_sends_underscore_params_but_not_user_data_files_or_gateway_options() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_ors_lb_strategy", "circular")
        .opt("_status_ttl_ms", "1000")
        .opt("_status_push_ttl_ms", "30000")
        .opt("_ors_forward", "params")
        .opt("_ors_start", "sync")
        .opt("_ors_start_timeout_s", "30")
        .opt("_start_request", "gms.start")
        .opt("_overwritable_options", "_none")
        .opt("_service_ttl", "3600")
        .opt("_foo", "configured")
        .start();
    let mp = Multipart::new()
        .text("_extra", "x y")
        .text("color", "red")
        .text("_status_ttl_ms", "5")
        .text("_ors", "http://127.0.0.1:9/")
        .file("doc", "scan.png", "image/png", &fake_jpeg(500));
    let v = ok_json(&post_multipart(&gw.service_url(SVC), &mp, &[]));
    let id = str_field(&v, "_id").to_string();
    let st = start_of(&sim, &id);
    let data_id = data_id_of(&sim, &id);
    assert_eq!(
        st["params"],
        json!({
            "src": SRC,
            "_foo": "configured",
            "_extra": "x y",
            "_service_id": id,
            "_data_id": data_id,
            "_service_name": SVC,
        }),
        "start parameters"
    );
    for opt in GATEWAY_OPTIONS {
        assert!(st["params"].get(opt).is_none(), "{opt} sent to ORS: {st}");
    }
}

#[test]
fn configured_options_win_over_request_params_unless_overwritable() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_foo", "configured")
        .opt("_bar", "fixed")
        .opt("_overwritable_options", "_foo")
        .start();
    let (_, id) = create(&gw, &[("_foo", "client"), ("_bar", "client")]);
    let st = start_of(&sim, &id);
    assert_eq!(st["params"]["_foo"], "client", "_foo is overwritable: {st}");
    assert_eq!(st["params"]["_bar"], "fixed", "_bar is not: {st}");

    // Without a request value, the configured one is sent.
    let (_, id2) = create(&gw, &[]);
    let st2 = start_of(&sim, &id2);
    assert_eq!(st2["params"]["_foo"], "configured");
    assert_eq!(st2["params"]["_bar"], "fixed");
}

#[test]
fn client_values_for_reserved_params_are_ignored() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let fake = uuid::Uuid::new_v4().to_string();
    let (v, id) = create(
        &gw,
        &[
            ("_service_id", &fake),
            ("_data_id", "client-data"),
            ("_service_name", "client-name"),
        ],
    );
    assert_ne!(id, fake, "the client chose the service id");
    assert_eq!(v["_id_seen"], id.as_str(), "{v}");
    let st = start_of(&sim, &id);
    assert_eq!(st["params"]["_service_id"], id.as_str());
    assert_eq!(st["params"]["_service_name"], SVC);
    assert_ne!(st["params"]["_data_id"], "client-data", "{st}");
    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1);
    assert_eq!(gs[0]["params"]["_service_id"], id.as_str());
    assert_eq!(gs[0]["params"]["_service_name"], SVC);
}

#[test]
fn empty_start_request_skips_gms_start_and_replies_with_the_id_only() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_start_request", "").start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v, json!({"_id": id}));
    assert_eq!(starts(&sim).len(), 1);
    assert!(session_of(&sim, &id).is_some(), "no ORS session started");
    assert_eq!(kind_count(&sim, "request"), 0, "a request was sent");
    assert!(requests_named(&sim, "gms.start").is_empty());
}

#[test]
fn plain_text_session_id_from_ors_is_accepted() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"start_reply": "text"}));
    let gw = cfg(nodes(&sim)).start();
    let (v, id) = create(&gw, &[]);
    assert_eq!(v["message"], "started", "{v}");
    assert_eq!(v["_id_seen"], id.as_str());
    let sid = session_of(&sim, &id).expect("an ORS session");
    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1);
    assert_eq!(
        path_of(&gs[0]),
        format!("/scxml/session/{sid}/request/gms.start")
    );
}

#[test]
fn create_user_data_is_stored_under_the_data_id() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let doc = fake_jpeg(2000);
    let mp = Multipart::new()
        .text("color", "red")
        .text("size", "L")
        .text("_param", "not data")
        .file("doc", "scan.png", "image/png", &doc);
    let v = ok_json(&post_multipart(&gw.service_url(SVC), &mp, &[]));
    let id = str_field(&v, "_id");
    let data_id = data_id_of(&sim, id);
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &[])),
        json!({"color": "red", "size": "L", "doc": gw.binary_url(&data_id, "doc")})
    );
    let bin = get(&gw.binary_url(&data_id, "doc"), &[]);
    assert_eq!(bin.status, 200);
    assert_eq!(bin.body, doc);
}

// _ors_forward: headers.

#[test]
fn headers_forwarding_sends_params_as_percent_encoded_x_gms_headers() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim))
        .opt("_ors_forward", "headers")
        .opt("_foo", "configured")
        .start();
    let (v, id) = create(&gw, &[("_greeting", "hello wörld/ok~"), ("color", "red")]);
    assert_eq!(v["message"], "started", "{v}");
    let st = start_of(&sim, &id);
    assert_eq!(st["params"], json!({"src": SRC}), "body must hold only src");
    let h = &st["headers"];
    assert_eq!(h["x-gms-service_id"], id.as_str(), "{st}");
    assert_eq!(h["x-gms-service_name"], SVC);
    assert!(
        h["x-gms-data_id"].as_str().is_some_and(|d| !d.is_empty()),
        "{st}"
    );
    assert_eq!(h["x-gms-foo"], "configured");
    assert_eq!(h["x-gms-greeting"], "hello%20w%C3%B6rld%2Fok~");
    assert!(h.get("x-gms-color").is_none(), "user data sent: {st}");
    for opt in GATEWAY_OPTIONS {
        let name = format!("x-gms-{}", &opt[1..]);
        assert!(h.get(&name).is_none(), "{name} sent to ORS: {st}");
    }

    let gs = requests_named(&sim, "gms.start");
    assert_eq!(gs.len(), 1);
    let gh = &gs[0]["headers"];
    for name in [
        "x-gms-service_id",
        "x-gms-service_name",
        "x-gms-data_id",
        "x-gms-foo",
        "x-gms-greeting",
    ] {
        assert_eq!(gh[name], h[name], "{name} differs on gms.start: {}", gs[0]);
    }
    let gp = gs[0]["params"].as_object().cloned().unwrap_or_default();
    assert!(
        gp.keys().all(|k| !k.starts_with('_')),
        "gms.start body carries parameters: {}",
        gs[0]
    );
}

#[test]
fn headers_forwarding_applies_to_later_requests() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).opt("_ors_forward", "headers").start();
    let (_, id) = create(&gw, &[]);
    let r = post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "a b"), ("color", "blue")],
        &[],
    );
    let echo = ok_json(&r);
    assert_eq!(echo["request"], "ask", "{echo}");
    let asks = requests_named(&sim, "ask");
    assert_eq!(asks.len(), 1, "{asks:?}");
    let h = &asks[0]["headers"];
    assert_eq!(h["x-gms-q"], "a%20b", "{}", asks[0]);
    assert_eq!(h["x-gms-service_id"], id.as_str());
    assert_eq!(h["x-gms-service_name"], SVC);
    assert!(h["x-gms-data_id"].as_str().is_some());
    let p = asks[0]["params"].as_object().cloned().unwrap_or_default();
    assert!(
        p.keys().all(|k| !k.starts_with('_')) && p.get("color").is_none(),
        "request body carries parameters: {}",
        asks[0]
    );
}
