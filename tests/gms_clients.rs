//! The public GMS clients, replayed as black-box requests (issue 17): the exact request shapes
//! (method, path, headers, body type and charset) of
//! - GMS 8.5's QA suite, `Azhilin/Examples` at 54ff246 (RestAssured), cited "AZ";
//! - the Android sample `StanleyAu/gms-callback-sample-legacy` (Retrofit 1.x, OkHttp, Gson),
//!   at HEAD 6c40941 ("SA") and at its first commit 49cc336 ("SA 49cc336", Jetty's client),
//!
//! and what each client reads back (field names, JSON string types). Each test names the file
//! and lines its shapes come from.
//!
//! The Callback Services API calls among them are replayed in `tests/callback_clients.rs`.

mod common;

use common::gms_clients::*;
use common::*;
use serde_json::Value;

/// Asserts that each of `keys` is a non-empty JSON string in `v` (GMS clients read them into
/// `String`s: a number would not do).
fn strings(v: &Value, keys: &[&str]) {
    for k in keys {
        let s = v.get(k).and_then(Value::as_str);
        assert!(
            s.is_some_and(|s| !s.is_empty()),
            "{k} is not a non-empty string: {v}"
        );
    }
}

// -------------------------------------------------------------------------------------------
// GMS 8.5 QA suite (Azhilin/Examples @ 54ff246)
// -------------------------------------------------------------------------------------------

/// AZ `src/main/java/gms/helper/ServiceAPI.java` 12-22, used by
/// `src/test/java/gms/tests/ClusterTests.java` test_01_01 (95-121) and test_01_02 (127-152):
/// request-interaction as a form POST with no parameters at all (the service's options supply
/// the rest), read back as four strings; then match-interaction with `_access_number` only, no
/// credentials (the QA lab's own host: an internal network here), read back as `_data_id` and
/// the same `_id`. Both "nodes" are this gateway: sharing across nodes is `tests/redis.rs`'s.
#[test]
fn qa_request_interaction_without_parameters_then_match_on_the_number_alone() {
    let gw = Gateway::start(QA_CLUSTER_GMS);
    for _ in 0..2 {
        let created = with_content_type_only(
            "POST",
            &gw.service_url("request-interaction"),
            RESTASSURED_FORM,
        );
        let v = ok_json(&created);
        strings(
            &v,
            &["_access_code", "_access_number", "_expiration_time", "_id"],
        );
        let matched = ok_json(&send(
            "POST",
            &gw.service_url("match-interaction"),
            RESTASSURED_FORM,
            form_encode(&[("_access_number", str_field(&v, "_access_number"))]).as_bytes(),
            &[],
        ));
        strings(&matched, &["_data_id", "_id"]);
        assert_eq!(matched["_id"], v["_id"], "not the same service");
    }
}

/// AZ `ServiceAPI.java` 23-27 in `ClusterTests.java` test_01_03 (158-181): request-access with
/// `_id` and `_resource_group` only (no `_phone_number`), read back as `_access_number` and
/// `_expiration_time` strings.
#[test]
fn qa_request_access_with_id_and_group_only() {
    let gw = Gateway::start(QA_CLUSTER_GMS);
    let v = ok_json(&with_content_type_only(
        "POST",
        &gw.service_url("request-interaction"),
        RESTASSURED_FORM,
    ));
    let id = str_field(&v, "_id");
    let a = ok_json(&send(
        "POST",
        &gw.service_url("request-access"),
        RESTASSURED_FORM,
        form_encode(&[("_id", id), ("_resource_group", "DNIS")]).as_bytes(),
        &[],
    ));
    strings(&a, &["_access_number", "_expiration_time"]);
    assert_eq!(a["_id"], id);
}

