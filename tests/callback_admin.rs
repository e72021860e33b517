//! The callback admin endpoints, black-box (`gms-callback.md` §9): queues (window, targets,
//! states, `max`, `filter-keys` with `!value`, unknown keys), watermarks (which states count,
//! unknown services), bulk cancel (scheduled and ORS-held callbacks, failures per id), the
//! cancelled report as CSV (quoting, formulas defused, user data), and their credentials
//! (`gms.callback.admin_open` opens queues and watermarks only). On every store
//! (`GMS_TEST_STORE`).

mod common;

use common::callback::*;
use common::*;
use serde_json::{json, Value};

const OTHER: &str = "other";

/// Two callback services, `CB` with a second lookup key; `callback` keys for `gms.callback`.
fn lab_with(callback: &str) -> CallbackLab {
    let services = format!(
        "{}{}",
        callback_service(CB, "_customer_lookup_keys: \"_customer_number,CB_ID\"\n"),
        callback_service(OTHER, "")
    );
    CallbackLab::start_with(&services, callback)
}

fn lab() -> CallbackLab {
    lab_with("")
}

/// `{base}/genesys/1/admin/callback/{rest}`.
fn admin_url(lab: &CallbackLab, rest: &str) -> String {
    lab.gw.url(&format!("/genesys/1/admin/callback/{rest}"))
}

/// `GET queues{query}` with the admin credentials; the reply's JSON.
fn queues(lab: &CallbackLab, query: &str) -> Value {
    ok_json(&get(&admin_url(lab, &format!("queues{query}")), &[ADMIN]))
}

/// The ids in one service's list of a queues reply, in order.
fn ids_of(reply: &Value, service: &str) -> Vec<String> {
    reply[service]
        .as_array()
        .unwrap_or_else(|| panic!("no list for {service}: {reply}"))
        .iter()
        .map(|r| str_field(r, "_id").to_string())
        .collect()
}

fn watermarks(lab: &CallbackLab, query: &str) -> Value {
    ok_json(&get(
        &admin_url(lab, &format!("watermarks{query}")),
        &[ADMIN],
    ))
}

fn bulk_cancel(lab: &CallbackLab, body: &Value) -> Resp {
    post_json(&admin_url(lab, "cancel"), body, &[ADMIN])
}

fn report(lab: &CallbackLab, body: &Value) -> Resp {
    post_json(&admin_url(lab, "reportcancelled"), body, &[ADMIN])
}

/// A CSV reply's rows (header first), read back by a CSV reader.
fn csv_rows(resp: &Resp) -> Vec<Vec<String>> {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.content_type().starts_with("text/csv"),
        "{}",
        resp.content_type()
    );
    let text = resp.text();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn queues_list_every_service_in_the_window_by_desired_time() {
    let lab = lab();
    let later = lab.schedule(CB, "5591001", 7200);
    let sooner = lab.schedule(CB, "5591002", 3600);
    let far = lab.schedule(CB, "5591003", 3 * 86_400);
    let now = lab.now(CB, "5591004");
    // Another owner's callback: the admin sees it too.
    let owned = ok_json(&post_form(
        &lab.url(&format!("/{CB}")),
        &[
            ("_customer_number", "5591005"),
            ("_desired_time", &iso_in(5400)),
        ],
        &[("gms_user", "alice")],
    ));
    let owned = str_field(&owned, "_id").to_string();

    // Defaults: 15 minutes back to 24 hours ahead, one key per callback service.
    let v = queues(&lab, "");
    assert_eq!(keys(&v), [CB, OTHER], "{v}");
    assert_eq!(
        ids_of(&v, CB),
        [now.clone(), sooner.clone(), owned.clone(), later.clone()]
    );
    assert_eq!(v[OTHER], json!([]));
    let first = &v[CB][0];
    for key in [
        "_id",
        "_service_name",
        "_callback_state",
        "_desired_time",
        "_url",
        "url",
    ] {
        assert!(first[key].is_string(), "{key} in {first}");
    }
    assert_eq!(first["_callback_state"], "QUEUED");

    // A wider window takes the far one; a narrower one leaves out the rest.
    let q = format!("?end_time={}", iso_in(4 * 86_400));
    assert_eq!(ids_of(&queues(&lab, &q), CB).last(), Some(&far));
    let q = format!("?start_time={}&end_time={}", iso_in(3000), iso_in(4000));
    assert_eq!(ids_of(&queues(&lab, &q), CB), [sooner.as_str()]);

    // Targets (repeated or a comma list), states, max.
    let v = queues(&lab, &format!("?target={OTHER}"));
    assert_eq!(keys(&v), [OTHER]);
    let v = queues(&lab, &format!("?target={OTHER}&target={CB}"));
    assert_eq!(keys(&v), [CB, OTHER], "{v}");
    let v = queues(&lab, &format!("?target={CB},{OTHER}&states=QUEUED"));
    assert_eq!(ids_of(&v, CB), [now.as_str()]);
    let v = queues(&lab, "?states=SCHEDULED,COMPLETED&max=2");
    assert_eq!(ids_of(&v, CB), [sooner.as_str(), owned.as_str()]);
}

