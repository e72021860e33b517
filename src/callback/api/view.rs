//! A callback record as clients read it (contract `gms-callback.md` §6.1): a flat JSON object
//! of strings, the same in query, cancel and update replies.

use crate::callback::record::CallbackRecord;
use crate::callback::time::format_utc;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::JsonObject;

/// The record's own fields a `returned-keys` entry may name: always written (or, for
/// `_callback_reason`, when set; `_ors_session_id` only when returned).
pub const FIELDS: [&str; 8] = [
    "_id",
    "_service_name",
    "_callback_state",
    "_callback_reason",
    "_desired_time",
    "_expiration_time",
    "_customer_number",
    "_ors_session_id",
];

/// The URL of a callback's own API path, `_url` (§13 Q1).
pub fn callback_url(gw: &Gateway, req: &ApiRequest, record: &CallbackRecord) -> String {
    format!(
        "{}/service/callback/{}/{}",
        crate::api::api_base(gw, req),
        crate::ors::forward::encode(&record.service),
        record.id.hyphenated()
    )
}

/// The keys a record carries beside GMS's own for the clients that read them: `url` (twin of
/// `_url`, §13 Q1) and `desiredTime` (twin of `_desired_time`, read by the Android sample's
/// `CallbackRequest`; docs/callback.md, "GMS clients").
const TWINS: [&str; 2] = ["url", "desiredTime"];

/// The record as a JSON object (§6.1): the keys GMS always returns, the lookup keys, the kept
/// properties, `_ors_session_id` when `returned-keys` names it, `_url` with its twin `url`, and
/// `desiredTime`, the twin of `_desired_time`.
pub fn record_object(gw: &Gateway, req: &ApiRequest, record: &CallbackRecord) -> JsonObject {
    let returned = &gw.config.callback.returned_keys;
    let mut o = JsonObject::with_capacity(512);
    o.field("_id", &record.id.hyphenated().to_string())
        .field("_service_name", &record.service)
        .field("_callback_state", record.state.name());
    if let Some(reason) = &record.reason {
        o.field("_callback_reason", reason);
    }
    let desired = format_utc(record.desired);
    o.field("_desired_time", &desired)
        .field("_expiration_time", &format_utc(record.expires))
        .field("_customer_number", &record.customer_number);
    if returned.iter().any(|k| k == "_ors_session_id") {
        let session = record.ors.as_ref().map_or("", |o| o.session.as_str());
        o.field("_ors_session_id", session);
    }
    let mut written: Vec<&str> = Vec::new();
    for (k, v) in record.lookup.iter().chain(&record.props) {
        let own = FIELDS.contains(&k.as_str()) || TWINS.contains(&k.as_str()) || k == "_url";
        if !own && !written.contains(&k.as_str()) {
            o.field(k, v);
            written.push(k);
        }
    }
    let url = callback_url(gw, req, record);
    o.field("_url", &url)
        .field("url", &url)
        .field("desiredTime", &desired);
    o
}
