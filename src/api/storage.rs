//! Storage API (contract section 7): key/value records and files under a data id.

use std::num::IntErrorKind;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::json;

use super::{data_ttl, no_such};
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::ids::new_id;
use crate::reply::{JsonObject, Reply, TEXT};
use crate::store::{may_access, DataRecord, PutMode};
use crate::value::{Fields, Value};

/// GMS's default storage TTL in seconds.
pub const DEFAULT_TTL_S: u64 = 30;
/// Longest id or key accepted in a path.
const MAX_ID_LEN: usize = 256;

/// Characters kept as they are in a URL path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A storage TTL from the path: non-positive or non-numeric means 30 s; over the limit is cut.
pub fn storage_ttl(raw: &str, max_ttl: u64) -> Duration {
    let secs = match raw.trim().parse::<i64>() {
        Ok(n) if n > 0 => (n as u64).min(max_ttl),
        // Numeric but past i64: over the limit like any big number, not "non-numeric".
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => max_ttl,
        _ => DEFAULT_TTL_S.min(max_ttl),
    };
    Duration::from_secs(secs)
}

/// The absolute URL of a stored file's bytes.
pub fn binary_url(gw: &Gateway, req: &ApiRequest, id: &str, key: &str) -> String {
    format!(
        "{}/storage/binary/{}/{}",
        super::api_base(gw, req),
        utf8_percent_encode(id, SEGMENT),
        utf8_percent_encode(key, SEGMENT)
    )
}

/// A record's fields as a JSON object: strings inline, files as their binary URL.
pub fn fields_json(
    gw: &Gateway,
    req: &ApiRequest,
    id: &str,
    fields: &Fields,
    into: &mut JsonObject,
) {
    for (k, v) in fields {
        match v {
            Value::Text(s) => into.field(k, s),
            Value::File(_) => into.field(k, &binary_url(gw, req, id, k)),
        };
    }
}

/// Refuses an id or key longer than any the API accepts in a path.
pub fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::BadRequest(format!(
            "an id is at most {MAX_ID_LEN} bytes"
        )));
    }
    Ok(())
}

/// `POST {root}/storage/{ttl}`: stores the body under a new data id.
pub async fn create(gw: &Gateway, ttl: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let limits = &gw.config.limits;
    let ttl = data_ttl(
        limits,
        req.gms_user.as_deref(),
        storage_ttl(ttl, limits.max_ttl),
    );
    let id = new_id().hyphenated().to_string();
    let record = DataRecord {
        owner: req.gms_user,
        fields: req.params.into_fields(),
    };
    gw.store.put_data(&id, record, ttl, PutMode::New).await?;
    Ok(Reply::json(&json!({ "id": id })))
}

/// `POST {root}/storage/{id}/{ttl}`: merges the body into a record and restarts its TTL.
pub async fn update(gw: &Gateway, id: &str, ttl: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let limits = &gw.config.limits;
    // Without a gms_user only unowned records can be merged into: anonymous data stays short.
    let ttl = data_ttl(
        limits,
        req.gms_user.as_deref(),
        storage_ttl(ttl, limits.max_ttl),
    );
    let fields = req.params.into_fields();
    if !gw
        .store
        .merge_data(id, req.gms_user.as_deref(), fields, ttl)
        .await?
    {
        return Err(no_such("data", id));
    }
    Ok(Reply::json(&json!({ "id": id })))
}

/// `POST {root}/storage/custom/{id}/{ttl}`: stores under the caller's own name.
pub async fn custom(gw: &Gateway, id: &str, ttl: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    check_id(id)?;
    let Some(owner) = req.gms_user else {
        return Err(ApiError::BadRequest(
            "a custom id needs the gms_user header".into(),
        ));
    };
    let ttl = storage_ttl(ttl, gw.config.limits.max_ttl);
    let record = DataRecord {
        owner: Some(owner),
        fields: req.params.into_fields(),
    };
    if !gw
        .store
        .put_data(id, record, ttl, PutMode::CreateOrReplaceOwn)
        .await?
    {
        return Err(no_such("data", id));
    }
    Ok(Reply::json(&json!({ "id": id })))
}

async fn find(gw: &Gateway, id: &str, req: &ApiRequest) -> Result<DataRecord, ApiError> {
    check_id(id)?;
    gw.store
        .get_data(id)
        .await?
        .filter(|d| may_access(d.owner.as_deref(), req.gms_user.as_deref()))
        .ok_or_else(|| no_such("data", id))
}

/// `GET {root}/storage/{id}`: every value, files as binary URLs.
pub async fn get_all(gw: &Gateway, id: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    let record = find(gw, id, &req).await?;
    Ok(values_reply(gw, &req, id, &record.fields))
}

/// Every value of the record `id` as served back (a JSON object of strings, files as their
/// binary URLs), with the [`Reply::stored_content`] headers; also per-service storage's.
pub fn values_reply(gw: &Gateway, req: &ApiRequest, id: &str, fields: &Fields) -> Reply {
    let mut out = JsonObject::default();
    fields_json(gw, req, id, fields, &mut out);
    out.reply().stored_content()
}