#[test]
fn queues_filter_on_filter_keys_with_negations() {
    let lab = lab_with("filter-keys: \"_callback_state,_callback_reason,CB_ID\"");
    let a = ok_json(&lab.create(
        CB,
        &[
            ("_customer_number", "5592001"),
            ("CB_ID", "sub-1"),
            ("_desired_time", &iso_in(3600)),
        ],
    ));
    let a = str_field(&a, "_id").to_string();
    let b = lab.schedule(CB, "5592002", 3700);
    let c = lab.schedule(OTHER, "5592003", 3800);
    ok_json(&lab.cancel(CB, &b, ""));

    let v = queues(&lab, "?_callback_state=COMPLETED");
    assert_eq!(ids_of(&v, CB), [b.as_str()]);
    assert_eq!(v[OTHER], json!([]));
    let v = queues(&lab, "?_callback_state=!COMPLETED");
    assert_eq!(ids_of(&v, CB), [a.as_str()]);
    assert_eq!(ids_of(&v, OTHER), [c.as_str()]);
    let v = queues(&lab, "?_callback_reason=CANCELLED");
    assert_eq!(ids_of(&v, CB), [b.as_str()]);
    let v = queues(&lab, "?_callback_reason=!CANCELLED");
    assert_eq!(ids_of(&v, CB), [a.as_str()]);
    // A lookup key of one service (indexed), a plain property of the other.
    let v = queues(&lab, "?CB_ID=sub-1");
    assert_eq!(ids_of(&v, CB), [a.as_str()]);
    assert_eq!(v[OTHER], json!([]));
    let v = queues(&lab, "?CB_ID=!sub-1");
    assert_eq!(ids_of(&v, CB), [b.as_str()]);
    assert_eq!(ids_of(&v, OTHER), [c.as_str()]);
    // _customer_number is not a filter key here.
    assert_callback_error(
        &get(
            &admin_url(&lab, "queues?_customer_number=5592001"),
            &[ADMIN],
        ),
        400,
        "CallbackExceptionInvalidParameter",
    );
}

