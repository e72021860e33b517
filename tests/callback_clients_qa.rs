//! GMS 8.5's QA suite's Callback Services API calls, replayed black-box as it sends them (issue
//! 18): "AZ", `Azhilin/Examples` at 54ff246 (RestAssured, json-simple, no `gms_user`),
//! `src/main/java/gms/helper/CallbackServicesAPI.java` and the tests that use it, against a
//! gateway with callback services on a callback-mode `ors-sim`, asserting what the suite reads
//! back. Each test names the files and lines its shapes come from. (The mobile clients are
//! `callback_clients.rs`'s.) Its admin calls (`queryCallbackByQueue`, `queryCallbackByStates`,
//! `queryCounterWatermarks`, `cancelCallbacksByReason`, `exportCancelled`) are not replayed:
//! the admin endpoints (contract §9) are not built on this branch.

mod common;

use common::callback::*;
use common::callback_clients::*;
use common::*;
use serde_json::json;

/// AZ's `CallbackAPITests` services: `cb_new` (33) and `GMS-5183` (163) with
/// `_customer_lookup_keys: _customer_number,CB_SUBSCRIPTION_ID` (`tuneCallbackService2`, 325).
const AZ_CB: &str = "cb_new";
const AZ_5183: &str = "GMS-5183";

fn lab() -> CallbackLab {
    let services = [
        callback_service(AZ_CB, ""),
        callback_service(
            AZ_5183,
            "_customer_lookup_keys: \"_customer_number,CB_SUBSCRIPTION_ID\"\n",
        ),
    ];
    CallbackLab::start(&services.concat())
}

/// AZ `CallbackServicesAPI.java`: `startImmediateCallback(name, custNumber)` 34-41 (JSON
/// `{"_customer_number"}`, `ContentType.JSON`), read by `path("_id")` (`CallbackAPITests.java`
/// 110); `startImmediateCallback(name, params)` 43-50 (a body of the map alone);
/// `startImmediateCallback(name, custNumber, headers)` 52-64 with preemptive basic credentials and
/// `ContactCenterId: xxx` (`CallbackAPITests.test1_01`, 101-105; GMS in non-shared mode ignores the
/// header, GMS-4672); `queryCallbackByID` 130-135 (GET `{root}/service/callback?_id=`,
/// `ContentType.URLENC`, no body), read as a list (`CallbackServiceHelper.getCallbackDetailByKey`
/// 154-159, `parseArrayInResponse` 149-152) whose `_callback_state` is polled; `checkQueuePosition`
/// 147-152 (GET with the form content type) answered 200 (`CallbackServiceHelper.getCallbackEWT`
/// 161-171; its `ewt` key is the strategy's); `queryCallbackByState(cust, "!COMPLETED")` 137-145
/// read by `CallbackServiceHelper.cancelUnfinishedCallbacks` 26-45 (`_id`, `_service_name` of each
/// entry), `cancelCallback` 154-159 (DELETE with `ContentType.JSON` and no body) expected 200
/// (`CallbackAPITests.java` 120); then `countCompletedCallbacksByReason` 133-147:
/// `queryCallbackByState(cust, "COMPLETED")`, each `_callback_reason`.
#[test]
fn qa_immediate_callbacks_queried_and_cancelled() {
    let lab = lab();
    // One customer number a callback: the in-queue check (on in AZ's lab too,
    // `SectionOptions.getGMSCallbackSectionOptions` 15) refuses a second one in the queue.
    let custs = ["5115", "5116", "5117"];
    let create = lab.url(&format!("/{AZ_CB}"));
    let mut ids = Vec::new();
    let bodies = [
        json_body(&[("_customer_number", custs[0])]),
        json_body(&[("_customer_number", custs[1]), ("first_name", "QA")]),
        json_body(&[("_customer_number", custs[2])]),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let headers: &[(&str, &str)] = if i == 2 {
            &[
                ("Authorization", "Basic Y2J1c2VyOmNicGFzcw=="),
                ("ContactCenterId", "xxx"),
            ]
        } else {
            &[]
        };
        let v = ok_json(&send("POST", &create, RESTASSURED_JSON, body, headers));
        ids.push(str_field(&v, "_id").to_string());
    }

    let by_id = |id: &str| {
        let r = request(
            "GET",
            &lab.url(&format!("?{}", form_encode(&[("_id", id)]))),
            &[("Content-Type", RESTASSURED_FORM)],
            None,
        );
        let v = ok_json(&r);
        let list = v
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("not a list: {v}"));
        assert_eq!(list.len(), 1, "{v}");
        list[0].clone()
    };
    for id in &ids {
        assert_eq!(by_id(id)["_callback_state"], "QUEUED");
    }
    let r = request(
        "GET",
        &lab.gw.url(&format!(
            "/genesys/1/service/{}/check-queue-position",
            ids[0]
        )),
        &[("Content-Type", RESTASSURED_FORM)],
        None,
    );
    assert!(ok_json(&r).is_object());

    let by_state = |cust: &str, state: &str| {
        let q = form_encode(&[("_customer_number", cust), ("_callback_state", state)]);
        let r = request(
            "GET",
            &lab.url(&format!("?{q}")),
            &[("Content-Type", RESTASSURED_FORM)],
            None,
        );
        let v = ok_json(&r);
        v.as_array()
            .cloned()
            .unwrap_or_else(|| panic!("not a list: {v}"))
    };
    for (cust, id) in custs.iter().zip(&ids) {
        let open = by_state(cust, "!COMPLETED");
        assert_eq!(open.len(), 1, "{open:?}");
        let entry = &open[0];
        assert_eq!(entry["_id"], id.as_str(), "{entry}");
        let url = lab.url(&format!(
            "/{}/{}",
            str_field(entry, "_service_name"),
            str_field(entry, "_id")
        ));
        let r = request("DELETE", &url, &[("Content-Type", RESTASSURED_JSON)], None);
        assert_eq!(r.status, 200, "{}", r.text());
        let done = by_state(cust, "COMPLETED");
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0]["_callback_reason"], "CANCELLED", "{done:?}");
        assert!(by_state(cust, "!COMPLETED").is_empty());
    }
}