/// The value of `key`, taken out of a record's fields.
pub fn take_value(fields: Fields, key: &str) -> Option<Value> {
    fields.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// `GET {root}/storage/{id}/{key}` and `GET {root}/storage/binary/{id}/{key}`: one value.
pub async fn get_key(
    gw: &Gateway,
    id: &str,
    key: &str,
    req: ApiRequest,
) -> Result<Reply, ApiError> {
    let record = find(gw, id, &req).await?;
    let value = take_value(record.fields, key)
        .ok_or_else(|| ApiError::NotFound(format!("key '{key}' not found in data '{id}'")))?;
    Ok(value_reply(value))
}

/// One stored value as served back, by every route that serves one (issue 15 item 2): text as
/// `text/plain; charset=utf-8` whatever the client claimed when it stored it; a file as its
/// bytes, its content type (when it is a well-formed media type, else
/// `application/octet-stream`) and `Content-Disposition: attachment` with its name; both
/// with the [`Reply::stored_content`] headers, so nothing a client stored runs in the origin
/// that serves the API and the web tier.
pub fn value_reply(value: Value) -> Reply {
    match value {
        Value::Text(s) => Reply::new(200, TEXT, s),
        Value::File(f) => {
            let content_type = if is_media_type(&f.content_type) {
                f.content_type
            } else {
                OCTET_STREAM.to_string()
            };
            Reply::new(200, content_type, f.bytes)
                .with_header("Content-Disposition", content_disposition(&f.filename))
        }
    }
    .stored_content()
}

/// The content type of bytes of no known type.
const OCTET_STREAM: &str = "application/octet-stream";

/// Whether a claimed content type is `type/subtype[; parameters]` in visible ASCII.
fn is_media_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(essence.split_once('/'), Some((a, b)) if token(a) && token(b))
        && ct.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// `attachment` with a safe filename (RFC 6266): the name's last path segment, as a quoted
/// ASCII fallback (anything else, quotes, backslashes and `%` become `_`) and, for a name that
/// is not plain ASCII, once more as RFC 8187 `filename*` in UTF-8.
fn content_disposition(filename: &str) -> String {
    let base = filename
        .rsplit(['/', '\\'])
        .next()
        .filter(|b| !b.is_empty() && *b != "." && *b != "..")
        .unwrap_or("file");
    let ascii: String = base
        .chars()
        .map(|c| match c {
            '"' | '\\' | '%' => '_',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '_',
        })
        .collect();
    if ascii == base {
        format!("attachment; filename=\"{ascii}\"")
    } else {
        format!(
            "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
            utf8_percent_encode(base, SEGMENT)
        )
    }
}

/// `DELETE {root}/storage/{id}`.
pub async fn delete(gw: &Gateway, id: &str, req: ApiRequest) -> Result<Reply, ApiError> {
    check_id(id)?;
    if !gw.store.delete_data(id, req.gms_user.as_deref()).await? {
        return Err(no_such("data", id));
    }
    Ok(Reply::json(&json!({ "id": id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_ttl_follows_gms() {
        let s = |raw| storage_ttl(raw, 86400).as_secs();
        assert_eq!(s("0"), 30);
        assert_eq!(s("-5"), 30);
        assert_eq!(s("abc"), 30);
        assert_eq!(s("1"), 1);
        assert_eq!(s("999999"), 86400);
        assert_eq!(s("99999999999999999999999"), 86400);
        assert_eq!(s("-99999999999999999999999"), 30);
        assert_eq!(s("1.5"), 30);
        assert_eq!(storage_ttl("x", 10).as_secs(), 10);
    }

    #[test]
    fn disposition_is_safe_for_any_filename() {
        assert_eq!(
            content_disposition("face.jpg"),
            "attachment; filename=\"face.jpg\""
        );
        let d = content_disposition("a\"b\r\né.png");
        assert!(!d.contains('\r') && !d.contains('\n'));
        assert!(d.contains("filename=\"a_b___.png\""), "{d}");
        assert!(d.ends_with("filename*=UTF-8''a%22b%0D%0A%C3%A9.png"), "{d}");
        assert_eq!(
            content_disposition("../../etc/pass%77d"),
            "attachment; filename=\"pass_77d\"; filename*=UTF-8''pass%2577d"
        );
        assert_eq!(
            content_disposition("C:\\x\\"),
            "attachment; filename=\"file\""
        );
        assert_eq!(content_disposition(""), "attachment; filename=\"file\"");
    }

    #[test]
    fn stored_values_are_served_inert() {
        let text = value_reply(Value::Text("<script>alert(1)</script>".into()));
        assert_eq!(text.content_type, TEXT);
        let file = |ct: &str| {
            value_reply(Value::File(crate::value::FileValue {
                filename: "x.html".into(),
                content_type: ct.into(),
                bytes: bytes::Bytes::from_static(b"<svg onload=alert(1)>"),
            }))
        };
        for r in [&text, &file("image/svg+xml")] {
            assert!(r
                .headers
                .contains(&("X-Content-Type-Options", "nosniff".into())));
            assert!(r.headers.contains(&(
                "Content-Security-Policy",
                "default-src 'none'; sandbox".into()
            )));
        }
        assert_eq!(file("image/svg+xml").content_type, "image/svg+xml");
        assert_eq!(
            file("text/html; charset=utf-8").content_type,
            "text/html; charset=utf-8"
        );
        for bad in ["", "html", "text/html\r\nX: y", "a/b/c", "/x"] {
            assert_eq!(file(bad).content_type, OCTET_STREAM, "{bad:?}");
        }
    }
}
