//! The public GMS mobile clients' Callback Services API calls, replayed black-box as they send
//! them (issue 18), against a gateway with callback services on a callback-mode `ors-sim`,
//! asserting what each client reads back (field names, JSON types, status). The clients (GMS
//! 8.5's QA suite, "AZ", is `callback_clients_qa.rs`'s):
//! - "SA": the Android sample `StanleyAu/gms-callback-sample-legacy` at HEAD 6c40941 (Retrofit
//!   1.x with `GsonConverter`, OkHttp; every call with the `gms_user` of
//!   `data/retrofit/GmsRequestInterceptor.java` 37, under the endpoint
//!   `http://host:port/genesys/1` of `data/retrofit/GmsEndpoint.java` 36). Paths are under
//!   `app/src/main/java/com/genesys/gms/mobile/callback/demo/legacy/`.
//! - "GL": Genesys' Swift GMSLibrary 8.5.1.003 as copied in `akram-mohammad/genesys-chat` at
//!   527ba81 (Alamofire 4, `JSONDecoder`); paths under `demo/chat-demo/GMSLibrary/Classes/`,
//!   its own tests in `Example/Tests/Tests.swift`.
//!
//! Each test names the files and lines its shapes come from. SA's admin call
//! (`CallbackApi.queryCallbackAdmin`, `/admin/callback/queues`) is not replayed: the admin
//! endpoints (contract §9) are not built on this branch.

mod common;

use common::callback::*;
use common::callback_clients::*;
use common::*;
use serde_json::{json, Value};

/// SA's callback service, with 24x7 office hours and one callback per 15-minute bucket (so a
/// reschedule can be refused).
const SA_CB: &str = "samples-callback";
/// The same service whose strategy answers a DisplayMenu (`_sim_dialog`, a service option
/// the gateway passes to ORS).
const SA_MENU: &str = "samples-callback-menu";
/// GL's `Tests.swift` service (46).
const GL_CB: &str = "gbank-callback-gms";

fn lab() -> CallbackLab {
    let services = [
        callback_service(
            SA_CB,
            "_business_hours_service: business-hours\n_request_time_bucket: 15\n_max_request_by_time_bucket: 1\n",
        ),
        callback_service(SA_MENU, "_sim_dialog: DisplayMenu\n"),
        callback_service(GL_CB, "_business_hours_service: business-hours\n"),
        OFFICE_24X7.to_string(),
    ];
    CallbackLab::start(&services.concat())
}

/// SA's `CallbackDialog` (`data/api/pojo/CallbackDialog.java`): `_action` one of the four
/// `@SerializedName`s (any other is null, and `GenesysSampleController.handleDialog` 127
/// switches on it), here `action`; a ConfirmationDialog's `_text` (180-183); `_id` the session
/// the app keeps (126), returned.
fn sample_dialog(v: &Value, action: &str) -> String {
    assert!(
        [
            "DialNumber",
            "DisplayMenu",
            "StartChat",
            "ConfirmationDialog"
        ]
        .contains(&action),
        "{action}"
    );
    assert_eq!(v["_action"], action, "{v}");
    if action == "ConfirmationDialog" {
        assert!(v["_text"].is_string(), "{v}");
    }
    let id = str_field(v, "_id");
    assert!(is_uuid_v4(id), "{v}");
    id.to_string()
}