#[test]
fn bad_queues_and_watermarks_requests_are_400() {
    let lab = lab();
    for query in [
        "?nonsense=1",
        "?max=0",
        "?max=10001",
        "?max=many",
        "?states=QUEUED,WAITING",
        "?start_time=yesterday",
        "?end_time=2026-03-02T10:00:00",
        "?target=nope",
        "?start_time=2026-03-02T10:00:00Z&end_time=2026-03-01T10:00:00Z",
    ] {
        let r = get(&admin_url(&lab, &format!("queues{query}")), &[ADMIN]);
        let e = assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
        assert!(!str_field(&e, "message").is_empty(), "{query}: {e}");
    }
    assert_eq!(
        queues(&lab, "?max=10000&states=queued")[CB],
        json!([]),
        "the cap, and states in any case"
    );
    for query in [
        "?service_name=nope",
        "?service_name=callback-for-mobile&x=1",
    ] {
        let r = get(&admin_url(&lab, &format!("watermarks{query}")), &[ADMIN]);
        assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    }
    // Wrong methods.
    let r = post_json(&admin_url(&lab, "queues"), &json!({}), &[ADMIN]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = get(&admin_url(&lab, "cancel"), &[ADMIN]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[test]
fn watermarks_count_callbacks_in_ors_hands() {
    let lab = lab();
    let idle = watermarks(&lab, "");
    assert_eq!(idle, json!({"services": {CB: 0, OTHER: 0}, "total": 0}));
    let queued = lab.now(CB, "5593001");
    let routing = lab.now(CB, "5593002");
    let processing = lab.now(CB, "5593003");
    let paused = lab.now(OTHER, "5593004");
    let done = lab.now(OTHER, "5593005");
    lab.schedule(CB, "5593006", 3600);
    ok_json(&lab.report(CB, &routing, "ROUTING", None));
    ok_json(&lab.report(CB, &processing, "ROUTING", None));
    ok_json(&lab.report(CB, &processing, "PROCESSING", None));
    ok_json(&lab.report(OTHER, &paused, "PAUSED", None));
    ok_json(&lab.report(OTHER, &done, "COMPLETED", Some("ANSWERED")));
    let _ = queued;
    assert_eq!(
        watermarks(&lab, ""),
        json!({"services": {CB: 3, OTHER: 1}, "total": 4})
    );
    assert_eq!(
        watermarks(&lab, &format!("?service_name={OTHER}")),
        json!({"services": {OTHER: 1}, "total": 1})
    );
    assert_eq!(
        watermarks(&lab, &format!("?service_name={OTHER}&service_name={CB}")),
        json!({"services": {CB: 3, OTHER: 1}, "total": 4})
    );
}

#[test]
fn bulk_cancel_cancels_each_id_and_says_why_not() {
    let lab = lab();
    let scheduled = lab.schedule(CB, "5594001", 3600);
    let other = lab.schedule(OTHER, "5594002", 3600);
    let queued = lab.now(CB, "5594003");
    let done = lab.schedule(CB, "5594004", 3600);
    ok_json(&lab.cancel(CB, &done, ""));
    let unknown = "0f6e2c1a-8a4b-4c53-9d9e-2a1c7b5e4f10";
    let session = str_field(&lab.record(&queued), "_ors_session_id").to_string();
    assert!(!session.is_empty());

    let r = bulk_cancel(
        &lab,
        &json!({"ids": [scheduled, other, queued, done, unknown, "not-an-id", scheduled]}),
    );
    let v = ok_json(&r);
    assert_eq!(v["cancelled"], json!([scheduled, other, queued]), "{v}");
    let failed = v["failed"].as_object().unwrap();
    assert_eq!(failed.len(), 3, "{v}");
    assert_eq!(
        failed[&done],
        format!("Callback {done} is already COMPLETED")
    );
    assert_eq!(failed[unknown], format!("Callback {unknown} is not found"));
    assert_eq!(failed["not-an-id"], "Callback not-an-id is not found");
    for id in [&scheduled, &other, &queued] {
        let r = lab.record(id);
        assert_eq!(r["_callback_state"], "COMPLETED", "{r}");
        assert_eq!(r["_callback_reason"], "CANCELLED_BY_ADMIN", "{r}");
    }
    // The one in ORS's hands was cancelled on ORS first.
    let calls = sim_requests(&lab.sim, &format!("/scxml/session/{session}/"));
    assert!(
        calls
            .iter()
            .any(|c| c["path"].as_str().unwrap().ends_with("/cancel")),
        "{calls:?}"
    );
    // A reason of the admin's own.
    let id = lab.schedule(CB, "5594005", 3600);
    let v = ok_json(&bulk_cancel(
        &lab,
        &json!({"reason": "CANCELLED_PURGE", "ids": [id]}),
    ));
    assert_eq!(v, json!({"cancelled": [id], "failed": {}}));
    assert_eq!(lab.record(&id)["_callback_reason"], "CANCELLED_PURGE");
    let v = ok_json(&bulk_cancel(&lab, &json!({"ids": []})));
    assert_eq!(v, json!({"cancelled": [], "failed": {}}));

    // ORS unreachable: that callback fails with ORS's error (no internal detail) and stays as
    // it was; the others are cancelled.
    let held = lab.now(CB, "5594006");
    let free = lab.schedule(CB, "5594007", 3600);
    lab.sim.set(0, &json!({"mode": "refuse"}));
    let v = ok_json(&bulk_cancel(&lab, &json!({"ids": [held, free]})));
    lab.sim.set(0, &json!({"mode": "ok"}));
    assert_eq!(v["cancelled"], json!([free]), "{v}");
    let why = str_field(&v["failed"], &held);
    assert!(why.starts_with("ORS request failed"), "{v}");
    assert!(!why.contains("127.0.0.1"), "no address in a reply: {v}");
    assert_eq!(lab.state(&held), "QUEUED");
}

#[test]
fn bad_bulk_cancels_and_reports_are_400() {
    let lab = lab();
    let url = admin_url(&lab, "cancel");
    for body in [
        json!({}),
        json!({"ids": "x"}),
        json!({"ids": [1]}),
        json!({"ids": [], "reason": ""}),
        json!({"ids": [], "extra": 1}),
        json!(["x"]),
    ] {
        let r = post_json(&url, &body, &[ADMIN]);
        assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    }
    let r = post_raw(&url, "application/json", b"{not json", &[ADMIN]);
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    let many: Vec<String> = (0..10_001).map(|i| format!("{i:036}")).collect();
    let r = post_json(&url, &json!({ "ids": many }), &[ADMIN]);
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    let url = admin_url(&lab, "reportcancelled");
    for body in [
        json!({"callback_reason": ""}),
        json!({"exported_properties": "x"}),
        json!({"exported_properties": [""]}),
        json!({"other": 1}),
    ] {
        let r = post_json(&url, &body, &[ADMIN]);
        assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    }
}

#[test]
fn the_cancelled_report_is_csv_that_spreadsheets_read_as_text() {
    let lab = lab();
    let hostile = "Smith, \"Bob\"\nJr";
    let formula = "=HYPERLINK(\"http://evil.example\",\"x\")";
    let a = ok_json(&lab.create(
        CB,
        &[
            ("_customer_number", "5595001"),
            ("_desired_time", &iso_in(3600)),
            ("first_name", hostile),
            ("CB_ID", formula),
        ],
    ));
    let a = str_field(&a, "_id").to_string();
    let b = lab.schedule(OTHER, "5595002", 7200);
    let mine = lab.schedule(CB, "5595003", 5400);
    lab.schedule(CB, "5595004", 3600);
    ok_json(&bulk_cancel(&lab, &json!({"ids": [a, b]})));
    ok_json(&lab.cancel(CB, &mine, ""));

    let r = report(
        &lab,
        &json!({"callback_reason": "CANCELLED_BY_ADMIN",
                "exported_properties": ["_customer_number", "first_name", "CB_ID", "missing"]}),
    );
    let rows = csv_rows(&r);
    assert_eq!(
        rows[0],
        [
            "_id",
            "_service_name",
            "_desired_time",
            "_callback_reason",
            "_customer_number",
            "first_name",
            "CB_ID",
            "missing"
        ]
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1][..2], [a.clone(), CB.to_string()]);
    assert_eq!(rows[1][3], "CANCELLED_BY_ADMIN");
    assert_eq!(rows[1][4], "5595001");
    assert_eq!(
        rows[1][5], hostile,
        "commas, quotes and newlines stay in their cell"
    );
    assert_eq!(rows[1][6], format!("'{formula}"), "a formula shows as text");
    assert_eq!(rows[1][7], "");
    assert_eq!(rows[2][..2], [b.clone(), OTHER.to_string()]);
    parse_iso(&rows[1][2]);
    // Every field is quoted; lines end with CRLF.
    assert!(
        r.text().starts_with("\"_id\",\"_service_name\""),
        "{}",
        r.text()
    );
    assert!(r.text().ends_with("\r\n"));
    // The default reason is the admin's; another reason, another report.
    assert_eq!(csv_rows(&report(&lab, &json!({}))).len(), 3);
    let rows = csv_rows(&report(&lab, &json!({"callback_reason": "CANCELLED"})));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].len(), 4);
    assert_eq!(rows[1][0], mine);
    let rows = csv_rows(&report(&lab, &json!({"callback_reason": "NO_SUCH"})));
    assert_eq!(rows.len(), 1, "the header alone");
}

