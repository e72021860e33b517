//! What the public GMS clients put on the wire (issue 17), for `tests/gms_clients.rs` and
//! `tests/gms_compat.rs`: the content types they send (charset included), Retrofit 1.x's
//! multipart bodies, and the gms blocks of the GMS QA suite's service sections.
//!
//! Sources: the Android sample `StanleyAu/gms-callback-sample-legacy` (Retrofit 1.x with
//! Gson, OkHttp) and GMS 8.5's QA suite `Azhilin/Examples` at 54ff246 (RestAssured).

use serde_json::Value;

use super::{request, Gateway, OrsSim, Resp};

/// RestAssured's `ContentType.URLENC` as it goes out: RestAssured appends its default content
/// charset, ISO-8859-1, to a content type that has none.
pub const RESTASSURED_FORM: &str = "application/x-www-form-urlencoded; charset=ISO-8859-1";
/// RestAssured's `ContentType.JSON` (JSON bodies are UTF-8).
pub const RESTASSURED_JSON: &str = "application/json; charset=UTF-8";
/// Retrofit 1.x's `@FormUrlEncoded` body (`FormUrlEncodedTypedOutput`).
pub const RETROFIT_FORM: &str = "application/x-www-form-urlencoded; charset=UTF-8";
/// Retrofit 1.x's `@Body` through `GsonConverter` (`JsonTypedOutput`).
pub const RETROFIT_JSON: &str = "application/json; charset=UTF-8";
/// The legacy sample's first commit: Jetty's `ContentExchange` with this exact type.
pub const JETTY_FORM: &str = "application/x-www-form-urlencoded";

/// The user the Android sample sends in `gms_user` (its `GmsRequestInterceptor`).
pub const SAMPLE_USER: (&str, &str) = ("gms_user", "sample-user@example.com");

/// A Retrofit 1.x `@Multipart` body (`MultipartTypedOutput`), as the sample's
/// `StorageApi.updateBinary` sends it: a UUID boundary; each part with `Content-Disposition`,
/// `Content-Type`, `Content-Length` and `Content-Transfer-Encoding: binary`; a CRLF before each
/// boundary but the first, and none after the closing one.
pub struct RetrofitMultipart {
    boundary: String,
    body: Vec<u8>,
}

impl RetrofitMultipart {
    /// An empty body with a fresh boundary.
    pub fn new() -> RetrofitMultipart {
        RetrofitMultipart {
            boundary: uuid::Uuid::new_v4().to_string(),
            body: Vec::new(),
        }
    }

    /// A `TypedString` part.
    pub fn string(self, name: &str, value: &str) -> RetrofitMultipart {
        self.part(name, None, "text/plain; charset=UTF-8", value.as_bytes())
    }

    /// A `TypedFile` part: the file's name and its MIME type.
    pub fn file(self, name: &str, filename: &str, mime: &str, bytes: &[u8]) -> RetrofitMultipart {
        self.part(name, Some(filename), mime, bytes)
    }