/// AZ `CallbackAPITests.test1_03` (GMS-5183, 160-263): `startScheduledCallback(name, cust,
/// map)` (`CallbackServicesAPI.java` 103-110) with `_desired_time` from
/// `TimeOperations.getUTCTimeInFuture(90000)` (35-43: `yyyy-MM-dd'T'HH:mm:ss` + `.000Z`),
/// `_service_name`, `GCS_TransferringNotepad`, `CB_SUBSCRIPTION_ID` and `_customer_id`; the
/// reply's `_id`; `queryCallbackByID` read with `from(body).getString("CB_SUBSCRIPTION_ID")`
/// (a lookup key of the service, `tuneCallbackService2` 325); `updateCallback` 120-127 (PUT
/// JSON with the whole create body again) to `Test`, then to `""`: 200 each, and after the
/// empty value the record no longer contains the key. Also `startScheduledCallback(name,
/// cust, seconds)` 66-75 and `(name, cust, desiredTime)` 92-101, each answered 200 with `_id`.
#[test]
fn qa_scheduled_callback_updated_with_an_empty_value() {
    let lab = lab();
    let cust = "5115";
    let at = lab_time(90000);
    let body = |sub: &str| {
        json_body(&[
            ("_customer_number", cust),
            ("_desired_time", &at),
            ("_service_name", AZ_5183),
            ("GCS_TransferringNotepad", "WLAN Probleme"),
            ("CB_SUBSCRIPTION_ID", sub),
            ("_customer_id", "111222333"),
        ])
    };
    let v = ok_json(&send(
        "POST",
        &lab.url(&format!("/{AZ_5183}")),
        RESTASSURED_JSON,
        &body("SUB-123456"),
        &[],
    ));
    let id = str_field(&v, "_id").to_string();
    let by_id = || {
        let r = request(
            "GET",
            &lab.url(&format!("?_id={id}")),
            &[("Content-Type", RESTASSURED_FORM)],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r
    };
    assert_eq!(by_id().json()[0]["CB_SUBSCRIPTION_ID"], "SUB-123456");
    for (sub, expect) in [("Test", Some("Test")), ("", None)] {
        let r = send(
            "PUT",
            &lab.url(&format!("/{AZ_5183}/{id}")),
            RESTASSURED_JSON,
            &body(sub),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let after = by_id();
        match expect {
            Some(v) => assert_eq!(after.json()[0]["CB_SUBSCRIPTION_ID"], v),
            None => assert!(
                !after.text().contains("CB_SUBSCRIPTION_ID"),
                "{}",
                after.text()
            ),
        }
    }
    assert_eq!(lab.state(&id), "SCHEDULED");

    for at in [lab_time(3600), lab_time(7200)] {
        let v = ok_json(&send(
            "POST",
            &lab.url(&format!("/{AZ_CB}")),
            RESTASSURED_JSON,
            &json_body(&[("_customer_number", "5116"), ("_desired_time", &at)]),
            &[],
        ));
        assert_eq!(lab.state(str_field(&v, "_id")), "SCHEDULED");
    }
}

/// What a create with `_redirect` answered in AZ's `SupportURLRewritingTests`.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// The ORS service `hello`'s create (AZ reads its strategy's `msg`).
    Hello,
    /// request-interaction's: `_access_number`, `_expiration_time`, `_id`.
    Access,
    /// The callback's own: "You will receive the call shortly".
    Dialog,
}

/// AZ `src/test/java/gms/callback/SupportURLRewritingTests.java` test_01 to test_18 (76-294):
/// an immediate callback service with or without `_overwritable_options: _redirect` and a
/// configured `_redirect` of `hello` (an ORS service), `""` or none; created by
/// `CallbackServicesAPI.startImmediateCallback` (JSON `_customer_number` only),
/// `startImmCallbackJSON` (319-326, JSON with `_redirect`) or `startImmCallbackURLENC`
/// (328-335, a RestAssured form, ISO-8859-1 declared) with `_redirect` absent, `""` or
/// `request-interaction`; each 200 with the reply its test asserts. A request's `_redirect`
/// counts only when overwritable, and `""` means none. The fourteen cases that do not end at
/// request-interaction.
#[test]
fn qa_redirect_matrix() {
    use Answer::*;
    redirect_cases(&[
        (1, "ow-hello", RESTASSURED_JSON, None, Hello),
        (3, "ow-hello", RESTASSURED_JSON, Some(""), Dialog),
        (4, "hello-only", RESTASSURED_JSON, Some(""), Hello),
        (5, "hello-only", RESTASSURED_JSON, None, Hello),
        (6, "ow", RESTASSURED_JSON, None, Dialog),
        (
            7,
            "ow-none-hello",
            RESTASSURED_JSON,
            Some("request-interaction"),
            Hello,
        ),
        (8, "ow-empty", RESTASSURED_JSON, None, Dialog),
        (10, "ow-hello", RESTASSURED_FORM, None, Hello),
        (11, "ow-hello", RESTASSURED_FORM, Some(""), Dialog),
        (13, "ow", RESTASSURED_FORM, Some(""), Dialog),
        (15, "ow-none-hello", RESTASSURED_FORM, None, Hello),
        (16, "ow-empty", RESTASSURED_FORM, Some(""), Dialog),
        (
            17,
            "hello-only",
            RESTASSURED_FORM,
            Some("request-interaction"),
            Hello,
        ),
        (18, "ow-none-hello", RESTASSURED_FORM, Some(""), Hello),
    ]);
}

/// [`qa_redirect_matrix`]'s cases that end at request-interaction (test_02, 09, 12, 14): the
/// body has `_customer_number` and `_redirect` only, no `_phone_number`, and GMS answers 200.
/// request-interaction takes no `_phone_number` and answers `_expiration_time` (issue 17).
#[test]
fn qa_redirect_to_request_interaction() {
    use Answer::*;
    redirect_cases(&[
        (
            2,
            "ow-hello",
            RESTASSURED_JSON,
            Some("request-interaction"),
            Access,
        ),
        (
            9,
            "ow",
            RESTASSURED_JSON,
            Some("request-interaction"),
            Access,
        ),
        (
            12,
            "ow-hello",
            RESTASSURED_FORM,
            Some("request-interaction"),
            Access,
        ),
        (
            14,
            "ow-empty",
            RESTASSURED_FORM,
            Some("request-interaction"),
            Access,
        ),
    ]);
}

/// One case of `SupportURLRewritingTests`: (test, service, content type, the request's
/// `_redirect`, what comes back).
type RedirectCase<'a> = (u8, &'a str, &'a str, Option<&'a str>, Answer);

