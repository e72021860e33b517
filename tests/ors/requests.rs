//! Requests on a running session, and delete.

use super::*;

/// Two nodes taken in order (`linear`), a session started on the first, that node then set to
/// `mode(&sim)` (an ors-sim mode), and one `ask` request that must still reach the session
/// (its echo names the request and the session id). The sim, to read its log, and the gateway.
fn ask_after_the_owner_turns(mode: impl FnOnce(&OrsSim) -> Value) -> (OrsSim, Gateway) {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (v, id) = create(&gw, &[]);
    let sid = str_field(&v, "sessionid").to_string();
    assert_eq!(instance_of(&start_of(&sim, &id)), sim.addr(0));
    sim.set(0, &mode(&sim));
    let echo = ok_json(&post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "1")],
        &[],
    ));
    assert_eq!(echo["request"], "ask", "{echo}");
    assert_eq!(echo["sessionid"], sid.as_str());
    (sim, gw)
}

// Requests on a running session.

#[test]
fn requests_go_to_the_owning_node_with_underscore_params_only() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "circular")
        .start();
    let mut owners = Vec::new();
    for n in 0..4 {
        let (v, id) = create(&gw, &[]);
        let sid = str_field(&v, "sessionid").to_string();
        let q = format!("q{n}");
        let r = post_form(
            &request_url(&gw, &id, "ask"),
            &[("_q", &q), ("color", "blue")],
            &[],
        );
        let echo = ok_json(&r);
        assert_eq!(echo["request"], "ask", "{echo}");
        assert_eq!(echo["sessionid"], sid.as_str(), "{echo}");
        let p = &echo["params"];
        assert_eq!(p["_q"], q.as_str(), "{echo}");
        assert_eq!(p["_service_id"], id.as_str(), "{echo}");
        assert_eq!(p["_service_name"], SVC, "{echo}");
        assert_eq!(p["_data_id"], data_id_of(&sim, &id).as_str(), "{echo}");
        assert!(p.get("color").is_none(), "user data sent to ORS: {echo}");

        let owner = instance_of(&start_of(&sim, &id)).to_string();
        let asks: Vec<Value> = requests_named(&sim, "ask")
            .into_iter()
            .filter(|e| carried_id(e) == Some(id.as_str()))
            .collect();
        assert_eq!(asks.len(), 1, "{asks:?}");
        assert_eq!(instance_of(&asks[0]), owner, "not sent to the owner");
        assert_eq!(asks[0]["method"], "POST");
        assert_eq!(
            path_of(&asks[0]),
            format!("/scxml/session/{sid}/request/ask")
        );
        owners.push(owner);
    }
    let distinct = tally(owners);
    assert_eq!(distinct.len(), 2, "all sessions on one node: {distinct:?}");
}

#[test]
fn request_user_data_is_merged_into_storage_and_not_sent() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (_, id) = create(&gw, &[("color", "red"), ("shape", "round")]);
    let data_id = data_id_of(&sim, &id);
    let r = post_form(
        &request_url(&gw, &id, "ask"),
        &[("color", "blue"), ("size", "L"), ("_q", "1")],
        &[],
    );
    let echo = ok_json(&r);
    assert!(echo["params"].get("color").is_none(), "{echo}");
    assert!(echo["params"].get("size").is_none(), "{echo}");
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &[])),
        json!({"color": "blue", "shape": "round", "size": "L"})
    );
}

#[test]
fn an_ors_4xx_reply_to_a_request_passes_through_and_is_not_retried() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim)).health().start();
    let (_, id) = create(&gw, &[]);
    let r = post_form(&request_url(&gw, &id, "fail-409"), &[("_q", "1")], &[]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.content_type().starts_with("application/json"), "{r:?}");
    assert_eq!(r.json(), json!({"error": "requested failure"}));
    assert_eq!(requests_named(&sim, "fail-409").len(), 1, "retried");
}

#[test]
fn an_ors_5xx_reply_to_a_request_is_retried_on_another_node() {
    let (sim, _gw) = ask_after_the_owner_turns(|_| json!({"mode": "error", "error_status": 503}));
    let asks = requests_named(&sim, "ask");
    assert!(on(&asks, &sim, 0) >= 1, "the owner was not tried: {asks:?}");
    assert_eq!(on(&asks, &sim, 1), 1, "{asks:?}");
}

#[test]
fn an_ors_service_belongs_to_its_gms_user() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let alice = [("gms_user", "alice")];
    let bob = [("gms_user", "bob")];
    let v = ok_json(&post_form(
        &gw.service_url(SVC),
        &[("color", "red")],
        &alice,
    ));
    let id = str_field(&v, "_id");
    for headers in [&[][..], &bob[..]] {
        assert_error(&post_empty(&request_url(&gw, id, "status"), headers), 404);
        assert_error(
            &post_form(&request_url(&gw, id, "ask"), &[("_q", "1")], headers),
            404,
        );
        assert_error(&delete(&gw.service_url(id), headers), 404);
    }
    assert!(
        requests_named(&sim, "ask").is_empty(),
        "a stranger reached ORS"
    );
    assert_eq!(kind_count(&sim, "status"), 0, "a stranger reached ORS");
    assert_eq!(
        kind_count(&sim, "terminate"),
        0,
        "a stranger ended the session"
    );
    assert_eq!(
        ok_json(&post_empty(&request_url(&gw, id, "status"), &alice)),
        waiting()
    );
    assert_eq!(
        ok_json(&post_form(
            &request_url(&gw, id, "ask"),
            &[("_q", "1")],
            &alice
        ))["request"],
        "ask"
    );
    assert_eq!(
        ok_json(&delete(&gw.service_url(id), &alice)),
        json!({"_id": id})
    );
}