#[test]
fn admin_credentials_guard_every_endpoint_unless_opened() {
    let lab = lab();
    let id = lab.schedule(CB, "5596001", 3600);
    let wrong = ("Authorization", "Basic YWRtaW46d3Jvbmc=");
    for headers in [&[][..], &[wrong][..]] {
        for path in ["queues", "watermarks"] {
            let r = get(&admin_url(&lab, path), headers);
            assert_eq!(r.status, 401, "{path}: {}", r.text());
            assert!(r.header("www-authenticate").is_some());
        }
        let r = post_json(&admin_url(&lab, "cancel"), &json!({"ids": [id]}), headers);
        assert_eq!(r.status, 401);
        let r = post_json(&admin_url(&lab, "reportcancelled"), &json!({}), headers);
        assert_eq!(r.status, 401);
    }
    assert_eq!(
        lab.state(&id),
        "SCHEDULED",
        "nothing cancelled without credentials"
    );

    // admin_open: queues and watermarks for anyone; the writes still need credentials.
    let open = lab_with("admin_open: true");
    let id = open.schedule(CB, "5596002", 3600);
    let v = ok_json(&get(&admin_url(&open, "queues"), &[]));
    assert_eq!(ids_of(&v, CB), [id.as_str()]);
    let v = ok_json(&get(&admin_url(&open, "watermarks"), &[]));
    assert_eq!(v["total"], 0);
    let r = post_json(&admin_url(&open, "cancel"), &json!({"ids": [id]}), &[]);
    assert_eq!(r.status, 401);
    let r = post_json(&admin_url(&open, "reportcancelled"), &json!({}), &[]);
    assert_eq!(r.status, 401);
    assert_eq!(open.state(&id), "SCHEDULED");
}