    fn part(mut self, name: &str, filename: Option<&str>, mime: &str, bytes: &[u8]) -> Self {
        if !self.body.is_empty() {
            self.body.extend_from_slice(b"\r\n");
        }
        let filename = filename
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        let head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nContent-Transfer-Encoding: binary\r\n\r\n",
            self.boundary,
            bytes.len()
        );
        self.body.extend_from_slice(head.as_bytes());
        self.body.extend_from_slice(bytes);
        self
    }

    /// `(content type, body)`.
    pub fn build(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("\r\n--{}--", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

/// Sends a body of `content_type` with `method`.
pub fn send(
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Resp {
    request(method, url, headers, Some((content_type, body)))
}

/// RestAssured's `given().contentType(...)` with no body: the Content-Type header alone.
pub fn with_content_type_only(method: &str, url: &str, content_type: &str) -> Resp {
    request(method, url, &[("Content-Type", content_type)], None)
}

/// The QA suite's built-in sections (`ClusterTests.setServicesSections`, lines 408-452):
/// request-interaction with codes on DNIS, `_ttl` 60 and `_return_pool_health: "false"`;
/// match-interaction; request-access with `_access_code_length: "4"`. The QA lab calls
/// match-interaction without credentials: here it comes from an internal network.
pub const QA_CLUSTER_GMS: &str = r#"internal_networks: ["127.0.0.0/8"]
resources:
  DNIS: ["8003449999", "8003449998", "8003449997"]
services:
  request-interaction: {_provide_code: "true", _resource_group: DNIS, _return_pool_health: "false", _service: request-interaction, _ttl: "60", _type: builtin}
  match-interaction: {_service: match-interaction, _type: builtin}
  request-access: {_resource_group: DNIS, _service: request-access, _ttl: "60", _type: builtin, _access_code_length: "4"}
"#;

/// [`QA_CLUSTER_GMS`] with GMS's `server` section option `access_code_prefix`.
pub fn qa_cluster_with_prefix(prefix: &str) -> String {
    format!("server: {{access_code_prefix: \"{prefix}\"}}\n{QA_CLUSTER_GMS}")
}

/// The QA suite's own option sets of `helper/ServiceOptions.java`:
/// `getRequestInteractionServiceOptions` (557-565), `getMatchInteractionServiceOptions`
/// (591-596), `getRequestAccessServiceOptions` (598-605, with `_access_code_length: ""` and
/// `_phone_number: "undefined"`), and `SupportURLRewritingTests.test_19`'s additions to
/// request-interaction (299-300: `_overwritable_options: _redirect`, `_redirect: hello`).
pub const QA_SERVICE_OPTIONS_GMS: &str = r#"internal_networks: ["127.0.0.0/8"]
resources:
  DNIS: ["8003449999", "8003449998", "8003449997"]
services:
  request-interaction: {_provide_code: "false", _resource_group: DNIS, _service: request-interaction, _ttl: "30", _type: builtin, _overwritable_options: _redirect, _redirect: hello}
  match-interaction: {_service: match-interaction, _type: builtin}
  request-access: {_access_code_length: "", _phone_number: "undefined", _service: request-access, _type: builtin}
"#;

/// The QA suite's callback service options, `helper/ServiceOptions.java` 14-145
/// (`getUserTermSchCallbackServiceOptions`: "the User Terminated Immediate Callback template
/// from GMS 8.5.110.01"), as the option lines of a service (4 spaces in), commented-out
/// options left out. `_service: "callback"` is GMS's bundled template, which the Callback
/// Services API (issue 18) serves.
pub const QA_CALLBACK_OPTIONS: &str = r#"
    _agent_availability_notification_delay: "30"
    _agent_disposition_timeout: "45"
    _agent_first_via_rp: "false"
    _agent_preview: "false"
    _agent_preview_allow_reject: "0"
    _agent_preview_data: "Value 1,Value 2,Value 3,Value 4,Value 5"
    _agent_preview_timeout: "30"
    _agent_preview_via_rp: "false"
    _agent_reject_retry_timeout: "0"
    _agent_reserve_timeout: "30"
    _agent_transfer_confirm_timeout: "0"
    _attach_udata: "single_json"
    _booking_expiration_timeout: "30"
    _business_hours_service: "bh_24x7"
    _call_direction: "USERTERMINATED"
    _call_timeguard_timeout: "15000"
    _callback_events_list: ""
    _calling_party_display_name: ""
    _calling_party_number: ""
    _capacity_service: "cap_1000x24x7"
    _chat_endpoint: ""
    _cpd_enable: "false"
    _customer_lookup_keys: "_customer_number"
    _default_country: "US"
    _desired_connect_time_threshold: "180"
    _dial_retry_timeout: "300"
    _disallow_impossible_phone_numbers: "false"
    _disallow_premium_phone_numbers: "false"
    _disposition_userevent_mediatype: "0"
    _enable_disposition_dialog: "false"
    _enable_in_queue_checking: "false"
    _enable_status_notification: "false"
    _eta_pos_threshold: "0:10,10:5,20:2,30:1,40:0"
    _exceptions: ""
    _ixn_createcall_hints: ""
    _ixn_createcall_timeout: "32"
    _ixn_redirect_confirm: "true"
    _ixn_redirect_hints: ""
    _mandatory_customer_lookup_keys: "_customer_number"
    _max_dial_attempts: "3"
    _max_notify_delivery_attempts: "3"
    _max_number_of_user_availability_confirmation_attempts: "3"
    _max_ors_submit_attempts: "3"
    _max_queued_callbacks_per_service: "1000"
    _max_request_by_time_bucket: "100"
    _max_time_to_reach_eta_pos_threshold: "14160"
    _max_time_to_wait_for_agent_on_the_call: "3600"
    _max_time_to_wait_for_ixn_delete: "3600"
    _max_transfer_to_agent_attempts: "5"
    _max_urs_ewt_pos_polling_interval: "30"
    _media_type: "voice"
    _min_queue_wait: "0"
    _min_urs_ewt_pos_polling_interval: "2"
    _notification_message_file: ""
    _offer_callback: "false"
    _offer_callback_vxml_app_url: ""
    _on_route_done_delay: "0"
    _on_user_confirm_timeout: "CONNECT-ANYWAY"
    _paused_services_id: ""
    _paused_services_list: "GMS_Paused_Services"
    _plugin_on_dial_associate_ixn: "false"
    _plugin_on_dial_invoke_on_call_failed: "false"
    _plugin_on_dial_timeout: "120"
    _plugin_on_dial_url: ""
    _prefix_dial_out: ""
    _preview_userevent_mediatype: "0"
    _provide_code: "false"
    _provider_name: ""
    _queue_ping_ors_period: "-120,-2"
    _queue_poll_period: "-120,120"
    _queue_poll_period_recovery: "-1440,-120"
    _reject_future_desired_time: "1M"
    _rep_userevent_dn: ""
    _rep_userevent_enable: "false"
    _rep_userevent_mediatype: "0"
    _rep_userevent_switch: ""
    _reporting_aggregator_url: ""
    _request_ewt_service: ""
    _request_execution_time_buffer: "120"
    _request_queue_time_stat: ""
    _request_time_bucket: "5"
    _resource_group: "DNIS"
    _retain_session_until_ixn_deleted: "true"
    _route_point: "8999@SIP_Switch"
    _service: "callback"
    _snooze_duration: "300"
    _src_route_point: ""
    _status_notification_provider: ""
    _status_notification_target: "http://135.17.38.71:1664/test"
    _status_notification_type: "httpcb"
    _target: "Customer_Service@Stat_Server.GA"
    _throttle_callbacks_per_service_1: "500"
    _throttle_callbacks_per_service_2: "1000"
    _throttle_request_parameters_limit: "600"
    _throttle_request_parameters: "_customer_number"
    _throttle_ttl_1: "300"
    _throttle_ttl_2: "3600"
    _treatment_call_failure_answering_machine: ""
    _treatment_customer_connect: ""
    _treatment_find_agent_fail: ""
    _treatment_waiting_for_agent: ""
    _ttl: "86400"
    _type: "ors"
    _urs_call_interaction_age: ""
    _urs_ewt_estimation_method: "ursdial"
    _urs_extension_data: ""
    _urs_prioritization_strategy: "WaitForTarget"
    _urs_queued_ttl: "14400"
    _urs_request_timeout: "100"
    _urs_strategy_update_sub_routine: "SetRouteDelay"
    _urs_udata_xfer_keys: ""
    _urs_virtual_queue: "SIP_VQ_SIP_Switch"
    _urs_vq_priority: ""
    _urs_vq_priority_increment: ""
    _urs_vq_priority_increment_interval: ""
    _use_debug_push_certificate: "false"
    _use_reporting_aggregator: ""
    _user_confirm_timeout: "30"
    _userorig_connect_limit: "3"
    _userterminated_first_connect_party: "CUSTOMER"
    _vq_for_outbound_calls: ""
    _wait_for_agent: "true"
    _wait_for_user_confirm: "true"
"#;

/// The ORS service of these tests: its name lets it take requests (contract 4.2).
pub const VOICE: &str = "request-inbound-voice";

/// [`QA_CLUSTER_GMS`] with [`VOICE`], an ORS service on the `ors` node.
pub fn with_ors_service(ors: &str) -> String {
    format!(
        "{QA_CLUSTER_GMS}  {VOICE}: {{_type: ors, _service: \"http://scxml.example.com/voice.scxml\", _ors: \"{ors}\"}}\n"
    )
}

/// The requests named `name` that ORS received (ors-sim's log), in order.
pub fn ors_requests(sim: &OrsSim, name: &str) -> Vec<Value> {
    let suffix = format!("/request/{name}");
    sim.log()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.ends_with(&suffix)))
        .collect()
}

impl Gateway {
    /// `{base}/genesys/1/service/{id}/storage{rest}` (per-service storage).
    pub fn service_storage_url(&self, id: &str, rest: &str) -> String {
        self.url(&format!("/genesys/1/service/{id}/storage{rest}"))
    }
}
