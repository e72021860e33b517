//! What every body-parsing target shares: small limits (so the fuzzer reaches them) and the
//! checks on a result.

use gms_gateway::Limits;
use gms_gateway::ApiError;
use gms_gateway::Params;
use gms_gateway::Value;

/// Limits small enough for short inputs to cross each of them.
pub fn limits() -> Limits {
    Limits {
        max_body_bytes: 4096,
        max_fields: 8,
        max_field_bytes: 64,
        max_file_bytes: 1024,
        ..Limits::default()
    }
}

/// A parse failure must be the client's fault: 400, 413 or 415, never a 5xx.
pub fn check_error(e: &ApiError) {
    assert!(
        matches!(e.status(), 400 | 413 | 415),
        "parse error with status {}: {e}",
        e.status()
    );
}

/// Accepted parameters respect the limits and the text rules (names non-empty, no NUL).
pub fn check_params(params: &Params) {
    let l = limits();
    // Every parameter, body or query string, is counted before it is added.
    assert!(params.len() <= l.max_fields, "{} parameters", params.len());
    for (name, value) in params.clone().into_fields() {
        assert!(!name.is_empty() && !name.contains('\0'), "name {name:?}");
        assert!(name.len() as u64 <= l.max_field_bytes, "name {name:?}");
        match value {
            Value::Text(t) => {
                assert!(!t.contains('\0'), "value of {name:?}");
                assert!(t.len() as u64 <= l.max_field_bytes, "value of {name:?}");
            }
            Value::File(f) => assert!(f.bytes.len() as u64 <= l.max_file_bytes),
        }
    }
}