/// AZ `ClusterTests.java` test_01_05 (228-260) and test_01_06 (267-302), with the server
/// sections of `setServerSection` (363-404): each node has its own `access_code_prefix`
/// (`9` and `8`, then the ranges `7-9` and `5-7`), and every code it hands out starts with a
/// digit of it. (test_01_04 asserts that without a prefix a code does not start with 9, which
/// one code in ten does: not replayed. test_01_07/08 expect GMS's 500s for `999999` and
/// `9999999999`: here `-t` refuses those, `tests/config_check.rs`.)
#[test]
fn qa_access_code_prefix_per_node() {
    for (prefix, first_digits) in [("9", "9"), ("8", "8"), ("7-9", "789"), ("5-7", "567")] {
        let gw = Gateway::start(&qa_cluster_with_prefix(prefix));
        for _ in 0..5 {
            let v = ok_json(&with_content_type_only(
                "POST",
                &gw.service_url("request-interaction"),
                RESTASSURED_FORM,
            ));
            let code = str_field(&v, "_access_code");
            assert_eq!(code.len(), 4, "{v}");
            assert!(
                first_digits.contains(&code[..1]),
                "prefix {prefix}: code {code}"
            );
        }
    }
}

/// AZ `src/test/java/gms/callback/SupportURLRewritingTests.java` test_19 (297-311): the
/// request-interaction options of `helper/ServiceOptions.java` 557-565 (no codes, `_ttl` 30)
/// plus `_overwritable_options: _redirect` and `_redirect: hello`, and a form with
/// `_customer_number` only: 200, the body contains `_access_number`, `_expiration_time` and
/// `_id`. Then `ServiceAPI.requestAccess` on the options of `ServiceOptions.java` 598-605
/// (`_access_code_length: ""`, `_phone_number: "undefined"`). RestAssured encodes form values
/// in the charset it declares, ISO-8859-1: a user-data value with an accent comes as `%E9`.
#[test]
fn qa_service_options_request_interaction_and_access() {
    let gw = Gateway::start(QA_SERVICE_OPTIONS_GMS);
    let r = send(
        "POST",
        &gw.service_url("request-interaction"),
        RESTASSURED_FORM,
        form_encode(&[("_customer_number", "5115")]).as_bytes(),
        &[],
    );
    let v = ok_json(&r);
    for k in ["_access_number", "_expiration_time", "_id"] {
        assert!(r.text().contains(k), "{k} missing: {v}");
    }
    assert!(
        v.get("_access_code").is_none(),
        "_provide_code is false: {v}"
    );
    let accented = ok_json(&send(
        "POST",
        &gw.service_url("request-interaction"),
        RESTASSURED_FORM,
        b"_customer_number=5115&first_name=Ren%E9e",
        &[],
    ));
    let storage = gw.service_storage_url(str_field(&accented, "_id"), "");
    assert_eq!(ok_json(&get(&storage, &[]))["first_name"], "Renée");
    let a = ok_json(&send(
        "POST",
        &gw.service_url("request-access"),
        RESTASSURED_FORM,
        form_encode(&[("_id", str_field(&v, "_id")), ("_resource_group", "DNIS")]).as_bytes(),
        &[],
    ));
    strings(&a, &["_access_number", "_expiration_time"]);
}

/// AZ `src/main/java/gms/helper/CallbackServicesAPI.java` 147-152 (`checkQueuePosition`, read
/// by `CallbackServiceHelper.java` 161-171): `GET {root}/service/{id}/check-queue-position`
/// with `Content-Type: application/x-www-form-urlencoded` and no body. The gateway relays it
/// to the service's ORS session as a POST (GMS maps both methods to one ORS request) and
/// answers ORS's JSON.
#[test]
fn qa_check_queue_position_is_a_get_relayed_to_ors_as_a_post() {
    let sim = OrsSim::start(1);
    let gw = Gateway::start(&with_ors_service(&sim.url(0)));
    let id = str_field(&gw.create_ok(VOICE, &[]), "_id").to_string();
    let r = with_content_type_only(
        "GET",
        &gw.url(&format!("/genesys/1/service/{id}/check-queue-position")),
        RESTASSURED_FORM,
    );
    let echo = ok_json(&r);
    assert_eq!(echo["request"], "check-queue-position", "{echo}");
    let seen = ors_requests(&sim, "check-queue-position");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["method"], "POST", "{seen:?}");
    assert_eq!(seen[0]["params"]["_service_id"], id.as_str());
}