#[test]
fn the_ors_json_reply_to_a_request_comes_back_as_it_is() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (v, id) = create(&gw, &[]);
    let sid = str_field(&v, "sessionid");
    let echo = ok_json(&post_form(
        &request_url(&gw, &id, "ask"),
        &[("_q", "1")],
        &[],
    ));
    let asks = requests_named(&sim, "ask");
    assert_eq!(asks.len(), 1);
    assert_eq!(
        echo,
        json!({"request": "ask", "sessionid": sid, "params": asks[0]["params"]})
    );
}

#[test]
fn a_redirect_from_the_owner_is_followed() {
    let (sim, _gw) =
        ask_after_the_owner_turns(|sim| json!({"mode": "redirect", "redirect_to": sim.url(1)}));
    let asks = requests_named(&sim, "ask");
    assert_eq!(on(&asks, &sim, 0), 1, "{asks:?}");
    assert_eq!(on(&asks, &sim, 1), 1, "{asks:?}");
    let followed: Vec<&Value> = asks
        .iter()
        .filter(|e| instance_of(e) == sim.addr(1))
        .collect();
    assert_eq!(followed[0]["method"], "POST", "307 keeps the method");
    assert_eq!(followed[0]["params"]["_q"], "1", "307 keeps the body");
}

#[test]
fn a_redirect_loop_is_not_followed_forever() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim))
        .health()
        .opt("_ors_lb_strategy", "linear")
        .start();
    let (_, id) = create(&gw, &[]);
    sim.set(0, &json!({"mode": "redirect", "redirect_to": sim.url(1)}));
    sim.set(1, &json!({"mode": "redirect", "redirect_to": sim.url(0)}));
    let r = post_form(&request_url(&gw, &id, "ask"), &[("_q", "1")], &[]);
    // The owner's 307 is followed once; a second 307 is ORS answering badly.
    let e = assert_error(&r, 502);
    assert_eq!(e["exception"], "OrsServiceException", "{e}");
    let n = requests_named(&sim, "ask").len();
    assert!(
        (2..=6).contains(&n),
        "{n} ask requests for one redirect loop"
    );
}

#[test]
fn an_unreachable_owner_is_replaced_by_another_node() {
    let (sim, _gw) = ask_after_the_owner_turns(|_| json!({"mode": "refuse"}));
    assert_eq!(on(&requests_named(&sim, "ask"), &sim, 1), 1);
}

#[test]
fn update_stays_in_the_gateway() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let (_, id) = create(&gw, &[("color", "red")]);
    let data_id = data_id_of(&sim, &id);
    let r = post_form(
        &request_url(&gw, &id, "update"),
        &[("color", "green"), ("size", "M")],
        &[],
    );
    assert_eq!(ok_json(&r), json!({}));
    assert!(
        requests_named(&sim, "update").is_empty(),
        "update went to ORS"
    );
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &[])),
        json!({"color": "green", "size": "M"})
    );
}

#[test]
fn requests_on_an_ors_service_not_named_request_are_400() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).name("chat-poll").start();
    let v = gw.create_ok("chat-poll", &[]);
    let id = str_field(&v, "_id");
    for name in ["ask", "status", "update"] {
        assert_error(
            &post_form(&request_url(&gw, id, name), &[("_q", "1")], &[]),
            400,
        );
    }
    for name in ["ask", "status", "update"] {
        assert!(requests_named(&sim, name).is_empty(), "{name} reached ORS");
    }
}

#[test]
fn requests_on_an_unknown_id_are_404() {
    let sim = OrsSim::start(1);
    let gw = cfg(nodes(&sim)).start();
    let unknown = uuid::Uuid::new_v4().to_string();
    for name in ["ask", "status", "update"] {
        assert_error(
            &post_form(&request_url(&gw, &unknown, name), &[("_q", "1")], &[]),
            404,
        );
    }
    assert_error(&delete(&gw.service_url(&unknown), &[]), 404);
    assert_eq!(log_entries(&sim).len(), 0, "ORS was asked");
}

// Delete.

#[test]
fn delete_terminates_the_session_and_forgets_the_service() {
    let sim = OrsSim::start(2);
    let gw = cfg(nodes(&sim)).health().start();
    let (v, id) = create(&gw, &[("color", "red")]);
    let sid = str_field(&v, "sessionid").to_string();
    let data_id = data_id_of(&sim, &id);
    let owner = instance_of(&start_of(&sim, &id)).to_string();
    assert_eq!(
        ok_json(&delete(&gw.service_url(&id), &[])),
        json!({"_id": id})
    );
    let term: Vec<Value> = log_entries(&sim)
        .into_iter()
        .filter(|e| path_of(e) == format!("/scxml/session/{sid}/terminate"))
        .collect();
    assert_eq!(term.len(), 1, "terminate requests: {term:?}");
    assert_eq!(term[0]["method"], "POST");
    assert_eq!(
        instance_of(&term[0]),
        owner,
        "terminate not sent to the owner"
    );
    assert!(!sessions(&sim).contains_key(&sid), "session still alive");

    assert_error(
        &post_form(&request_url(&gw, &id, "ask"), &[("_q", "1")], &[]),
        404,
    );
    assert_error(&status(&gw, &id), 404);
    assert_error(&delete(&gw.service_url(&id), &[]), 404);
    assert_error(&get(&gw.storage_url(&data_id), &[]), 404);
    assert!(requests_named(&sim, "ask").is_empty());
}
