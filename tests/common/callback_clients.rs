//! What the public GMS clients put on the wire and how they read the Callback Services API's
//! replies, for `tests/callback_clients.rs`: their content types (charset included), their JSON
//! bodies, and the shapes their parsers accept (strict instants, string-only records).
//!
//! Sources: the Android sample `StanleyAu/gms-callback-sample-legacy` (Retrofit 1.x with Gson),
//! GMS 8.5's QA suite `Azhilin/Examples` at 54ff246 (RestAssured, json-simple) and Genesys' Swift
//! GMSLibrary in `akram-mohammad/genesys-chat` at 527ba81 (Alamofire, `JSONDecoder`).

use serde_json::{json, Value};

use super::callback::parse_iso;
// The clients' content types, the sample's user and `send` are the Service API replays'.
#[allow(unused_imports)]
pub use super::gms_clients::{
    send, RESTASSURED_FORM, RESTASSURED_JSON, RETROFIT_JSON, SAMPLE_USER,
};
use super::keys;

/// GL's `ContentType.json` (`Utils/Internal/ApiRequest.swift` 42), no charset.
pub const SWIFT_JSON: &str = "application/json";
/// GL sets `Accept` to its one accepted type (`ApiRequest.swift` 57-60).
pub const SWIFT_ACCEPT: (&str, &str) = ("Accept", "application/json");

/// Asserts that every value of object `v` is a JSON string (GL decodes records, create
/// replies and error extras as `String`s; Gson reads SA's `String` fields from strings).
pub fn all_strings(v: &Value) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    for (k, x) in o {
        assert!(x.is_string(), "{k} is not a string in {v}");
    }
}

/// Asserts the instant format both SA (`util/TimeHelper.java` 13-17, Joda's strict
/// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`) and GL (`Utils/Public/DateExtension.swift` 12,
/// `yyyy-MM-dd'T'HH:mm:ss.SSSXXXXX` in UTC) parse: exactly `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn strict_instant(s: &str) {
    let b = s.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape, "'{s}' is not yyyy-MM-ddTHH:mm:ss.SSSZ");
    parse_iso(s);
}

/// Asserts a V1 availability map as SA (`Map<DateTime, Integer>`) and GL
/// (`ProposedAvailabilityV1.swift` 45-56) read it: strict instant keys, integer counts;
/// returns the keys in order.
pub fn availability_v1(v: &Value) -> Vec<String> {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    for (k, n) in o {
        strict_instant(k);
        assert!(n.as_i64().is_some_and(|n| n > 0), "{k}: {n} in {v}");
    }
    keys(v)
}

/// A JSON object of string pairs, as json-simple writes AZ's `JSONObject` (compact).
pub fn json_body(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs_object(pairs).to_string().into_bytes()
}

/// A JSON object of string pairs as SA's Gson writes a `Map<String, String>`: null values
/// dropped, pretty-printed (`data/DataModule.java` 60-70, `setPrettyPrinting()` at 68).
pub fn gson_body(pairs: &[(&str, &str)]) -> Vec<u8> {
    serde_json::to_vec_pretty(&pairs_object(pairs)).unwrap_or_default()
}

pub fn pairs_object(pairs: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Value::Object(map)
}