/// Runs `cases` on the services of `SupportURLRewritingTests` (request-interaction with the QA
/// suite's options, `helper/ServiceOptions.java` 557-565).
fn redirect_cases(cases: &[RedirectCase<'_>]) {
    let services = [
        callback_service("ow-hello", "_overwritable_options: _redirect\n_redirect: hello\n"),
        callback_service("hello-only", "_redirect: hello\n"),
        callback_service("ow-none-hello", "_overwritable_options: \"\"\n_redirect: hello\n"),
        callback_service("ow", "_overwritable_options: _redirect\n"),
        callback_service("ow-empty", "_overwritable_options: _redirect\n_redirect: \"\"\n"),
        "request-interaction: {_type: builtin, _service: request-interaction, _provide_code: \"false\", _resource_group: DNIS, _ttl: \"30\"}\n".to_string(),
        "hello: {_type: ors, _service: \"http://scxml.example.com/hello.scxml\", _ors: \"{ORS}\"}\n".to_string(),
    ];
    let lab = CallbackLab::start(&services.concat());
    let mut hellos = 0;
    for &(test, service, ct, redirect, answer) in cases {
        let number = format!("51150{test:02}");
        let mut fields = vec![("_customer_number", number.as_str())];
        if let Some(r) = redirect {
            fields.push(("_redirect", r));
        }
        let body = if ct == RESTASSURED_FORM {
            form_encode(&fields).into_bytes()
        } else {
            json_body(&fields)
        };
        let r = send("POST", &lab.url(&format!("/{service}")), ct, &body, &[]);
        let v = ok_json(&r);
        let text = r.text();
        let record = ok_json(&lab.query(&format!("?_customer_number={number}")));
        match answer {
            Answer::Hello => {
                hellos += 1;
                assert!(v.get("_action").is_none(), "test_{test:02}: {v}");
                assert_eq!(record, json!([]), "test_{test:02}");
            }
            Answer::Access => {
                for k in ["_access_number", "_expiration_time", "_id"] {
                    assert!(text.contains(k), "test_{test:02}: {k} in {text}");
                }
                assert_eq!(record, json!([]), "test_{test:02}");
                // The lab's DNIS has two numbers and the service gives no codes: the QA lab
                // ran each test on its own; give the number back for the next case.
                let id = str_field(&v, "_id");
                ok_json(&delete(&lab.gw.service_url(id), &[]));
            }
            Answer::Dialog => {
                assert!(
                    str_field(&v, "_text").contains("You will receive the call shortly"),
                    "test_{test:02}: {v}"
                );
                assert_eq!(record[0]["_service_name"], service, "test_{test:02}");
            }
        }
    }
    let hello_starts = sim_requests(&lab.sim, "/scxml/session/start")
        .into_iter()
        .filter(|e| e["params"]["src"] == "http://scxml.example.com/hello.scxml")
        .count();
    assert_eq!(hello_starts, hellos, "one hello session per Hello case");
}

/// `TimeOperations.getUTCTimeInFuture(secs)`: whole seconds, then `.000Z`.
fn lab_time(secs: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    format!("{}.000Z", t.strftime("%Y-%m-%dT%H:%M:%S"))
}