/// SA `ui/GenesysSampleController.java` `connect` 57-123 for `scenario`, through
/// `data/api/CallbackApiManager.java` 62-95 and `CallbackApi.startCallback` 18-25: the
/// user's fields and the scenario's options as one Gson `Map<String, String>` (the event's
/// null `_callback_state`, `_urs_virtual_queue` and `_request_queue_time_stat` dropped),
/// `POST {endpoint}/service/callback/{name}`.
fn sample_start(lab: &CallbackLab, service: &str, number: &str, desired: Option<&str>) -> Resp {
    let mut pairs = vec![
        ("first_name", "Ann"),
        ("last_name", "Smith"),
        ("_provide_code", "false"),
        ("_customer_number", number),
        ("_call_direction", "USERTERMINATED"),
        ("_wait_for_agent", "false"),
        ("_wait_for_user_confirm", "false"),
        ("_media_type", "voice"),
    ];
    if let Some(at) = desired {
        pairs[5].1 = "true";
        pairs[6].1 = "true";
        pairs.push(("_desired_time", at));
    }
    send(
        "POST",
        &lab.url(&format!("/{service}")),
        RETROFIT_JSON,
        &gson_body(&pairs),
        &[SAMPLE_USER],
    )
}

// -------------------------------------------------------------------------------------------
// The Android sample (StanleyAu/gms-callback-sample-legacy @ 6c40941)
// -------------------------------------------------------------------------------------------

/// SA scenario VOICE-NOW-USERTERM (`GenesysSampleController.java` 85-89): the immediate create's
/// reply is ORS's dialog, read as `CallbackDialog` (`_id`, `_action`, and for a ConfirmationDialog
/// `_text`, 180-183); then `checkQueuePosition` (194-196) through `CallbackApiManager.java`
/// 285-342: an OkHttp GET of `{endpoint}/service/{id}/check-queue-position` with `gms_user` and no
/// body, read as `CallbackQueuePosition` (`_position`, `_eta`, `_total_waiting` as Gson `String`s,
/// `_agent_ready_threshold_passed` a boolean when present).
#[test]
fn sample_immediate_create_then_queue_position() {
    let lab = lab();
    let v = ok_json(&sample_start(&lab, SA_CB, "5551234567", None));
    let id = sample_dialog(&v, "ConfirmationDialog");

    let r = get(
        &lab.gw
            .url(&format!("/genesys/1/service/{id}/check-queue-position")),
        &[SAMPLE_USER],
    );
    let q = ok_json(&r);
    for k in ["_position", "_eta", "_total_waiting"] {
        assert!(
            q[k].is_string() || q[k].is_number(),
            "{k} is not what Gson reads into a String: {q}"
        );
    }
    let flag = &q["_agent_ready_threshold_passed"];
    assert!(
        flag.is_null() || flag.is_boolean() || flag.as_str().is_some(),
        "{q}"
    );
}