// -------------------------------------------------------------------------------------------
// The Android sample (StanleyAu/gms-callback-sample-legacy)
// -------------------------------------------------------------------------------------------

/// SA 49cc336 `ui/GenesysController.java` 53-109 and `ui/GenesysService.java` 120-127 with
/// `client/GenesysSession.java` 226-252: a create through the Service API as a form
/// (`application/x-www-form-urlencoded`, no charset) with the user's fields and the scenario's
/// options, `gms_user` set; the reply's `_id` (a string) is the session the app keeps.
fn sample_create(gw: &Gateway) -> String {
    let form = form_encode(&[
        ("first_name", "Ann"),
        ("last_name", "Smith"),
        ("_provide_code", "false"),
        ("_customer_number", "5551234567"),
        ("_call_direction", "USERORIGINATED"),
        ("_wait_for_agent", "true"),
        ("_wait_for_user_confirm", "true"),
        ("_media_type", "voice"),
    ]);
    let v = ok_json(&send(
        "POST",
        &gw.service_url(VOICE),
        JETTY_FORM,
        form.as_bytes(),
        &[SAMPLE_USER],
    ));
    strings(&v, &["_id"]);
    str_field(&v, "_id").to_string()
}

/// SA `data/api/CallbackApi.java` 82-126 ("Service Storage API"), every call with the
/// `gms_user` of `data/retrofit/GmsRequestInterceptor.java` 37 under the endpoint of
/// `data/retrofit/GmsEndpoint.java` 36 (`/genesys/1`): `updateStorage` (a Retrofit form),
/// `queryAllKeys` (read as `Map<String, String>`), `queryOneKey`, `queryBinary` (a file
/// stored through the same view), `deleteKey`. None of them reaches ORS.
#[test]
fn sample_per_service_storage() {
    let sim = OrsSim::start(1);
    let gw = Gateway::start(&with_ors_service(&sim.url(0)));
    let id = sample_create(&gw);
    let user = [SAMPLE_USER];
    let updated = ok_json(&send(
        "POST",
        &gw.service_storage_url(&id, ""),
        RETROFIT_FORM,
        form_encode(&[("reason", "billing"), ("first_name", "Anne")]).as_bytes(),
        &user,
    ));
    strings(&updated, &["id"]);
    let picture = fake_jpeg(2048);
    let (ct, body) = RetrofitMultipart::new()
        .file("picture", "face.jpg", "image/jpeg", &picture)
        .build();
    ok_json(&send(
        "POST",
        &gw.service_storage_url(&id, ""),
        &ct,
        &body,
        &user,
    ));

    let all = ok_json(&get(&gw.service_storage_url(&id, ""), &user));
    let map = all.as_object().expect("a JSON object");
    assert!(map.values().all(Value::is_string), "not all strings: {all}");
    assert_eq!(all["first_name"], "Anne");
    assert_eq!(all["last_name"], "Smith");
    assert_eq!(all["reason"], "billing");

    let one = get(&gw.service_storage_url(&id, "/reason"), &user);
    assert_eq!((one.status, one.text()), (200, "billing".to_string()));
    let bin = get(&gw.service_storage_url(&id, "/binary/picture"), &user);
    assert_eq!(bin.status, 200, "{}", bin.text());
    assert_eq!(bin.body, picture);
    assert!(
        bin.content_type().starts_with("image/jpeg"),
        "{:?}",
        bin.headers
    );

    ok_json(&delete(&gw.service_storage_url(&id, "/reason"), &user));
    assert_error(&get(&gw.service_storage_url(&id, "/reason"), &user), 404);
    assert!(
        ors_requests(&sim, "storage").is_empty(),
        "storage reached ORS"
    );
}

/// SA `data/api/CallbackApiManager.java` 285-301 (`CallbackCheckQueueEvent`: an OkHttp GET of
/// `{endpoint}/service/{id}/check-queue-position` with `gms_user`) and 238-258
/// (`CallbackDialogEvent`: a GET of `{endpoint}/service/{fragment}`, the fragment a push's
/// `{id}/{_action}`): both relayed to ORS as POSTs; the app reads their JSON.
#[test]
fn sample_queue_position_and_push_follow_up_are_gets() {
    let sim = OrsSim::start(1);
    let gw = Gateway::start(&with_ors_service(&sim.url(0)));
    let id = sample_create(&gw);
    for request in ["check-queue-position", "confirm-dialog"] {
        let r = get(
            &gw.url(&format!("/genesys/1/service/{id}/{request}")),
            &[SAMPLE_USER],
        );
        assert_eq!(ok_json(&r)["request"], request);
        let seen = ors_requests(&sim, request);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0]["method"], "POST");
    }
    // Not the owner: the same 404 as an unknown id.
    assert_error(
        &get(
            &gw.url(&format!("/genesys/1/service/{id}/check-queue-position")),
            &[],
        ),
        404,
    );
}

/// SA 49cc336 `ui/GenesysController.java` 213-236 (`interpretCloudMessage`: a POST to
/// `{id}/{_action}`; `refreshQueue`: a POST to `/{id}/check-queue-position`) and
/// `ui/GenesysService.java` 139-142 (`continueDialog`), through `GenesysSession.post` with no
/// parameters: the form content type and no body at all.
#[test]
fn sample_first_commit_posts_follow_ups_without_a_body() {
    let sim = OrsSim::start(1);
    let gw = Gateway::start(&with_ors_service(&sim.url(0)));
    let id = sample_create(&gw);
    for request in ["check-queue-position", "user-confirmed"] {
        let r = request_with_user(&gw, &id, request);
        assert_eq!(ok_json(&r)["request"], request);
    }
}

fn request_with_user(gw: &Gateway, id: &str, request: &str) -> Resp {
    common::request(
        "POST",
        &gw.url(&format!("/genesys/1/service/{id}/{request}")),
        &[SAMPLE_USER, ("Content-Type", JETTY_FORM)],
        None,
    )
}

/// SA `data/api/StorageApi.java` (HEAD): `create` 14-23 and `update` 25-36 (Retrofit forms),
/// `updateBinary` 38-49 (a Retrofit multipart of `TypedFile`s: part headers with
/// `Content-Length` and `Content-Transfer-Encoding: binary`, no CRLF after the closing
/// boundary), `queryAllKeys` 51-56 (`Map<String, String>`), `queryOneKey` 58-65,
/// `queryBinary` 67-74, `delete` 76-81.
#[test]
fn sample_storage_api() {
    let gw = Gateway::start(QA_CLUSTER_GMS);
    let user = [SAMPLE_USER];
    let created = ok_json(&send(
        "POST",
        &gw.storage_url("300"),
        RETROFIT_FORM,
        form_encode(&[("note", "café au lait"), ("size", "L")]).as_bytes(),
        &user,
    ));
    let id = str_field(&created, "id").to_string();
    ok_json(&send(
        "POST",
        &gw.storage_url(&format!("{id}/300")),
        RETROFIT_FORM,
        form_encode(&[("size", "XL")]).as_bytes(),
        &user,
    ));
    let picture = fake_jpeg(5000);
    let (ct, body) = RetrofitMultipart::new()
        .file("picture", "IMG_0001.jpg", "image/jpeg", &picture)
        .string("caption", "at the desk")
        .build();
    ok_json(&send(
        "POST",
        &gw.storage_url(&format!("{id}/300")),
        &ct,
        &body,
        &user,
    ));
    let all = ok_json(&get(&gw.storage_url(&id), &user));
    assert!(all
        .as_object()
        .is_some_and(|m| m.values().all(Value::is_string)));
    assert_eq!(all["note"], "café au lait");
    assert_eq!(all["size"], "XL");
    assert_eq!(all["caption"], "at the desk");
    assert_eq!(all["picture"], gw.binary_url(&id, "picture").as_str());
    let one = get(&gw.storage_url(&format!("{id}/size")), &user);
    assert_eq!(one.text(), "XL");
    let bin = get(&gw.binary_url(&id, "picture"), &user);
    assert_eq!(bin.body, picture);
    ok_json(&delete(&gw.storage_url(&id), &user));
    assert_error(&get(&gw.storage_url(&id), &user), 404);
}