/// SA `GenesysSampleController.handleDialog` 134-162 (DisplayMenu: `_label`,
/// `_content[0]._group_name`, each `_group_content[i]._label` and `_user_action_url`), then the
/// chosen item as `CallbackDialogEvent(url, false)`: `CallbackApiManager.java` 238-283, an
/// OkHttp GET of that absolute URL with `gms_user`, its 2xx body read as a `CallbackDialog`.
/// And the push path: `handleGcmMessage` 189-192 posts `CallbackDialogEvent(syncUri, true)`,
/// a GET of `{endpoint}/service/{syncUri}` with `syncUri` = `{_id}/{_action}`.
#[test]
fn sample_menu_follow_up_and_push_fetch() {
    let lab = lab();
    let v = ok_json(&sample_start(&lab, SA_MENU, "5551234568", None));
    let id = sample_dialog(&v, "DisplayMenu");
    assert!(v["_label"].is_string(), "{v}");
    let group = &v["_content"][0];
    assert!(group["_group_name"].is_string(), "{v}");
    let items = group["_group_content"]
        .as_array()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| panic!("no menu items: {v}"));
    for item in items {
        assert!(item["_label"].is_string(), "{v}");
    }
    let url = str_field(&items[0], "_user_action_url");
    assert!(url.starts_with("http://"), "not absolute: {url}");
    let followed = ok_json(&get(url, &[SAMPLE_USER]));
    assert!(followed.is_object(), "{followed}");

    let pushed = ok_json(&get(
        &lab.gw
            .url(&format!("/genesys/1/service/{id}/user-confirmed")),
        &[SAMPLE_USER],
    ));
    assert!(pushed.is_object(), "{pushed}");
    let seen: Vec<Value> = sim_requests(&lab.sim, "/scxml/session/")
        .into_iter()
        .filter(|e| {
            let p = e["path"].as_str().unwrap_or_default();
            p.ends_with("/request/menu-agent") || p.ends_with("/request/user-confirmed")
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
}

/// SA's scheduled flow. `requestTimeSlots` (`GenesysSampleController.java` 222-227) asks
/// `CallbackApi.queryAvailability` (56-69, `CallbackApiManager.java` 179-208) for ±5 h around the
/// wanted time: `start` and `end` are Joda `DateTime`s in UTC, which Retrofit writes with
/// `toString()` (`2026-03-02T09:30:00.000Z`) and `URLEncoder` (`:` as `%3A`); null `number-of-days`
/// and `max-time-slots` are left out. `updateTimeSlots` (229-300) keeps slots not past with a count
/// above 0, and offers them as `serializeUTCTime` strings. Scenario VOICE-SCHEDULED-USERTERM
/// (95-100) creates with the chosen `_desired_time`; the reply is a `CallbackDialog` whose
/// `_action` must be one of the four (`ConfirmationDialog`: `_text`, 180-183). Then the calls of
/// `CallbackApi` the app makes through `CallbackApiManager`: `queryCallback` (47-54, 151-177):
/// `?operand=AND&_customer_number=` read as `List<CallbackRequest>` (`_id`, `desiredTime`, `url`,
/// `pojo/CallbackRequest.java`); `updateCallback` (36-45, 120-149): PUT JSON `_new_desired_time`
/// (`serializeUTCTime`) and properties, the event's null `_callback_state` dropped; a refusal read
/// as `CallbackRescheduleException` (`message`, `exception`, `availability` as `Map<DateTime,
/// Integer>`); `cancelCallback` (27-34, 97-118): DELETE, no body.
#[test]
fn sample_scheduled_flow() {
    let lab = lab();
    let wanted = parse_iso(&iso_in(3 * 3600));
    let five_h = jiff::SignedDuration::from_hours(5);
    let q = form_encode(&[
        ("start", &iso(wanted - five_h)),
        ("end", &iso(wanted + five_h)),
    ]);
    assert!(q.contains("%3A"), "{q}");
    let avail = ok_json(&get(
        &lab.url(&format!("/{SA_CB}/availability?{q}")),
        &[SAMPLE_USER],
    ));
    let soon = iso_in(3600);
    let offered: Vec<String> = availability_v1(&avail)
        .into_iter()
        .filter(|k| k.as_str() > soon.as_str())
        .collect();
    assert!(offered.len() >= 3, "{avail}");

    let mut ids = Vec::new();
    for (number, at) in [("5557000001", &offered[0]), ("5557000002", &offered[1])] {
        let v = ok_json(&sample_start(&lab, SA_CB, number, Some(at)));
        ids.push(sample_dialog(&v, "ConfirmationDialog"));
    }

    let list = ok_json(&get(
        &lab.url(&format!(
            "/{SA_CB}?{}",
            form_encode(&[("operand", "AND"), ("_customer_number", "5557000001")])
        )),
        &[SAMPLE_USER],
    ));
    let list = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    assert_eq!(list.len(), 1, "{list:?}");
    let rec = &list[0];
    assert_eq!(rec["_id"], ids[0].as_str(), "{rec}");
    assert_eq!(str_field(rec, "desiredTime"), offered[0].as_str(), "{rec}");
    strict_instant(str_field(rec, "desiredTime"));
    assert!(
        str_field(rec, "url").ends_with(&format!("/service/callback/{SA_CB}/{}", ids[0])),
        "{rec}"
    );

    let put = |id: &str, at: &str| {
        send(
            "PUT",
            &lab.url(&format!("/{SA_CB}/{id}")),
            RETROFIT_JSON,
            &gson_body(&[("_new_desired_time", at), ("first_name", "Anne")]),
            &[SAMPLE_USER],
        )
    };
    let moved = put(&ids[0], &offered[2]);
    assert!((200..300).contains(&moved.status), "{}", moved.text());
    // The bucket of offered[1] holds one callback already: refused with proposals.
    let refused = put(&ids[0], &offered[1]);
    let e = assert_error(&refused, 400);
    assert!(
        str_field(&e, "exception").ends_with("CallbackExceptionAvailability"),
        "{e}"
    );
    let proposals = availability_v1(&e["availability"]);
    assert!(!proposals.contains(&offered[1]), "{e}");

    for id in &ids {
        let r = delete(&lab.url(&format!("/{SA_CB}/{id}")), &[SAMPLE_USER]);
        assert!((200..300).contains(&r.status), "{}", r.text());
    }
    // Owned by the sample's gms_user: it alone sees them (no gms_user sees none).
    let mine = ok_json(&get(&lab.url(&format!("?_id={}", ids[0])), &[SAMPLE_USER]));
    assert_eq!(mine[0]["_callback_state"], "COMPLETED", "{mine}");
    assert_eq!(ok_json(&lab.query(&format!("?_id={}", ids[0]))), json!([]));
}

/// The sample's first commit, SA 49cc336 (Genesys' legacy sample; Jetty's `ContentExchange`
/// through `client/GenesysSession.java` 206-260, `gms_user` on every request, forms typed
/// `application/x-www-form-urlencoded` with no charset). `ui/GenesysController.java`
/// `requestTimeSlots` 238-248 with `ui/GenesysService.java` `postImpl` 205-229: a GET of
/// `{server_url}{url_path}` + `/callback/{name}/availability` (the default `url_path`
/// `/genesys/1/service/` of `res/xml/preferences_settings.xml` 12 makes that a `//`) with
/// `start` and `end` as `URLEncodedUtils` writes them; `updateTimeSlots` 250-300 parses each
/// key strictly (296). `connect` 53-112 with `GenesysService.startSession` 98-127: the create as a
/// form to `{url_path}callback/{name}`, read by `interpretResponse` 150-211 with org.json
/// (`_id`; `_action`, or none with `_text`; an `error` key would be shown as an error).
/// `continueDialog` (`GenesysService.java` 139-142): a POST of a menu item's
/// `_user_action_url` path with no body; `interpretCloudMessage` 213-221: a POST of
/// `{url_path}{_id}/{_action}`, no body. (`refreshQueue` 232-236 posts `/{id}/check-queue-position`
/// under the bare host: the sample's own bug, a path outside the API.)
#[test]
fn sample_first_commit_jetty_calls() {
    let lab = lab();
    const JETTY_FORM: &str = "application/x-www-form-urlencoded";
    let user = [SAMPLE_USER];
    let wanted = parse_iso(&iso_in(3 * 3600));
    let five_h = jiff::SignedDuration::from_hours(5);
    let q = form_encode(&[
        ("start", &iso(wanted - five_h)),
        ("end", &iso(wanted + five_h)),
    ]);
    let slots = ok_json(&get(
        &lab.gw.url(&format!(
            "/genesys/1/service//callback/{SA_CB}/availability?{q}"
        )),
        &user,
    ));
    let soon = iso_in(3600);
    let slot = availability_v1(&slots)
        .into_iter()
        .find(|k| k.as_str() > soon.as_str())
        .unwrap_or_else(|| panic!("no slot: {slots}"));

    let form = |number: &str, desired: Option<&str>| {
        let mut f = vec![
            ("first_name", "Ann"),
            ("last_name", "Smith"),
            ("_provide_code", "false"),
            ("_customer_number", number),
            ("_call_direction", "USERTERMINATED"),
            ("_wait_for_agent", "true"),
            ("_wait_for_user_confirm", "true"),
            ("_media_type", "voice"),
        ];
        if let Some(at) = desired {
            f.push(("_desired_time", at));
        }
        form_encode(&f)
    };
    let scheduled = ok_json(&send(
        "POST",
        &lab.url(&format!("/{SA_CB}")),
        JETTY_FORM,
        form("5558000001", Some(&slot)).as_bytes(),
        &user,
    ));
    let menu = ok_json(&send(
        "POST",
        &lab.url(&format!("/{SA_MENU}")),
        JETTY_FORM,
        form("5558000002", None).as_bytes(),
        &user,
    ));
    for (v, action) in [(&scheduled, "ConfirmationDialog"), (&menu, "DisplayMenu")] {
        assert!(v.get("error").is_none(), "{v}");
        sample_dialog(v, action);
    }
    let item = str_field(
        &menu["_content"][0]["_group_content"][0],
        "_user_action_url",
    );
    let path = &item[item.find("/genesys/").unwrap_or_else(|| panic!("{item}"))..];
    let id = str_field(&menu, "_id");
    for path in [
        path.to_string(),
        format!("/genesys/1/service/{id}/user-confirmed"),
    ] {
        let r = request(
            "POST",
            &lab.gw.url(&path),
            &[SAMPLE_USER, ("Content-Type", JETTY_FORM)],
            None,
        );
        assert!(ok_json(&r).is_object(), "{path}");
    }
}

/// SA's error path (`CallbackApiManager.java` 82-93 and alike): a non-2xx body read as
/// `pojo/CallbackException.java` (`message`, `exception`, `error` as strings). GL's
/// `testStartCallbackBadServiceName` (`Tests.swift` 23-39): a create on a service that does
/// not exist fails, and `StartCallbackResource.swift` 36-43 decodes the body as
/// `GmsCallbackErrorResponse` (`Callback/Internal/GmsCallbackErrorResponse.swift` 52-74:
/// `code` an `Int`, `exception`, `phrase`, `message` strings, any other key a string).
#[test]
fn sample_and_swift_errors_on_an_unknown_service() {
    let lab = lab();
    let r = send(
        "POST",
        &lab.url("/Nonexistent"),
        RETROFIT_JSON,
        &gson_body(&[("_customer_number", "5551234567")]),
        &[SAMPLE_USER],
    );
    let e = assert_error(&r, 404);
    let swift = send(
        "POST",
        &lab.url("/Nonexistent"),
        SWIFT_JSON,
        json!({"_customer_number": "+19059681000"})
            .to_string()
            .as_bytes(),
        &[SWIFT_ACCEPT],
    );
    let e2 = assert_error(&swift, 404);
    for e in [e, e2] {
        assert!(e["code"].is_i64(), "{e}");
        let o = e.as_object().unwrap_or_else(|| panic!("{e}"));
        for (k, v) in o {
            if k != "code" && k != "availability" {
                assert!(v.is_string(), "{k} is not a string: {e}");
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// The Swift GMSLibrary (akram-mohammad/genesys-chat @ 527ba81)
// -------------------------------------------------------------------------------------------

/// GL `Tests.swift` `testStartCancelCallback` (41-89) through
/// `Callback/Public/CallbackApiClient.swift` and `Callback/Internal/CallbackApiRequest.swift`:
/// `startCallback` (POST `/1/service/callback/{name}`, JSON `_customer_number` plus the properties,
/// here `_target`), its 200 reply decoded as `CallbackRecordInternal` (`_id` and every other key a
/// `String`, `CallbackRecordInternal.swift` 51-78); `queryCallbackById` (GET
/// `/1/service/callback?_id=`, an object or an array of records); `cancelCallback` (DELETE, any 200
/// text); the record again: `_callback_state` COMPLETED, `_callback_reason` CANCELLED;
/// `queryCallback` without operand by `_customer_number` (Alamofire's query encoding: `+` as
/// `%2B`): more than 0 records, one of them this one. Every record decodes:
/// `_desired_time`/`_expiration_time` in `.SSSXXXXX`, `url`, all values strings.
/// `testCancelBadCallback` (90-105): `queryCallbackById("bad_id")` must fail: a non-200, or an
/// empty array (`CallbackApiClient.swift` 315-342).
#[test]
fn swift_start_query_cancel_query() {
    let lab = lab();
    let number = "+19059681000";
    let headers = [SWIFT_ACCEPT];
    let id = swift_start(
        &lab,
        json!({"_customer_number": number, "_target": "Customer_Service>0"}),
    );

    let by_id = |id: &str| {
        let v = ok_json(&get(&lab.url(&format!("?_id={id}")), &headers));
        let rec = match &v {
            Value::Array(a) if a.len() == 1 => a[0].clone(),
            _ => panic!("not one record: {v}"),
        };
        swift_record(&rec);
        rec
    };
    assert_eq!(by_id(&id)["_callback_state"], "QUEUED");
    swift_cancel(&lab, &id, "");
    let rec = by_id(&id);
    assert_eq!(
        (&rec["_callback_state"], &rec["_callback_reason"]),
        (&json!("COMPLETED"), &json!("CANCELLED"))
    );
    let q = form_encode(&[("_customer_number", number)]);
    assert!(q.contains("%2B"), "{q}");
    let list = ok_json(&get(&lab.url(&format!("/{GL_CB}?{q}")), &headers));
    let list = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"));
    assert!(list.iter().any(|r| r["_id"] == id.as_str()), "{list:?}");
    list.iter().for_each(swift_record);

    let bad = get(&lab.url("?_id=bad_id"), &headers);
    assert!(
        bad.status != 200 || bad.json().as_array().is_some_and(Vec::is_empty),
        "{}",
        bad.text()
    );
}

/// GL's `startCallback` (`CallbackApiRequest.swift` 240-258: JSON of `_customer_number`, the
/// desired time and the properties, `Content-Type: application/json`), its 200 reply decoded
/// as a `CallbackRecordInternal` (`StartCallbackResource.swift` 36-43): the callback id.
fn swift_start(lab: &CallbackLab, body: Value) -> String {
    let v = ok_json(&send(
        "POST",
        &lab.url(&format!("/{GL_CB}")),
        SWIFT_JSON,
        body.to_string().as_bytes(),
        &[SWIFT_ACCEPT],
    ));
    all_strings(&v);
    str_field(&v, "_id").to_string()
}

/// GL's `cancelCallback` (DELETE, `query` its `discard_ors_failure` if any): 200 with any
/// UTF-8 text (`CancelCallbackResource.swift`, `CallbackApiClient.swift` 88-128).
fn swift_cancel(lab: &CallbackLab, id: &str, query: &str) {
    let r = request(
        "DELETE",
        &lab.url(&format!("/{GL_CB}/{id}{query}")),
        &[SWIFT_ACCEPT],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(std::str::from_utf8(&r.body).is_ok());
}

/// A record as `CallbackRecordInternal.swift` 51-78 decodes it.
fn swift_record(rec: &Value) {
    all_strings(rec);
    str_field(rec, "_id");
    for k in ["_desired_time", "_expiration_time"] {
        strict_instant(str_field(rec, k));
    }
    assert!(str_field(rec, "url").starts_with("http://"), "{rec}");
}

/// GL `rescheduleCallback` and `cancelCallback(discardOrsFailure:)`
/// (`CallbackApiRequest.swift` 141-144, 208-220, 259-265): PUT JSON `_new_desired_time`
/// (`.SSSXXXXX`, i.e. `.mmmZ` in UTC) and the properties, `Content-Type: application/json`,
/// status 200 (`CallbackApiClient.swift` 130-160 accepts only 200; its
/// `RescheduleCallbackResource.swift` 23-30 reports any body as invalid, so only the status is
/// the library's); DELETE with `?discard_ors_failure=true` (Alamofire's literal bool), 200.
#[test]
fn swift_reschedule_and_cancel_discarding_ors_failures() {
    let lab = lab();
    let headers = [SWIFT_ACCEPT];
    let id = swift_start(
        &lab,
        json!({"_customer_number": "+19059681001", "_desired_time": iso_in(7200)}),
    );
    let at = iso_in(10800);
    let r = send(
        "PUT",
        &lab.url(&format!("/{GL_CB}/{id}")),
        SWIFT_JSON,
        json!({"_new_desired_time": at, "note": "later"})
            .to_string()
            .as_bytes(),
        &headers,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(lab.record(&id)["_desired_time"], at.as_str());
    swift_cancel(&lab, &id, "?discard_ors_failure=true");
    assert_eq!(lab.state(&id), "COMPLETED");
}

/// GL `testAvailabilityV1` and `testAvailablityV2` (`Tests.swift` 107-147): both with no
/// parameters at all, each expecting more than 0 slots; V1 decoded by
/// `ProposedAvailabilityV1.swift` (strict instant keys, int counts), V2 at
/// `/2/service/callback/{name}/availability` by `AvailabilityV2ResultInternal.swift`
/// (`durationMin` int, `timezone` string or absent, `slots`) and
/// `AvailabilityV2SlotInternal.swift` (`utcTime` strict, `localTime` parsing with a `Z`
/// appended, `capacity` and `total` ints). Then V1 with every parameter as
/// `CallbackApiRequest.swift` 145-157 sends them through Alamofire's query encoding (keys
/// sorted, `:` as `%3A`), and V2 with its own.
#[test]
fn swift_availability_v1_and_v2() {
    let lab = lab();
    let headers = [SWIFT_ACCEPT];
    let v1 = ok_json(&get(&lab.url(&format!("/{GL_CB}/availability")), &headers));
    assert!(!availability_v1(&v1).is_empty(), "{v1}");

    let v2 = ok_json(&get(
        &lab.gw
            .url(&format!("/genesys/2/service/callback/{GL_CB}/availability")),
        &headers,
    ));
    assert!(v2["durationMin"].is_i64(), "{v2}");
    assert!(
        v2["timezone"].is_null() || v2["timezone"].is_string(),
        "{v2}"
    );
    let slots = v2["slots"].as_array().unwrap_or_else(|| panic!("{v2}"));
    assert!(!slots.is_empty(), "{v2}");
    for s in slots {
        strict_instant(str_field(s, "utcTime"));
        if let Some(local) = s["localTime"].as_str() {
            strict_instant(&format!("{local}Z"));
        }
        assert!(s["capacity"].is_i64() && s["total"].is_i64(), "{s}");
    }

    let q = form_encode(&[
        ("end", &iso_in(86400)),
        ("max-time-slots", "5"),
        ("number-of-days", "1"),
        ("start", &iso_in(0)),
    ]);
    let some = ok_json(&get(
        &lab.url(&format!("/{GL_CB}/availability?{q}")),
        &headers,
    ));
    let slots = availability_v1(&some);
    assert!(!slots.is_empty() && slots.len() <= 5, "{some}");

    // V2 with epoch milliseconds, a zone and busy slots (`CallbackApiRequest.swift` 158-191),
    // `report-busy` as Alamofire's literal bool.
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let q = form_encode(&[
        ("end-ms", &(now_ms + 86_400_000).to_string()),
        ("max-time-slots", "5"),
        ("report-busy", "true"),
        ("start-ms", &now_ms.to_string()),
        ("timezone", "America/New_York"),
    ]);
    let v2 = ok_json(&get(
        &lab.gw.url(&format!(
            "/genesys/2/service/callback/{GL_CB}/availability?{q}"
        )),
        &headers,
    ));
    assert_eq!(v2["timezone"], "America/New_York", "{v2}");
    let slots = v2["slots"].as_array().unwrap_or_else(|| panic!("{v2}"));
    assert!(!slots.is_empty() && slots.len() <= 5, "{v2}");
}
